"""History and regressions: earlier runs of a profile, what changed between two runs, and trends.

A readiness check is rarely run once: a site is fixed and checked again, and the question becomes "what got
worse since last time?". Every run leaves ``reports/<run-id>/results.json``; this module reads those documents
back (schema 1 and 2), finds the runs of a profile, compares two of them requirement by requirement and figure
by figure, and draws the trends as inline SVG. It only reports what changed: whether a change fails anything is
for the caller (``kkp-readiness diff``, the handover report) to decide.

>>> old = {"run": {"id": "r1", "profile": "lab", "started": "1"},
...        "requirements": [{"id": "DNS-004", "title": "Seed wildcard", "verdict": "pass", "messages": []}]}
>>> new = {"run": {"id": "r2", "profile": "lab", "started": "2"},
...        "requirements": [{"id": "DNS-004", "title": "Seed wildcard", "verdict": "fail",
...                          "messages": [{"message": "x: expected A; found NXDOMAIN"}]}]}
>>> change = diff(RunRecord(Path("r1"), old), RunRecord(Path("r2"), new))
>>> change.has_regressions, change.regressed[0].id, change.regressed[0].new
(True, 'DNS-004', 'fail')
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from kkp_readiness.errors import KkpReadinessError
from kkp_readiness.report.chart import VERDICT_COLOURS, svg_open
from kkp_readiness.report.results import ResultsError, load_results
from kkp_readiness.verdict import Verdict, rank

if TYPE_CHECKING:
    from kkp_readiness.profile import LoadedProfile

RESULTS = "results.json"
#: Verdicts of requirements that ran, best first: a move to the right is a regression. The order is the one
#: kkp_readiness.verdict folds targets by (``error``, could not look, below ``fail``, looked and it is wrong).
RAN_ORDER: dict[str, int] = {str(v): index for index, v in enumerate(
    sorted((Verdict.PASS, Verdict.WAIVED, Verdict.WARN, Verdict.ERROR, Verdict.FAIL), key=rank))}
#: Kinds of requirement changes, in the order they are reported (worst news first).
KINDS = ("regressed", "appeared", "vanished", "recovered")
_EPSILON = 1e-9  # a move of exactly the threshold counts despite binary floating point (0.9 vs 1.0)


class HistoryError(KkpReadinessError):
    """A run cannot be read back: the path is missing, not JSON or not a kkp-readiness results document."""


@dataclass(frozen=True)
class RunRecord:
    """One earlier run: its directory and its parsed ``results.json``."""

    path: Path
    results: dict[str, Any] = field(repr=False)

    @property
    def run(self) -> dict[str, Any]:
        return self.results.get("run") or {}

    @property
    def id(self) -> str:
        return str(self.run.get("id") or self.path.name)

    @property
    def profile(self) -> str:
        return str(self.run.get("profile") or "")

    @property
    def base_domain(self) -> str:
        """The site's base domain, normalised (lower case, no trailing dot); "" for runs that did not record it
        (schema 1)."""
        return str(self.run.get("base_domain") or "").strip().rstrip(".").lower()

    @property
    def started(self) -> str:
        """ISO 8601 in UTC as the plugin writes it, so that string order is time order."""
        return str(self.run.get("started") or "")

    @property
    def requirements(self) -> dict[str, dict[str, Any]]:
        """The requirement rows by id, in the document's (checklist) order."""
        return {row["id"]: row for row in self.results.get("requirements", []) if isinstance(row, dict)
                and "id" in row}

    def verdict_counts(self) -> Counter[str]:
        """Requirements per verdict, counted from the rows (``summary`` may be absent in hand-made documents)."""
        return Counter(str(row.get("verdict", "")) for row in self.requirements.values())


def load_run(path: Path | str) -> RunRecord:
    """The run in ``path``, a run directory or its ``results.json``; a ``HistoryError`` naming the path if not.

    Read through ``report.results.load_results``, the one loader of results documents (schema 1 brought to 2).
    """
    path = Path(path)
    results_file = path / RESULTS if path.is_dir() else path
    if not results_file.exists():
        raise HistoryError(f"{results_file}: no such run (a run directory or its {RESULTS} is expected)")
    try:
        document = load_results(results_file)
    except ResultsError as exc:
        raise HistoryError(str(exc)) from None
    if not document["run"].get("id"):
        raise HistoryError(f"{results_file} is not a kkp-readiness results document (no run id)")
    return RunRecord(results_file.parent, document)


