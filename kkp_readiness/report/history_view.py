"""The handover cover's "since the previous run": the diff with the previous run of the same profile and
trend charts over the last runs, from the run history (``report.history``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kkp_readiness.report import history
from kkp_readiness.report.handover import HistoryView

#: Trend charts of figures on the cover at most (one per measured target and figure); the rest are in the diff.
MAX_FIGURE_CHARTS = 8


def history_view(run_dir: Path, directories: Iterable[Path], runs: int = 10,
                 threshold: float = 0.10) -> HistoryView:
    """Compare the run in ``run_dir`` with the previous run of its profile found in ``directories``."""
    try:
        current = history.load_run(run_dir)
    except history.HistoryError as exc:
        return HistoryView(note=f"no comparison: {exc}")
    searched = [Path(d) for d in directories]
    earlier = [run for run in history.find_runs(searched, current.profile)
               if (run.started, run.id) < (current.started, current.id)]
    window = [*earlier[-(runs - 1):], current] if runs > 1 else [current]
    previous = history.previous_run(current, earlier)
    if previous is None:
        where = ", ".join(str(d) for d in searched) or "no directory"
        return HistoryView(note=f"This is the first run of profile {current.profile} found in {where}.")
    difference = history.diff(previous, current, threshold)
    changes = [(change.kind, f"{change.id} {change.title}: {change.old or 'absent'} -> {change.new or 'absent'}"
                + (f" ({message})" if (message := change.new_message or change.old_message) else ""))
               for change in difference.changes]
    changes += [(f"figure {figure.direction}",
                 f"{figure.requirement} {figure.name} on {figure.nodeid.split('::')[-1]}: {figure.old:g} -> "
                 f"{figure.new:g} {figure.unit} ({figure.better} is better)") for figure in difference.figures]
    charts = [history.verdict_trend_chart(window)] if len(window) > 1 else []
    for (nodeid, name), points in list(history.figure_series(window).items())[:MAX_FIGURE_CHARTS]:
        if len(points) > 1:
            target = nodeid.split("::")[-1]
            charts.append(history.trend_chart(points, f"{name}, {target}", points[-1].unit))
    return HistoryView(previous_run=previous.id, changes=changes, charts=charts,
                       note=f"{len(window)} runs of profile {current.profile} in the trend; figures that moved by "
                            f"{threshold:.0%} or more are listed.")
