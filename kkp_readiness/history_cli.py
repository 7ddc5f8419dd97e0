"""``kkp-readiness diff``, ``archive`` and ``restore``: the commands of a run's history.

The work is done in kkp_readiness.report.history and kkp_readiness.report.archive; these handlers only turn
their findings into output and an exit code (kkp_readiness.verdict.ExitCode): 0 nothing regressed / done and
verified, 1 a requirement regressed / the run does not match its manifest, 2 bad input (raised as a
``KkpReadinessError``, which ``kkp_readiness.cli.main`` turns into exit code 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kkp_readiness.report.archive import archive_run, restore_run
from kkp_readiness.report.history import HistoryError, RunRecord, diff, find_runs, load_run, previous_run
from kkp_readiness.report.manifest import ManifestError, verify_run
from kkp_readiness.verdict import ExitCode


def _pair(args: argparse.Namespace) -> tuple[RunRecord | None, RunRecord, str]:
    """(old, new, what was searched) from ``diff OLD NEW`` or ``diff --previous NEW``."""
    if args.previous:
        if len(args.runs) != 1:
            raise HistoryError("diff --previous takes one run, the new one: kkp-readiness diff --previous NEW")
        new = load_run(args.runs[0])
        directories = [new.path.parent, *(Path(d) for d in args.search_dirs or ())]
        searched = ", ".join(str(d) for d in directories)
        return previous_run(new, find_runs(directories, new.profile)), new, searched
    if len(args.runs) != 2:
        raise HistoryError("diff takes two runs: kkp-readiness diff OLD NEW (or diff --previous NEW)")
    return load_run(args.runs[0]), load_run(args.runs[1]), ""


def diff_command(args: argparse.Namespace) -> int:
    """Print what changed between two runs; exit 1 when a requirement regressed (or a figure, if asked)."""
    if args.threshold < 0:
        raise HistoryError(f"--threshold must be a percentage of at least 0, not {args.threshold:g}")
    old, new, searched = _pair(args)
    if old is None:
        message = f"no earlier run of profile {new.profile} in {searched}: nothing to compare {new.id} with"
        print(json.dumps({"old": None, "new": {"id": new.id}, "message": message}) if args.json else message)
        return ExitCode.OK
    result = diff(old, new, threshold=args.threshold / 100)
    failed = result.has_regressions or (args.fail_on_figures and bool(result.figures_worse))
    if args.json:
        print(json.dumps({**result.to_dict(), "exit_code": ExitCode.FAILED if failed else ExitCode.OK}, indent=2))
    else:
        for line in result.lines():
            print(line)
        print(f"{len(result.regressed)} regressed, {len(result.recovered)} recovered, {len(result.appeared)} "
              f"appeared, {len(result.vanished)} vanished; {len(result.figures_worse)} of {len(result.figures)} "
              f"figure(s) that moved by {args.threshold:g}% or more got worse")
    return ExitCode.FAILED if failed else ExitCode.OK


def archive_command(args: argparse.Namespace) -> int:
    """Pack a run directory, after checking it still matches its manifest (``--force``: pack it anyway)."""
    record = load_run(args.run_dir)
    try:
        verification = verify_run(record.path)
        problems = [] if verification.ok else verification.lines()
        why = "it no longer matches its manifest"
    except ManifestError as exc:
        problems, why = [str(exc)], "it has no usable manifest"
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        if not args.force:
            print(f"refusing to archive {record.path}: {why} (see above); --force archives it anyway",
                  file=sys.stderr)
            return ExitCode.FAILED
        print(f"warning: archiving {record.path} although it does not match its manifest (--force)",
              file=sys.stderr)
    out = Path(args.out) if args.out else Path.cwd() / f"{record.id}.tar.gz"
    digest = archive_run(record.path, out, name=record.id)
    print(f"archived run {record.id} to {out}", file=sys.stderr)
    print(f"{digest}  {out}")  # sha256sum's format: `sha256sum -c` checks it
    return ExitCode.OK


def restore_command(args: argparse.Namespace) -> int:
    """Unpack an archive as a new run directory, then say whether it matches its manifest (exit 1 if not)."""
    run_dir = restore_run(Path(args.archive), Path(args.reports_dir))
    print(f"restored {run_dir}")
    try:
        verification = verify_run(run_dir)
    except ManifestError as exc:
        print(f"NOT VERIFIED: {exc}")
        return ExitCode.FAILED
    for line in verification.lines():
        print(line)
    print("verified: nothing changed since the run" if verification.ok
          else "NOT VERIFIED: the restored run differs from its manifest")
    return ExitCode.OK if verification.ok else ExitCode.FAILED
