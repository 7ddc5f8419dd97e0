"""The fleet view: the runs of several seeds (or sites) in one handover document (``kkp-readiness merge``).

An operator whose platform spans many seeds runs the suite once per seed profile; the customer wants
one document. Each run keeps its own identity, verdicts and evidence (nothing is re-judged); the
cover says how the fleet stands as a whole (its worst run), and a matrix shows every requirement
against every run, each cell linking to that run's finding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kkp_readiness.report.handover import (
    badge,
    esc,
    identity_html,
    not_run_html,
    overall,
    page,
    requirements_html,
    section_charts,
    waivers_html,
    warnings_html,
)
from kkp_readiness.report.manifest import ManifestError, sha256_file, verify_run
from kkp_readiness.report.results import load_results
from kkp_readiness.verdict import ExitCode

#: Which run decides the fleet's headline: a failing seed outweighs one that could not be checked, which
#: outweighs warnings. A run without a verdict (usage error, nothing selected, interrupted) counts as
#: one that could not be checked.
_FLEET_RANK = {ExitCode.OK: 0, ExitCode.WARNINGS: 1, ExitCode.ERRORS: 2, ExitCode.FAILED: 3}


@dataclass(frozen=True)
class FleetRun:
    """One run of the fleet: its directory, results and the hashes that tie the document to it."""

    directory: Path
    results: Mapping[str, Any]
    results_sha256: str
    #: What ``verify_run`` says of the directory: "verified, signed by SHA256:..", "verified, unsigned", or why not.
    verification: str
    verified: bool

    @property
    def label(self) -> str:
        run = self.results.get("run", {})
        seeds = ", ".join(run.get("seeds", []))
        return f"{run.get('profile', '?')}" + (f" (seeds {seeds})" if seeds else "")

    @property
    def exit_code(self) -> int:
        return int(self.results.get("exit_code", ExitCode.USAGE))


def load_fleet_run(directory: Path) -> FleetRun:
    """One run for the fleet document, checked against its manifest (a merged document must not launder an
    edited run: what does not verify is said on the cover and beside the run)."""
    results = load_results(directory)  # a ResultsError names the file and the field
    try:
        check = verify_run(directory)
    except ManifestError as exc:
        verified, verification = False, f"not verifiable: {exc}"
    else:
        verified = check.ok
        if not check.ok:
            verification = "NOT VERIFIED: " + "; ".join(check.lines())
        elif check.signature == "valid":
            verification = f"verified, signed by {check.key_fingerprint}"
        else:
            verification = "verified, unsigned"
    return FleetRun(directory, results, sha256_file(directory / "results.json"), verification, verified)


def load_fleet(directories: Sequence[Path]) -> list[FleetRun]:
    """The runs of ``directories``, each once (the same directory named twice would count twice)."""
    seen: set[Path] = set()
    runs = []
    for directory in directories:
        resolved = Path(directory).resolve()
        if resolved not in seen:
            seen.add(resolved)
            runs.append(load_fleet_run(Path(directory)))
    return runs


def fleet_exit_code(runs: Sequence[FleetRun]) -> int:
    """The fleet's code: that of its worst run (a run without a verdict counts as incomplete)."""
    return max((run.exit_code if run.exit_code in _FLEET_RANK else ExitCode.ERRORS for run in runs),
               key=_FLEET_RANK.__getitem__, default=ExitCode.NO_TESTS)


