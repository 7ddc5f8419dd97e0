"""``kkp-readiness``: the catalogue, profiles, the local lab, and runs of the suite.

>>> main(["catalogue", "--json"])     # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from kkp_readiness import __version__
from kkp_readiness.catalogue import catalogue_json, implemented_ids, load_catalogue
from kkp_readiness.errors import KkpReadinessError, LabError
from kkp_readiness.profile import lab_dir, load_profile
from kkp_readiness.report.run import new_run_id
from kkp_readiness.verdict import ExitCode

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _catalogue(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    implemented = implemented_ids()
    entries = catalogue_json(catalogue, implemented)
    if args.section:
        entries = [e for e in entries if e["section"] == args.section.upper()]
    if args.json:
        print(json.dumps(entries, indent=2))
        return ExitCode.OK
    for section in catalogue.sections:
        rows = [e for e in entries if e["section"] == section.id]
        if not rows:
            continue
        done = sum(e["implemented"] for e in rows)
        print(f"{section.id} — {section.title} ({done}/{len(rows)} implemented)")
        for entry in rows:
            flag = "x" if entry["implemented"] else " "
            print(f"  [{flag}] {entry['id']:<15}{entry['level']:<12}{entry['severity']:<9}{entry['title']}")
    total = sum(e["implemented"] for e in entries)
    print(f"\n{total}/{len(entries)} requirements implemented")
    return ExitCode.OK


def _profile(args: argparse.Namespace) -> int:
    loaded = load_profile(args.profile)
    if args.action == "validate":
        chain = " <- ".join(str(f.path.name) for f in reversed(loaded.files))
        print(f"profile {loaded.name} is valid ({chain}); sha256 {loaded.sha256}")
        return ExitCode.OK
    print(json.dumps({"name": loaded.name, "sha256": loaded.sha256,
                      "files": [{"path": str(f.path), "sha256": f.sha256} for f in loaded.files],
                      "document": loaded.document}, indent=2, default=str))
    return ExitCode.OK


def _lab(args: argparse.Namespace) -> int:
    from kkp_readiness.lab import FAULTS, Lab

    directory = Path(args.dir) if args.dir else lab_dir()
    state_file = directory / "state.json"
    if args.action == "faults":
        for fault in FAULTS.values():
            breaks = ", ".join(fault.breaks) or "(warning only)"
            print(f"{fault.name:<28}{fault.part:<9}{breaks:<22}{fault.description}")
        return ExitCode.OK
    if args.action == "up":
        if state_file.exists():
            lab = Lab.attach(directory)
            if any(lab.status().values()):
                raise LabError(f"a lab is already running in {directory}; stop it with `kkp-readiness lab down`")
            lab.stop()
            state_file.unlink(missing_ok=True)
        directory.mkdir(parents=True, exist_ok=True)
        state = Lab(workdir=directory, faults=args.fault or ()).start()
        print(json.dumps(state, indent=2))
        print(f"lab running (state in {state_file}); run the suite with --profile=lab; "
              "stop it with `kkp-readiness lab down`", file=sys.stderr)
        return ExitCode.OK
    if not state_file.exists():
        print(f"no lab state in {directory}: the lab is not running", file=sys.stderr)
        return ExitCode.OK if args.action == "down" else 1
    lab = Lab.attach(directory)
    if args.action == "status":
        status = lab.status()
        for part, alive in status.items():
            print(f"{part:<10}{'up' if alive else 'DOWN'}")
        return ExitCode.OK if all(status.values()) else 1
    lab.stop()
    state_file.unlink(missing_ok=True)
    print("lab stopped", file=sys.stderr)
    return ExitCode.OK


def _cleanup(args: argparse.Namespace) -> int:
    """Remove what active checks of killed runs left behind, on every seed of the profile."""
    from kkp_readiness.probes.kube import ClusterReader
    from kkp_readiness.probes.kube_active import delete_namespace, leftovers
    from kkp_readiness.snapshot import seed_access

    loaded = load_profile(args.profile)
    code = ExitCode.OK
    for target in loaded.profile.seeds:
        reader = ClusterReader(seed_access(loaded, target))
        target = target.name
        try:
            names = leftovers(reader)
            for name in names:
                if not args.dry_run:
                    delete_namespace(reader, name)
                print(f"seed {target}: {'would delete' if args.dry_run else 'deleted'} namespace {name}")
            if not names:
                print(f"seed {target}: nothing left behind")
        except KkpReadinessError as exc:
            print(f"seed {target}: {exc}", file=sys.stderr)
            code = ExitCode.ERRORS
    return code


def _collect(args: argparse.Namespace) -> int:
    """Save what the cluster checks read, per seed, for an offline audit with --cluster-snapshot."""
    from kkp_readiness.snapshot import collect

    loaded = load_profile(args.profile)
    result = collect(loaded, Path(args.out))
    for is_problem, line in result.report_lines():
        print(line, file=sys.stderr if is_problem else sys.stdout)
    print(f"snapshot of profile {loaded.name} in {result.directory} (manifest {result.directory / 'manifest.yaml'}); "
          f"audit it with: pytest -m cluster --profile={args.profile} --cluster-snapshot={result.directory}")
    return ExitCode.ERRORS if result.problems else ExitCode.OK


def run_pytest(pytest_args: Sequence[str]) -> int:
    """Run the suite; pytest's own usage errors (its exit code 4) become our exit code 2."""
    import pytest

    from kkp_readiness import plugin

    plugin._CONTROLLER.state = None
    plugin._CONTROLLER.exit_code = None
    code = int(pytest.main(list(pytest_args)))
    if code == pytest.ExitCode.USAGE_ERROR:
        # pytest's own usage errors (bad option, unknown -m marker) end with its code 4, which is our
        # "warnings only"; the plugin knows whether the run really ended in warnings.
        return plugin._CONTROLLER.exit_code if plugin._CONTROLLER.exit_code == ExitCode.WARNINGS else ExitCode.USAGE
    return code


