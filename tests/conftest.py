"""Shared fixtures of the project's own tests: labs and a runner for the shipped suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SUITE_TIMEOUT = 300
#: Tests that take a minute of wall time (etcdctl check perf runs 60 s, throttled disks): started first, so that
#: the two xdist workers do not end with one of them running a long test alone.
LONG_RUNNING = ("test_performance_suite.py::test_check_perf", "test_performance_suite.py::test_throttled")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not any(name in item.nodeid for name in LONG_RUNNING))


@dataclass
class SuiteRun:
    """One run of the shipped suite: exit code, output and its results.json."""

    returncode: int
    output: str
    run_dir: Path | None
    results: dict[str, Any] | None

    def verdicts(self, sections: tuple[str, ...] = ("DNS", "CERT")) -> dict[str, str]:
        assert self.results is not None, f"no results.json; output:\n{self.output[-3000:]}"
        return {r["id"]: r["verdict"] for r in self.results["requirements"] if r["section"] in sections
                and r["tests"]}

    def with_verdict(self, verdict: str, sections: tuple[str, ...] = ("DNS", "CERT")) -> set[str]:
        return {rid for rid, v in self.verdicts(sections).items() if v == verdict}

    def findings(self) -> str:
        """Every fail and error message, for assertion output (the verdict table does not say why)."""
        rows = (self.results or {}).get("requirements", [])
        return "\n".join(m["message"][:600] for r in rows for m in r["messages"] if m["verdict"] in ("fail", "error"))

    def requirement(self, requirement_id: str) -> dict[str, Any]:
        assert self.results is not None
        return next(r for r in self.results["requirements"] if r["id"] == requirement_id)


def without_benchmarks(args: tuple[str, ...]) -> list[str]:
    """``args`` with the measuring checks deselected: the lab profile enables them (the demo shows them), but
    they take seconds (fio) to a minute (check perf) per run; tests/integration/test_performance_suite.py
    runs them on purpose."""
    args_list = list(args)
    if "-m" in args_list:
        index = args_list.index("-m") + 1
        args_list[index] = f"({args_list[index]}) and not benchmark"
        return args_list
    return [*args_list, "-m", "not benchmark"]


def run_suite(lab_dir: Path | None, reports: Path, *args: str, env: dict[str, str] | None = None,
              profile: str = "lab", benchmarks: bool = False) -> SuiteRun:
    """Run the shipped checks as a user would (a subprocess of pytest, from the project root); the
    measuring checks only with ``benchmarks``."""
    if not benchmarks:
        args = tuple(without_benchmarks(args))
    environment = {**os.environ, **(env or {})}
    if lab_dir is not None:
        environment["KKP_READINESS_LAB_DIR"] = str(lab_dir)
    command = [sys.executable, "-m", "pytest", "tests_infra", f"--profile={profile}", f"--reports-dir={reports}",
               "-p", "no:cacheprovider", "--no-allure-report", *args]
    completed = subprocess.run(command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True,
                               timeout=SUITE_TIMEOUT, check=False)
    latest = reports / "latest"
    run_dir = latest.resolve() if latest.exists() else None
    results_file = run_dir / "results.json" if run_dir else None
    results = json.loads(results_file.read_text()) if results_file and results_file.exists() else None
    return SuiteRun(completed.returncode, completed.stdout + completed.stderr, run_dir, results)


@pytest.fixture(scope="session")
def healthy_lab(kkp_lab):
    """A healthy lab for the whole session (the shipped ``kkp_lab`` fixture)."""
    return kkp_lab