def _order(run: RunRecord) -> tuple[str, str]:
    return run.started, run.id


def same_site(a: RunRecord, b: RunRecord) -> bool:
    """Whether two runs are of the same site, so that comparing them means something.

    The same profile name, and the same ``run.base_domain`` when both runs record one: in a history directory
    shared by several installations, two sites may well both call their profile ``lab`` or ``prod``. Runs of
    schema 1 do not record the base domain; they match on the profile name alone.
    """
    if a.profile != b.profile:
        return False
    return not (a.base_domain and b.base_domain) or a.base_domain == b.base_domain


def _template(like: str | RunRecord) -> RunRecord:
    """The run to match: ``like`` itself, or for a bare profile name a run of that profile with no site."""
    if isinstance(like, RunRecord):
        return like
    return RunRecord(Path(), {"run": {"profile": like}})


def find_runs_with_skipped(directories: Iterable[Path], like: str | RunRecord,
                           ) -> tuple[list[RunRecord], list[tuple[Path, str]]]:
    """``find_runs``' runs, and the run directories that could not be read, as (path, why), in the order found.

    Which site an unreadable run was of cannot be known: every one found is listed.
    """
    template = _template(like)
    found: dict[str, RunRecord] = {}
    skipped: list[tuple[Path, str]] = []
    for directory in directories:
        directory = Path(directory)
        if not directory.is_dir():
            continue
        for child in sorted(directory.iterdir()):
            if child.name == "latest" or child.name.startswith(".") or not (child / RESULTS).is_file():
                continue
            try:
                record = load_run(child)
            except HistoryError as exc:
                skipped.append((child, str(exc)))
                continue
            if same_site(template, record):
                found.setdefault(record.id, record)
    return sorted(found.values(), key=_order), skipped


def find_runs(directories: Iterable[Path], like: str | RunRecord) -> list[RunRecord]:
    """Every readable run of the site of ``like`` in these report directories, each run once, oldest first.

    ``like`` is a run (its site: ``same_site``) or a profile name (every run of that profile, whatever its
    site). ``latest`` (a symlink to one of the runs), hidden directories (a restore in progress or failed) and
    directories without ``results.json`` are not runs; a run that cannot be read is left out rather than
    failing the history, which is an aid, not evidence (``find_runs_with_skipped`` lists them). The same run
    found twice (the reports directory and a history directory) counts once, the first found.
    """
    return find_runs_with_skipped(directories, like)[0]


def previous_run(current: RunRecord, runs: Iterable[RunRecord]) -> RunRecord | None:
    """The latest run of ``current``'s site (``same_site``) that started before it (ties broken by run id)."""
    earlier = [run for run in runs if same_site(current, run) and run.id != current.id
               and _order(run) < _order(current)]
    return max(earlier, key=_order, default=None)


def history_directories(loaded: LoadedProfile | None, reports_dir: Path) -> list[Path]:
    """Where a run's history is: its own reports directory, then the profile's ``handover.history_dir``.

    ``history_dir`` is resolved relative to the profile file that set it, like ``signing_key``.
    """
    directories = [Path(reports_dir)]
    spec = loaded.profile.handover if loaded is not None else None
    if loaded is not None and spec is not None and spec.history_dir:
        resolved = loaded.resolve_path(("handover", "history_dir"), spec.history_dir) or spec.history_dir
        history = Path(resolved)
        if history.resolve() != Path(reports_dir).resolve():
            directories.append(history)
    return directories


# --- differences ------------------------------------------------------------------------------------------------


def _first_line(row: Mapping[str, Any] | None) -> str:
    """The first line of a requirement's first finding: what the reader needs to see why it changed."""
    if not row:
        return ""
    messages = [m.get("message", "") for m in row.get("messages", []) if isinstance(m, dict)]
    messages += [t.get("message", "") for t in row.get("tests", []) if isinstance(t, dict)]
    for message in messages:
        if message and message.strip():
            return message.strip().splitlines()[0]
    return ""


def _ran(verdict: str | None) -> bool:
    return verdict in RAN_ORDER


@dataclass(frozen=True)
class Change:
    """A requirement whose verdict moved: ``kind`` is one of ``KINDS``; ``old``/``new`` are None when absent."""

    kind: str
    id: str
    title: str
    old: str | None
    new: str | None
    old_message: str = ""
    new_message: str = ""

    def text(self) -> str:
        """The change without its kind: ``DNS-004 title: pass -> fail (first line of the finding)``."""
        message = self.new_message or self.old_message
        return (f"{self.id} {self.title}: {self.old or 'absent'} -> {self.new or 'absent'}"
                + (f" ({message})" if message else ""))

    def line(self) -> str:
        """``text`` after a column of the kind, as ``kkp-readiness diff`` prints it."""
        return f"{self.kind:<10}{self.text()}"