def _run(args: argparse.Namespace) -> int:
    if args.project_dir:
        os.chdir(PROJECT_ROOT)
    return run_pytest(args.pytest_args)


def _demo(args: argparse.Namespace) -> int:
    """Start a private lab, run the whole suite against it with --profile lab, stop the lab."""
    from kkp_readiness.lab import Lab

    reports = Path(args.reports_dir).resolve()  # before chdir: relative to where the user is
    os.chdir(PROJECT_ROOT)
    run_id = new_run_id("lab")
    with Lab(faults=args.fault or ()) as lab:
        os.environ["KKP_READINESS_LAB_DIR"] = str(lab.workdir)
        print(f"lab up in {lab.workdir}", file=sys.stderr)
        # The lab is ours: the active checks (which create and delete test objects) run too.
        code = run_pytest(["--profile=lab", f"--reports-dir={reports}", f"--run-id={run_id}", "--active",
                           "-p", "no:cacheprovider", *args.pytest_args])
    run_dir = reports / run_id
    if not run_dir.is_dir():
        print(f"\nlab stopped. The run wrote no reports (exit code {code}).")
        return code
    print(f"\nlab stopped. Reports of this run: {run_dir}")
    for name in ("handover.html", "report.html", "results.json", "junit.xml", "allure-results", "allure-report",
                 "manifest.json"):
        if (run_dir / name).exists():
            print(f"  {name:<15}{run_dir / name}")
    if (run_dir / "allure-report").exists():
        print(f"  open the Allure report: {shutil.which('allure') or '.tools/node_modules/.bin/allure'} open "
              f"{run_dir / 'allure-report'}")
    print(f"exit code {code}")
    return code