def render_fleet(runs: Sequence[FleetRun], title: str = "KKP readiness handover: fleet") -> str:
    """One document for all ``runs``: a fleet cover, the requirement matrix, then each run in full."""
    code = fleet_exit_code(runs)
    all_rows = [row for run in runs for row in run.results.get("requirements", [])]
    big, why, key = overall(code, Counter(row["verdict"] for row in all_rows))
    doubtful = [f"run {index} ({run.directory}): {run.verification}" for index, run in enumerate(runs, start=1)
                if not run.verified]
    body = [
        warnings_html(doubtful),
        '<section class="cover">', f"<h1>{esc(title)}</h1>",
        f'<p><span id="overall-verdict" class="overall v-{key}">{esc(big)}</span></p>',
        f"<p>The fleet's verdict is that of its worst run: {esc(why)}. {len(runs)} runs.</p>",
        _runs_table(runs), "<h2>Per checklist section, all runs</h2>",
        '<div class="charts">', *section_charts(all_rows), "</div>", "</section>",
        _matrix(runs),
    ]
    for index, run in enumerate(runs, start=1):
        prefix = f"r{index}-"
        rows = run.results.get("requirements", [])
        body += [f'<h2 id="run-{index}">Run {index}: {esc(run.label)}</h2>',
                 identity_html(run.results.get("run", {}), prefix),
                 "<h3>What was not run, and why</h3>", not_run_html(rows, prefix),
                 "<h3>Waivers</h3>", waivers_html(run.results.get("waivers", []), prefix),
                 requirements_html(rows, prefix, heading=f"Requirements of run {index}")]
    body.append(_sources(runs))
    return page(title, body)


def _runs_table(runs: Sequence[FleetRun]) -> str:
    rows = []
    for index, run in enumerate(runs, start=1):
        counts = Counter(row["verdict"] for row in run.results.get("requirements", []))
        big, _, key = overall(run.exit_code, counts)
        shown = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        info = run.results.get("run", {})
        rows.append(f'<tr><td><a href="#run-{index}">{index}</a></td><td>{esc(run.label)}</td>'
                    f'<td class="mono">{esc(info.get("id", ""))}</td><td>{esc(info.get("started", ""))}</td>'
                    f"<td>{badge(key, big)}</td><td>{esc(shown)}</td></tr>")
    return ('<table id="runs"><tr><th>#</th><th>Profile</th><th>Run</th><th>Started</th><th>Verdict</th>'
            f"<th>Requirements</th></tr>{''.join(rows)}</table>")


def _matrix(runs: Sequence[FleetRun]) -> str:
    """Requirement x run: the catalogue order of the first run, then any id only a later run has."""
    order: dict[str, str] = {}
    verdicts: dict[tuple[int, str], str] = {}
    for index, run in enumerate(runs, start=1):
        for row in run.results.get("requirements", []):
            order.setdefault(row["id"], row["title"])
            verdicts[(index, row["id"])] = row["verdict"]
    head = "".join(f'<th><a href="#run-{i}">{i}</a></th>' for i in range(1, len(runs) + 1))
    lines = []
    for rid, title in order.items():
        cells = "".join(
            f'<td><a href="#r{i}-{esc(rid)}">{badge(v)}</a></td>' if (v := verdicts.get((i, rid))) else
            "<td>absent</td>" for i in range(1, len(runs) + 1))
        lines.append(f'<tr><td class="mono">{esc(rid)}</td><td>{esc(title)}</td>{cells}</tr>')
    return (f'<h2>Every requirement, every run</h2><table id="matrix"><tr><th>Requirement</th><th>Title</th>{head}</tr>'
            f"{''.join(lines)}</table>")


def _sources(runs: Sequence[FleetRun]) -> str:
    rows = "".join(
        f'<tr><td>{index}</td><td class="mono">{esc(run.directory)}</td><td class="mono">{run.results_sha256}</td>'
        f'<td class="mono">{esc(run.verification)}</td></tr>'
        for index, run in enumerate(runs, start=1))
    return ('<h2 id="artifacts">Source runs</h2><p>This document was merged from these run directories; check each '
            "with <code>kkp-readiness verify RUN_DIR</code>, which compares every file with its manifest.</p>"
            '<table class="artifacts"><tr><th>#</th><th>Run directory</th><th>results.json SHA-256</th>'
            f"<th>Checked against its manifest</th></tr>{rows}</table>")
