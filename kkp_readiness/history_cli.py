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

from kkp_readiness.report.archive import UnverifiedRestoreError, archive_run, restore, unarchivable
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
        return previous_run(new, find_runs(directories, new)), new, searched
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
    notes = _notes(old, new, args)
    if args.json:
        print(json.dumps({**result.to_dict(), "notes": notes,
                          "exit_code": ExitCode.FAILED if failed else ExitCode.OK}, indent=2))
    else:
        lines = result.lines()
        for line in [*lines[:2], *(f"note: {note}" for note in notes), *lines[2:]]:
            print(line)
        print(f"{len(result.regressed)} regressed, {len(result.recovered)} recovered, {len(result.appeared)} "
              f"appeared, {len(result.vanished)} vanished; {len(result.figures_worse)} of {len(result.figures)} "
              f"figure(s) that moved by {args.threshold:g}% or more got worse")
    return ExitCode.FAILED if failed else ExitCode.OK


def _notes(old: RunRecord, new: RunRecord, args: argparse.Namespace) -> list[str]:
    """What the reader should know before trusting the direction of the changes."""
    if not args.previous and old.started and new.started and old.started > new.started:
        # the report reads OLD -> NEW: swapped arguments turn every regression into a recovery
        return [f"OLD ({old.id}) started after NEW ({new.id}); the arguments may be swapped"]
    return []


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
    left_out = unarchivable(record.path) if args.force else []
    if left_out:
        print(f"warning: archiving {record.path} without these symbolic links or special files (--force); the "
              "restored run will not match its manifest if it lists them:", file=sys.stderr)
        for path in left_out:
            print(f"  {path.relative_to(record.path).as_posix()}", file=sys.stderr)
    out = Path(args.out) if args.out else Path.cwd() / f"{record.id}.tar.gz"
    digest = archive_run(record.path, out, name=record.id, force=args.force)
    print(f"archived run {record.id} to {out}", file=sys.stderr)
    print(f"{digest}  {out}")  # sha256sum's format: `sha256sum -c` checks it
    return ExitCode.OK


def restore_command(args: argparse.Namespace) -> int:
    """Unpack an archive as a new run directory if it matches its manifest; exit 1 (and the run kept hidden in
    ``.restore-failed-<name>``, out of the history) if not.

    ``keep_unverified`` (``restore --keep-unverified``, where the parser offers it) puts it in place anyway.
    """
    keep = bool(getattr(args, "keep_unverified", False))
    try:
        restored = restore(Path(args.archive), Path(args.reports_dir), keep_unverified=keep)
    except UnverifiedRestoreError as exc:
        print(f"NOT VERIFIED: {exc}")
        return ExitCode.FAILED
    print(f"restored {restored.path}")
    for line in restored.findings:
        print(line)
    if restored.verified:
        print("verified: nothing changed since the run")
        return ExitCode.OK
    print(f"WARNING: NOT VERIFIED, and added to the history anyway (--keep-unverified): {restored.path} does not "
          "match its manifest; comparisons with it compare with a run that may have been changed", file=sys.stderr)
    print("NOT VERIFIED: the restored run differs from its manifest")
    return ExitCode.FAILED
