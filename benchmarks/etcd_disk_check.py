"""What does the suite's etcd-disk check (PERF-001) cost over running the same fio command by hand?

The benchmark starts ONE healthy local lab and times, ``--repeat`` times each, interleaved round by
round so that machine noise spreads evenly:

* **suite check**: ``python -m pytest tests_infra --profile=<lab variant> -m benchmark -k "PERF-001 and local"``
  as a subprocess from the project root, as an operator runs it: interpreter start-up, plugin, profile,
  collection, the fio run through the check's shell script (temporary directory, filesystem probe, cleanup),
  parsing, the chart, the evidence and the HTML/JUnit/Allure results. It must exit 0 (a failing run is no
  valid sample).
* **bare fio**: the very command line the check runs (``kkp_readiness.probes.fio.etcd_recipe``, the same
  size, block size and runtime bound) in a fresh directory under the same local directory, then the
  directory removed: the least anyone measuring the disk has to do.

Both write the etcd recipe's bytes (``--size``, default 22m as etcd's guidance has it) to the same
filesystem, so the difference is what the suite adds. The lab variant profile sets that size and measures
only the local target (``performance.targets: [local]``).

Run from the project root with its virtual environment (needs fio, dnsmasq, NGINX, sshd... see
``scripts/setup``)::

    .venv/bin/python benchmarks/etcd_disk_check.py --repeat 5 [--size 22m] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from kkp_readiness.lab import Lab  # noqa: E402
from kkp_readiness.probes import fio  # noqa: E402


def suite_once(lab_dir: Path, profile: Path, reports: Path) -> float:
    command = [sys.executable, "-m", "pytest", "tests_infra", f"--profile={profile}", f"--reports-dir={reports}",
               "-p", "no:cacheprovider", "--no-allure-report", "-q", "-m", "benchmark", "-k", "PERF-001 and local"]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
                               env={**os.environ, "KKP_READINESS_LAB_DIR": str(lab_dir)})
    elapsed = time.perf_counter() - started
    if completed.returncode != 0 or not re.search(r"^1 passed", completed.stdout, re.MULTILINE):
        sys.exit(f"the suite's check did not pass (exit {completed.returncode}):\n{completed.stdout[-2000:]}")
    return elapsed


def bare_once(base: str, size: str, runtime: float) -> float:
    run = fio.etcd_recipe(base, size=size, block_size=2300, runtime=runtime)
    started = time.perf_counter()
    directory = tempfile.mkdtemp(prefix="bare-fio.", dir=base)
    try:
        completed = subprocess.run(run.argv(directory), capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"fio failed: {completed.stderr[-1000:]}")
    return elapsed


def describe(samples: list[float]) -> dict[str, float]:
    return {"min": min(samples), "median": statistics.median(samples), "max": max(samples)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size", default="22m", help="bytes the etcd recipe writes (fio size syntax)")
    parser.add_argument("--runtime", type=float, default=60.0, help="fio's --runtime bound, as in the profile")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    with Lab() as lab, tempfile.TemporaryDirectory(prefix="kkp-bench-") as scratch:
        assert lab.state is not None
        local_dir = lab.state["perf"]["local_dir"]
        profile = Path(scratch) / "lab-bench.yaml"
        profile.write_text(json.dumps({
            "extends": str(PROJECT_ROOT / "profiles" / "lab.yaml"), "name": "lab-bench",
            "performance": {"targets": ["local"], "fio": {"size": args.size, "runtime": args.runtime}}}))
        suite: list[float] = []
        bare: list[float] = []
        suite_once(lab.workdir, profile, Path(scratch) / "warmup")  # fills the page cache and the .pyc files
        for round_number in range(args.repeat):
            suite.append(suite_once(lab.workdir, profile, Path(scratch) / f"r{round_number}"))
            bare.append(bare_once(local_dir, args.size, args.runtime))
    figures = {"size": args.size, "repeat": args.repeat, "suite_check_s": describe(suite), "bare_fio_s": describe(bare),
               "ratio_of_medians": statistics.median(suite) / statistics.median(bare)}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"etcd recipe ({args.size}, 2300-byte writes, fdatasync each), {args.repeat} rounds, seconds:")
    rows = (("suite check (pytest, PERF-001 local)", "suite_check_s"), ("bare fio, same command", "bare_fio_s"))
    for name, key in rows:
        row = figures[key]
        print(f"  {name:<38} min {row['min']:6.2f}  median {row['median']:6.2f}  max {row['max']:6.2f}")
    print(f"  ratio of medians (suite / bare fio): {figures['ratio_of_medians']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
