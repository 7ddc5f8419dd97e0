"""The handover cover's "since the previous run": the diff with the previous run of the same profile and
trend charts over the last runs, from the run history (``report.history``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kkp_readiness.report import history
from kkp_readiness.report.handover import HistoryView

#: Trend charts of figures on the cover at most (one per measured target and figure); the rest are in the diff.
MAX_FIGURE_CHARTS = 8


def _unreadable(skipped: list[tuple[Path, str]]) -> str:
    """The note's sentence on runs that could not be read, e.g. ``2 earlier runs in /srv/reports could not be
    read and are left out.`` (directories resolved: the sentence must not depend on how they were spelled)."""
    if not skipped:
        return ""
    where: dict[str, int] = {}
    for path, _why in skipped:
        key = str(path.parent.resolve())
        where[key] = where.get(key, 0) + 1
    parts = [f"{count} earlier {'run' if count == 1 else 'runs'} in {directory}" for directory, count in where.items()]
    verb = "could not be read and is left out" if len(skipped) == 1 else "could not be read and are left out"
    return f" {', '.join(parts)} {verb}."


def history_view(run_dir: Path, directories: Iterable[Path], runs: int = 10,
                 threshold: float = 0.10) -> HistoryView:
    """Compare the run in ``run_dir`` with the previous run of its site (``history.same_site``) found in
    ``directories``.

    The view depends on the runs found, never on how ``directories`` are spelled: the plugin and
    ``kkp-readiness handover`` pass them differently and must render the same cover.
    """
    try:
        current = history.load_run(run_dir)
    except history.HistoryError as exc:
        return HistoryView(note=f"no comparison: {exc}")
    found, skipped = history.find_runs_with_skipped([Path(d) for d in directories], current)
    earlier = [run for run in found if (run.started, run.id) < (current.started, current.id)]
    window = [*earlier[-(runs - 1):], current] if runs > 1 else [current]
    previous = history.previous_run(current, earlier)
    unreadable = _unreadable(skipped)
    if previous is None:
        site = f" (site {current.base_domain})" if current.base_domain else ""
        return HistoryView(note=f"This is the first run of profile {current.profile}{site} in its history."
                                + unreadable)
    difference = history.diff(previous, current, threshold)
    changes = [(change.kind, change.text()) for change in difference.changes]
    changes += [(f"figure {figure.direction}", figure.text()) for figure in difference.figures]
    charts = [history.verdict_trend_chart(window)] if len(window) > 1 else []
    for (nodeid, name), points in list(history.figure_series(window).items())[:MAX_FIGURE_CHARTS]:
        if len(points) > 1:
            target = nodeid.split("::")[-1]
            charts.append(history.trend_chart(points, f"{name}, {target}", points[-1].unit))
    return HistoryView(previous_run=previous.id, changes=changes, charts=charts,
                       note=f"{len(window)} runs of profile {current.profile} in the trend; figures that moved by "
                            f"{threshold:.0%} or more are listed." + unreadable)
