"""``kkp-readiness handover`` and ``kkp-readiness merge``: the customer's document from existing runs.

Both only read run directories. A run directory that has a manifest is sealed: writing a new
``handover.html`` into it would make ``kkp-readiness verify`` report a changed file, so the report of
a sealed run goes elsewhere (``--out``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kkp_readiness.report.manifest import MANIFEST
from kkp_readiness.verdict import ExitCode


def _handover(args: argparse.Namespace) -> int:
    from kkp_readiness.report import handover

    run_dir = Path(args.run_dir)
    if not (run_dir / "results.json").is_file():
        print(f"error: {run_dir} is not a run directory (no results.json)", file=sys.stderr)
        return ExitCode.USAGE
    out = Path(args.out) if args.out else run_dir / handover.HANDOVER
    if out.resolve().parent == run_dir.resolve() and (run_dir / MANIFEST).is_file():
        print(f"error: {run_dir} is sealed by its {MANIFEST} (kkp-readiness verify would report a changed file); "
              "write the report elsewhere with --out FILE", file=sys.stderr)
        return ExitCode.USAGE
    written = handover.write_handover(run_dir, out=out, history=handover_history(run_dir, args))
    print(f"handover report of {run_dir.name}: {written}")
    return ExitCode.OK


def handover_history(run_dir: Path, args: argparse.Namespace) -> object | None:
    """The comparison with earlier runs of the same profile, for the report's cover (None: none asked)."""
    if getattr(args, "no_history", False):
        return None
    from kkp_readiness.report.history_view import history_view

    directories = [run_dir.resolve().parent, *(Path(d) for d in getattr(args, "history_dir", None) or [])]
    return history_view(run_dir, directories, runs=args.history_runs)


def _merge(args: argparse.Namespace) -> int:
    from kkp_readiness.report.fleet import MergeError, fleet_exit_code, load_fleet_run, render_fleet

    try:
        runs = [load_fleet_run(Path(directory)) for directory in args.run_dirs]
    except MergeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    out = Path(args.out)
    out.write_text(render_fleet(runs, title=args.title), encoding="utf-8")
    code = fleet_exit_code(runs)
    for run in runs:
        print(f"  {run.results.get('run', {}).get('id', '?'):<40} exit {run.exit_code:<4} {run.label}")
    print(f"fleet handover of {len(runs)} runs: {out} (the fleet's exit code: {code})")
    return code


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``handover`` and ``merge`` on the main parser's subcommands."""
    handover = commands.add_parser("handover", help="render the handover report (handover.html) of a run")
    handover.add_argument("run_dir", metavar="RUN_DIR", help="reports/<run-id>")
    handover.add_argument("--out", help="where to write it (default RUN_DIR/handover.html, if RUN_DIR has no "
                                        "manifest yet)")
    handover.add_argument("--history-dir", action="append", metavar="DIR",
                          help="more directories of earlier runs (besides RUN_DIR's own parent); repeatable")
    handover.add_argument("--history-runs", type=int, default=10, metavar="N", help="runs in the trend charts")
    handover.add_argument("--no-history", action="store_true", help="no comparison with earlier runs")
    handover.set_defaults(handler=_handover)

    merge = commands.add_parser("merge", help="one handover report for the runs of several seeds (a fleet view)")
    merge.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="reports/<run-id> of each seed's run")
    merge.add_argument("--out", required=True, help="the fleet's handover report (HTML)")
    merge.add_argument("--title", default="KKP readiness handover: fleet", help="the document's title")
    merge.set_defaults(handler=_merge)