@dataclass(frozen=True)
class FigureChange:
    """A measured figure that moved by at least the threshold; ``direction`` is worse, better or changed."""

    requirement: str
    title: str
    nodeid: str
    name: str
    unit: str
    better: str
    old: float
    new: float
    relative: float  # (new - old) / |old|; +-inf when old was 0
    direction: str

    def text(self) -> str:
        """The move without its direction: ``PERF-001 fdatasync p99 on test_x[local]: 2 -> 3 ms (+50%, lower is
        better)``; the test is named by the last part of its node id."""
        percent = f"{self.relative:+.0%}" if math.isfinite(self.relative) else "from 0"
        how = f"{percent}, {self.better} is better" if self.better else percent
        unit = f" {self.unit}" if self.unit else ""
        return (f"{self.requirement} {self.name} on {self.nodeid.split('::')[-1]}: {self.old:g} -> {self.new:g}"
                f"{unit} ({how})")

    def line(self) -> str:
        """``text`` after a column of the direction, as ``kkp-readiness diff`` prints it."""
        return f"figure {self.direction:<8}{self.text()}"


@dataclass
class RunDiff:
    """What changed from ``old`` to ``new``: requirement verdicts and measured figures."""

    old_id: str
    old_started: str
    new_id: str
    new_started: str
    threshold: float
    changes: list[Change] = field(default_factory=list)
    figures: list[FigureChange] = field(default_factory=list)
    old_profile: str = ""
    new_profile: str = ""

    def _kind(self, kind: str) -> list[Change]:
        return [change for change in self.changes if change.kind == kind]

    @property
    def regressed(self) -> list[Change]:
        return self._kind("regressed")

    @property
    def recovered(self) -> list[Change]:
        return self._kind("recovered")

    @property
    def appeared(self) -> list[Change]:
        return self._kind("appeared")

    @property
    def vanished(self) -> list[Change]:
        return self._kind("vanished")

    @property
    def figures_worse(self) -> list[FigureChange]:
        return [figure for figure in self.figures if figure.direction == "worse"]

    @property
    def has_regressions(self) -> bool:
        """A requirement that ran in both runs got worse (figures are judged separately: ``figures_worse``)."""
        return bool(self.regressed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": {"id": self.old_id, "started": self.old_started, "profile": self.old_profile},
            "new": {"id": self.new_id, "started": self.new_started, "profile": self.new_profile},
            "threshold": self.threshold,
            **{kind: [asdict(change) for change in self._kind(kind)] for kind in KINDS},
            "figures": [{**asdict(f), "relative": f.relative if math.isfinite(f.relative) else None}
                        for f in self.figures],
            "has_regressions": self.has_regressions,
        }

    def lines(self) -> list[str]:
        """The human report: a header naming both runs, then one line per change, worst news first."""
        header = [f"old: {self.old_id} (started {self.old_started or 'unknown'})",
                  f"new: {self.new_id} (started {self.new_started or 'unknown'})"]
        if self.old_profile != self.new_profile:
            header.append(f"note: the runs are of different profiles ({self.old_profile} and {self.new_profile})")
        body = [change.line() for kind in KINDS
                for change in sorted(self._kind(kind), key=lambda change: change.id)]
        figure_rank = {"worse": 0, "changed": 1, "better": 2}
        body += [figure.line() for figure in sorted(
            self.figures, key=lambda f: (figure_rank.get(f.direction, 1), f.requirement, f.nodeid, f.name))]
        return [*header, *(body or ["no changes"])]


def _figures(run: RunRecord) -> dict[tuple[str, str], tuple[str, str, dict[str, Any]]]:
    """(nodeid, figure name) -> (requirement id, title, figure) of every numeric figure; the first one wins."""
    out: dict[tuple[str, str], tuple[str, str, dict[str, Any]]] = {}
    for row in run.requirements.values():
        for test in row.get("tests", []):
            for figure in test.get("figures", []) if isinstance(test, dict) else []:
                value = figure.get("value") if isinstance(figure, dict) else None
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    out.setdefault((str(test.get("nodeid")), str(figure.get("name"))),
                                   (row["id"], str(row.get("title", "")), figure))
    return out