def _verify(args: argparse.Namespace) -> int:
    """Recompute every artifact's SHA-256 and check the manifest's signature; name what changed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from kkp_readiness.report.manifest import verify_run

    public_key = None
    if args.public_key:
        try:
            loaded = serialization.load_pem_public_key(Path(args.public_key).read_bytes())
        except (OSError, ValueError) as exc:
            print(f"error: cannot read the public key {args.public_key}: {exc}", file=sys.stderr)
            return ExitCode.USAGE
        if not isinstance(loaded, Ed25519PublicKey):
            print(f"error: {args.public_key} is not an Ed25519 public key", file=sys.stderr)
            return ExitCode.USAGE
        public_key = loaded
    result = verify_run(Path(args.run_dir), public_key)
    for line in result.lines():
        print(line)
    print("verified: nothing changed since the run" if result.ok else "NOT VERIFIED: the run directory changed")
    return ExitCode.OK if result.ok else ExitCode.FAILED


def _diff(args: argparse.Namespace) -> int:
    from kkp_readiness.history_cli import diff_command

    return diff_command(args)


def _archive(args: argparse.Namespace) -> int:
    from kkp_readiness.history_cli import archive_command

    return archive_command(args)


def _restore(args: argparse.Namespace) -> int:
    from kkp_readiness.history_cli import restore_command

    return restore_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kkp-readiness", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kkp-readiness {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    catalogue = commands.add_parser("catalogue", help="list the requirement catalogue")
    catalogue.add_argument("--json", action="store_true", help="print it as a JSON list")
    catalogue.add_argument("--section", help="only this section, e.g. DNS")
    catalogue.set_defaults(handler=_catalogue)

    profile = commands.add_parser("profile", help="validate or show a profile")
    profile.add_argument("action", choices=["validate", "show"])
    profile.add_argument("profile", help="profile name or path")
    profile.set_defaults(handler=_profile)

    lab = commands.add_parser("lab", help="the local lab on 127.0.0.1: up, down, status, faults")
    lab.add_argument("action", choices=["up", "down", "status", "faults"])
    lab.add_argument("--dir", help=f"lab state directory (default: $KKP_READINESS_LAB_DIR or {lab_dir()})")
    lab.add_argument("--fault", action="append", help="start with this named fault (repeatable; see `lab faults`)")
    lab.set_defaults(handler=_lab)

    cleanup = commands.add_parser("cleanup", help="delete namespaces active checks of killed runs left behind")
    cleanup.add_argument("--profile", required=True, help="profile name or path")
    cleanup.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    cleanup.set_defaults(handler=_cleanup)

    collect = commands.add_parser("collect", help="save what the cluster checks read, for --cluster-snapshot")
    collect.add_argument("--profile", required=True, help="profile name or path")
    collect.add_argument("--out", required=True, metavar="DIR", help="a new or empty directory for the snapshot")
    collect.set_defaults(handler=_collect)

    verify = commands.add_parser("verify", help="check a run directory against its (signed) manifest")
    verify.add_argument("run_dir", metavar="RUN_DIR", help="reports/<run-id>")
    verify.add_argument("--public-key", help="the Ed25519 public key (PEM) the manifest must be signed with")
    verify.set_defaults(handler=_verify)

    from kkp_readiness import handover_cli

    handover_cli.add_commands(commands)

    diff = commands.add_parser("diff", help="what changed between two runs (exit 1 if a requirement regressed)")
    diff.add_argument("runs", nargs="+", metavar="RUN", help="OLD NEW (run directories or results.json), "
                                                             "or NEW with --previous")
    diff.add_argument("--previous", action="store_true",
                      help="compare NEW with the previous run of its profile in NEW's reports directory")
    diff.add_argument("--reports-dir", "--history-dir", dest="search_dirs", action="append", metavar="DIR",
                      help="with --previous: search this directory of runs too (repeatable)")
    diff.add_argument("--threshold", type=float, default=10.0, metavar="PCT",
                      help="report figures that moved by at least PCT percent (default 10)")
    diff.add_argument("--fail-on-figures", action="store_true", help="exit 1 also when a figure got worse")
    diff.add_argument("--json", action="store_true", help="print the differences as JSON")
    diff.set_defaults(handler=_diff)

    archive = commands.add_parser("archive", help="pack a run directory (checked against its manifest) as .tar.gz")
    archive.add_argument("run_dir", metavar="RUN_DIR", help="reports/<run-id>")
    archive.add_argument("--out", metavar="FILE", help="the archive (default: ./<run-id>.tar.gz)")
    archive.add_argument("--force", action="store_true", help="archive even if the run does not match its manifest")
    archive.set_defaults(handler=_archive)

    restore = commands.add_parser("restore", help="unpack a run archive into the reports directory and verify it")
    restore.add_argument("archive", metavar="ARCHIVE", help="a .tar.gz written by `kkp-readiness archive`")
    restore.add_argument("--reports-dir", default=os.environ.get("KKP_READINESS_REPORTS", "reports"), metavar="DIR",
                         help="where the run directory is created (default: $KKP_READINESS_REPORTS or ./reports)")
    restore.add_argument("--keep-unverified", action="store_true",
                         help="put a run that does not match its manifest into the history anyway (with a warning)")
    restore.set_defaults(handler=_restore)

    run = commands.add_parser("run", help="run the suite (arguments after -- go to pytest)")
    run.add_argument("--project-dir", action="store_true", help="run from the suite's checkout directory")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER)
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="start the lab, run the whole suite against it, stop the lab")
    demo.add_argument("--reports-dir", default=str(PROJECT_ROOT / "reports"))
    demo.add_argument("--fault", action="append", help="start the lab with this fault (repeatable)")
    demo.add_argument("pytest_args", nargs=argparse.REMAINDER)
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "pytest_args", None) and args.pytest_args[0] == "--":
        args.pytest_args = args.pytest_args[1:]
    try:
        return int(args.handler(args))
    except KkpReadinessError as exc:
        print(f"kkp-readiness: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except BrokenPipeError:  # `kkp-readiness catalogue --json | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
