"""``kkp-readiness handover`` and ``kkp-readiness merge``: the customer's document from existing runs.

Both only read run directories. A run directory that has a manifest is sealed: writing a new
``handover.html`` into it would make ``kkp-readiness verify`` report a changed file, so the report of
a sealed run goes elsewhere (``--out``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kkp_readiness.report.manifest import MANIFEST
from kkp_readiness.verdict import ExitCode

if TYPE_CHECKING:
    from kkp_readiness.report.handover import HistoryView


def _handover(args: argparse.Namespace) -> int:
    from kkp_readiness.report import handover
    from kkp_readiness.report.results import load_results

    run_dir = Path(args.run_dir)
    results = load_results(run_dir)  # a ResultsError (exit 2) names the file and what is wrong
    out = Path(args.out) if args.out else run_dir / handover.HANDOVER
    if out.resolve().is_relative_to(run_dir.resolve()) and (run_dir / MANIFEST).is_file():
        print(f"error: {run_dir} is sealed by its {MANIFEST} (kkp-readiness verify would report a changed file); "
              "write the report elsewhere with --out FILE", file=sys.stderr)
        return ExitCode.USAGE
    fingerprint, warnings = _verification(run_dir)
    try:
        written = handover.write_handover(run_dir, results, out=out, signing_fingerprint=fingerprint,
                                          history=handover_history(run_dir, results, args), warnings=warnings)
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror or exc}; create its directory or choose another --out",
              file=sys.stderr)
        return ExitCode.USAGE
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"handover report of {run_dir.name}: {written}")
    return ExitCode.FAILED if warnings else ExitCode.OK


def _verification(run_dir: Path) -> tuple[str | None, list[str]]:
    """The signer's fingerprint when the run verifies with a valid signature, and what to warn the reader of.

    The document claims what the plugin would have claimed only when the directory still matches its manifest.
    """
    from kkp_readiness.report.manifest import ManifestError, verify_run

    if not (run_dir / MANIFEST).is_file():
        return None, []  # a run from before manifests: nothing to claim, nothing contradicted
    try:
        check = verify_run(run_dir)
    except ManifestError as exc:
        return None, [f"the run directory cannot be checked against its manifest: {exc}"]
    if not check.ok:
        return None, ["the run directory does not match its manifest: " + "; ".join(check.lines())]
    return (check.key_fingerprint if check.signature == "valid" else None), []


def handover_history(run_dir: Path, results: dict, args: argparse.Namespace) -> HistoryView | None:
    """The comparison with earlier runs of the same profile, for the report's cover (None: none asked).

    By default the same history the run itself used: its reports directory, the profile's history directory and
    trend length as the run recorded them; so the report renders as the run wrote it.
    """
    if getattr(args, "no_history", False):
        return None
    from kkp_readiness.report.history_view import history_view

    run = results.get("run", {})
    directories = [run_dir.resolve().parent]
    if run.get("history_dir"):
        directories.append(Path(run["history_dir"]))
    directories += [Path(d) for d in getattr(args, "history_dir", None) or []]
    runs = args.history_runs or int(run.get("history_runs") or 10)
    return history_view(run_dir, directories, runs=runs)


def _merge(args: argparse.Namespace) -> int:
    from kkp_readiness.report.fleet import fleet_exit_code, load_fleet, render_fleet

    runs = load_fleet([Path(directory) for directory in args.run_dirs])  # ResultsError: exit 2, names the file
    out = Path(args.out)
    try:
        out.write_text(render_fleet(runs, title=args.title), encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror or exc}; create its directory or choose another --out",
              file=sys.stderr)
        return ExitCode.USAGE
    code = fleet_exit_code(runs)
    for run in runs:
        print(f"  {run.results.get('run', {}).get('id', '?'):<40} exit {run.exit_code:<4} {run.label}: "
              f"{run.verification}")
    print(f"fleet handover of {len(runs)} runs: {out} (the fleet's exit code: {code})")
    return code


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``handover`` and ``merge`` on the main parser's subcommands."""
    handover = commands.add_parser("handover", help="render the handover report (handover.html) of a run")
    handover.add_argument("run_dir", metavar="RUN_DIR", help="reports/<run-id>")
    handover.add_argument("--out", help="where to write it (default RUN_DIR/handover.html, if RUN_DIR has no "
                                        "manifest yet)")
    handover.add_argument("--history-dir", action="append", metavar="DIR",
                          help="more directories of earlier runs (besides RUN_DIR's own parent and the profile's "
                               "history_dir the run recorded); repeatable")
    handover.add_argument("--history-runs", type=int, metavar="N",
                          help="runs in the trend charts (default: as the run recorded it, else 10)")
    handover.add_argument("--no-history", action="store_true", help="no comparison with earlier runs")
    handover.set_defaults(handler=_handover)

    merge = commands.add_parser("merge", help="one handover report for the runs of several seeds (a fleet view)")
    merge.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="reports/<run-id> of each seed's run")
    merge.add_argument("--out", required=True, help="the fleet's handover report (HTML)")
    merge.add_argument("--title", default="KKP readiness handover: fleet", help="the document's title")
    merge.set_defaults(handler=_merge)