def _figure_change(key: tuple[str, str], old: tuple[str, str, dict[str, Any]], new: tuple[str, str, dict[str, Any]],
                   threshold: float) -> FigureChange | None:
    before, after = float(old[2]["value"]), float(new[2]["value"])
    if before == after:
        return None
    relative = (after - before) / abs(before) if before else math.copysign(math.inf, after - before)
    if abs(relative) < threshold - _EPSILON:
        return None
    better = str(new[2].get("better") or old[2].get("better") or "")
    if better in ("lower", "higher"):
        direction = "worse" if (after > before) == (better == "lower") else "better"
    else:
        direction = "changed"
    return FigureChange(requirement=new[0], title=new[1], nodeid=key[0], name=key[1],
                        unit=str(new[2].get("unit") or old[2].get("unit") or ""), better=better,
                        old=before, new=after, relative=relative, direction=direction)


def diff(old: RunRecord, new: RunRecord, threshold: float = 0.10) -> RunDiff:
    """Compare two runs requirement by requirement and figure by figure (figures move by >= ``threshold``).

    A requirement regressed or recovered only when it ran in both runs (its verdict moved in ``RAN_ORDER``);
    one that ran in only one of them appeared or vanished: a narrower ``-m`` is not a recovery, and a check
    that was not selected before is not a regression.
    """
    if threshold < 0:
        raise HistoryError(f"the figure threshold must not be negative, not {threshold}")
    result = RunDiff(old.id, old.started, new.id, new.started, threshold,
                     old_profile=old.profile, new_profile=new.profile)
    before, after = old.requirements, new.requirements
    for rid in [*before, *(rid for rid in after if rid not in before)]:
        old_row, new_row = before.get(rid), after.get(rid)
        old_verdict = old_row.get("verdict") if old_row else None
        new_verdict = new_row.get("verdict") if new_row else None
        if _ran(old_verdict) and _ran(new_verdict):
            step = RAN_ORDER[str(new_verdict)] - RAN_ORDER[str(old_verdict)]
            kind = "regressed" if step > 0 else "recovered" if step < 0 else None
        elif _ran(new_verdict):
            kind = "appeared"
        elif _ran(old_verdict):
            kind = "vanished"
        else:
            kind = None
        if kind:
            title = str((new_row or old_row or {}).get("title", ""))
            result.changes.append(Change(kind, rid, title, old_verdict, new_verdict,
                                         _first_line(old_row), _first_line(new_row)))
    old_figures, new_figures = _figures(old), _figures(new)
    for key in sorted(set(old_figures) & set(new_figures)):
        moved = _figure_change(key, old_figures[key], new_figures[key], threshold)
        if moved:
            result.figures.append(moved)
    return result


# --- trends -----------------------------------------------------------------------------------------------------


class FigurePoint(NamedTuple):
    """One measurement of a figure in one run."""

    run_id: str
    value: float
    unit: str
    better: str


def figure_series(runs: Sequence[RunRecord]) -> dict[tuple[str, str], list[FigurePoint]]:
    """Every figure across ``runs`` (in their order, oldest first as find_runs gives them), keyed by
    (test nodeid, figure name), keys sorted."""
    series: dict[tuple[str, str], list[FigurePoint]] = {}
    for run in runs:
        for key, (_rid, _title, figure) in _figures(run).items():
            series.setdefault(key, []).append(FigurePoint(run.id, float(figure["value"]), str(figure.get("unit") or ""),
                                                          str(figure.get("better") or "")))
    return dict(sorted(series.items()))


_RUN_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})\d{2}Z")


def _short(run_id: str) -> str:
    """An axis label: ``20261124T174455Z-lab-3f9a`` -> ``11-24 17:44``; other ids are cut to 12 characters."""
    match = _RUN_TIME.match(run_id)
    return f"{match[2]}-{match[3]} {match[4]}:{match[5]}" if match else run_id[:12]


