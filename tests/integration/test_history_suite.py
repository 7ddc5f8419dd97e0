"""Two real runs of the suite into one reports directory, healthy then with one fault: ``kkp-readiness diff``
names exactly the requirement the fault breaks, both ways, finds the earlier run by itself, and a run survives
``archive`` and ``restore`` verified."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kkp_readiness.lab import FAULTS
from tests.conftest import PROJECT_ROOT, run_suite

FAULT = "dns-missing-seed-wildcard"  # breaks DNS-004 and nothing else, and the DNS checks take seconds
#: The installed console script, as a user runs it (beside the interpreter of the venv running these tests).
KKP = Path(sys.executable).parent / "kkp-readiness"


def kkp(*args: str | Path, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KKP), *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd,
                          check=False)


def changes(report: dict, kind: str) -> list[str]:
    return [change["id"] for change in report[kind]]


def test_a_fault_is_the_one_regression_between_two_runs(healthy_lab, kkp_lab_factory, tmp_path: Path) -> None:
    assert FAULTS[FAULT].breaks == ("DNS-004",)
    reports = tmp_path / "reports"
    healthy = run_suite(healthy_lab.workdir, reports, "-m", "dns")
    assert healthy.returncode == 0, healthy.output[-3000:]
    faulty = run_suite(kkp_lab_factory([FAULT]).workdir, reports, "-m", "dns")
    assert faulty.returncode == 1, faulty.output[-3000:]
    assert faulty.with_verdict("fail", ("DNS",)) == {"DNS-004"}, faulty.findings()
    old, new = healthy.run_dir, faulty.run_dir
    assert old is not None
    assert new is not None
    assert old.parent == new.parent == reports.resolve()

    # the new run's handover report says the same on its cover
    cover = (new / "handover.html").read_text().split('<h2 id="artifacts"')[0]
    assert f"Compared with run <b>{old.name}</b>" in cover
    assert "<tr><td>regressed</td><td>DNS-004 " in cover
    assert cover.count("<tr><td>regressed</td>") == 1
    assert "first run of profile lab" in (old / "handover.html").read_text()

    forward = kkp("diff", old, new, "--json")
    assert forward.returncode == 1, forward.stdout + forward.stderr
    report = json.loads(forward.stdout)
    assert changes(report, "regressed") == ["DNS-004"]
    assert (changes(report, "recovered"), changes(report, "appeared"), changes(report, "vanished")) == ([], [], [])
    assert report["regressed"][0]["old"] == "pass"
    assert report["regressed"][0]["new"] == "fail"
    assert "NXDOMAIN" in report["regressed"][0]["new_message"]

    text = kkp("diff", old, new)
    assert text.returncode == 1
    assert text.stdout.splitlines()[0] == f"old: {old.name} (started {healthy.results['run']['started']})"
    assert [line.split()[:2] for line in text.stdout.splitlines() if line.startswith("regressed")] == [
        ["regressed", "DNS-004"]]

    backward = kkp("diff", new, old, "--json")
    assert backward.returncode == 0, backward.stdout + backward.stderr
    report = json.loads(backward.stdout)
    assert (changes(report, "recovered"), changes(report, "regressed")) == (["DNS-004"], [])

    previous = kkp("diff", "--previous", new)
    assert previous.returncode == 1, previous.stdout + previous.stderr
    assert f"old: {old.name}" in previous.stdout
    first = kkp("diff", "--previous", old)
    assert first.returncode == 0
    assert "no earlier run of profile lab in" in first.stdout

    archived = kkp("archive", new, "--out", tmp_path / "new.tar.gz")
    assert archived.returncode == 0, archived.stderr
    restored = kkp("restore", tmp_path / "new.tar.gz", "--reports-dir", tmp_path / "history")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "verified: nothing changed since the run" in restored.stdout
    again = kkp("diff", "--previous", tmp_path / "history" / new.name, "--history-dir", reports)
    assert again.returncode == 1
    assert f"old: {old.name}" in again.stdout