def trend_chart(points: Sequence[FigurePoint | tuple[str, float]], title: str, unit: str = "",
                better: str | None = None, width: int = 520, height: int = 180) -> str:
    """A line of one figure across runs (oldest left), each point labelled with its value.

    ``points`` are (run id, value, ...) tuples, e.g. a ``figure_series`` entry. ``better`` (lower/higher, taken
    from the points when not given) is said in the subtitle, so that a rising line reads right.
    """
    if better is None:
        better = next((str(p[3]) for p in points if len(p) > 3 and p[3]), "")
    left, right, top, bottom = 56, 16, 40, 34
    parts = svg_open(width, height, title)
    if better in ("lower", "higher"):
        parts.append(f'<text x="{width - right}" y="15" text-anchor="end" fill="#616161">'
                     f"{escape(better)} is better</text>")
    if not points:
        parts += [f'<text x="{left}" y="{top + 20}" fill="#616161">no measurements</text>', "</svg>"]
        return "\n".join(parts)
    values = [float(p[1]) for p in points]
    low, high = min(0.0, *values), max(values)
    span = (high - low) or abs(high) or 1.0
    high = low + span * 1.15
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(index: int) -> float:
        return left + (plot_w * (index + 0.5) / len(points))

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - low) / (high - low))

    suffix = f" {unit}" if unit else ""
    parts += [f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#9e9e9e"/>',
              f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#9e9e9e"/>',
              f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{high:.3g}</text>',
              f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">{low:.3g}</text>']
    if unit:
        parts.append(f'<text x="4" y="{top + plot_h / 2:.1f}">{escape(unit)}</text>')
    if len(points) > 1:
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1565c0" stroke-width="2"/>')
    label_every = math.ceil(len(points) * 80 / plot_w)  # an axis label is ~75 px wide: no overlapping labels
    for index, (point, value) in enumerate(zip(points, values, strict=True)):
        run_id = str(point[0])
        parts.append(f'<circle cx="{x(index):.1f}" cy="{y(value):.1f}" r="3.5" fill="#1565c0">'
                     f"<title>{escape(run_id)}: {value:g}{escape(suffix)}</title></circle>")
        if index % label_every == 0 or index == len(points) - 1:
            parts += [f'<text x="{x(index):.1f}" y="{y(value) - 7:.1f}" text-anchor="middle">{value:.3g}</text>',
                      f'<text x="{x(index):.1f}" y="{height - bottom + 16}" text-anchor="middle" fill="#616161">'
                      f"{escape(_short(run_id))}</text>"]
    parts.append("</svg>")
    return "\n".join(parts)


#: The verdicts a trend shows, bottom of the bar first; not-run and not-implemented say what was not selected,
#: which is no news about the site.
TREND_VERDICTS = ("pass", "waived", "skip", "warn", "error", "fail")


def verdict_trend_chart(runs: Sequence[RunRecord], title: str = "Requirements per verdict",
                        width: int = 520, height: int = 200) -> str:
    """Stacked bars of requirement verdict counts, one bar per run, oldest left, with a legend."""
    left, right, top, bottom, legend = 40, 12, 28, 30, 20
    counts = [run.verdict_counts() for run in runs]
    shown = [v for v in TREND_VERDICTS if any(c.get(v) for c in counts)]
    parts = svg_open(width, height, title)
    if not runs:
        parts += [f'<text x="{left}" y="{top + 20}" fill="#616161">no runs</text>', "</svg>"]
        return "\n".join(parts)
    totals = [sum(c.get(v, 0) for v in shown) for c in counts]
    scale = max(totals) or 1
    plot_w, plot_h = width - left - right, height - top - bottom - legend
    slot = plot_w / len(runs)
    bar = max(2.0, min(40.0, slot * 0.7))
    label_every = math.ceil(len(runs) * 80 / plot_w)  # an axis label is ~75 px wide: no overlapping labels
    base = top + plot_h
    parts += [f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="#9e9e9e"/>',
              f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{scale}</text>',
              f'<text x="{left - 4}" y="{base}" text-anchor="end">0</text>']
    for index, (run, count) in enumerate(zip(runs, counts, strict=True)):
        x = left + slot * index + (slot - bar) / 2
        y = float(base)
        for verdict in shown:
            n = count.get(verdict, 0)
            if not n:
                continue
            h = plot_h * n / scale
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{VERDICT_COLOURS.get(verdict, "#9e9e9e")}">'
                         f"<title>{escape(run.id)}: {n} {verdict}</title></rect>")
        if index % label_every == 0 or index == len(runs) - 1:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{base + 14}" text-anchor="middle" fill="#616161">'
                         f"{escape(_short(run.id))}</text>")
    legend_y = height - 8
    for index, verdict in enumerate(shown):
        lx = left + index * 78
        parts += [f'<rect x="{lx}" y="{legend_y - 9}" width="10" height="10" '
                  f'fill="{VERDICT_COLOURS.get(verdict, "#9e9e9e")}"/>',
                  f'<text x="{lx + 14}" y="{legend_y}">{verdict}</text>']
    parts.append("</svg>")
    return "\n".join(parts)
