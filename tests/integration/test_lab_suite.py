"""The shipped DNS and CERT checks against the real lab: healthy, and with each named fault."""

from __future__ import annotations

import re

import pytest

from kkp_readiness.lab import FAULTS, Lab
from tests.conftest import PROJECT_ROOT, run_suite

SELECT = ("-m", "dns or certificates")


def test_healthy_lab_passes_every_dns_and_cert_requirement(healthy_lab, tmp_path) -> None:
    run = run_suite(healthy_lab.workdir, tmp_path, *SELECT)
    verdicts = run.verdicts()
    assert set(verdicts) >= {f"DNS-00{i}" for i in range(1, 7)} | {f"CERT-00{i}" for i in range(1, 8)}, run.output
    assert set(verdicts.values()) == {"pass"}, run.output[-4000:]
    assert run.returncode == 0, run.output[-4000:]


FAILING_FAULTS = [name for name, fault in FAULTS.items() if fault.breaks]


@pytest.mark.parametrize("fault", FAILING_FAULTS)
def test_fault_fails_exactly_its_requirement(fault: str, tmp_path, kkp_lab_factory) -> None:
    lab = kkp_lab_factory([fault])
    run = run_suite(lab.workdir, tmp_path, *SELECT)
    expected = set(FAULTS[fault].breaks)
    assert run.with_verdict("fail") == expected, run.output[-4000:]
    assert run.returncode == 1
    for requirement_id in expected:
        row = run.requirement(requirement_id)
        failing = [m["message"] for m in row["messages"] if m["verdict"] == "fail"]
        assert failing, row
        for message in failing:
            assert message.startswith(f"[{requirement_id}]"), message
            assert re.search(r"expected .+; found .+", message), message
            assert "Fix: " in message, message
            assert "Docs: https://" in message, message


def test_expiring_certificate_is_a_warning_with_exit_code_4(tmp_path) -> None:
    with Lab(faults=["cert-expiring-soon"]) as lab:
        run = run_suite(lab.workdir, tmp_path, *SELECT)
    assert run.with_verdict("warn") == {"CERT-005"}, run.output[-4000:]
    assert run.with_verdict("fail") == set()
    assert run.returncode == 4


def test_unreachable_dns_is_an_error_not_a_failure(tmp_path, healthy_lab) -> None:
    """DNS servers that do not answer: the DNS checks could not look (error, exit code 3), never fail."""
    profile = tmp_path / "silent-dns.yaml"
    profile.write_text(f"extends: {PROJECT_ROOT / 'profiles' / 'lab.yaml'}\n"
                       "dns: {servers: ['127.0.0.1:9', '127.0.0.1:9']}\ntimeouts: {dns: 0.5}\n")
    run = run_suite(healthy_lab.workdir, tmp_path / "reports", "-m", "dns", profile=str(profile))
    verdicts = run.verdicts(("DNS",))
    assert set(verdicts.values()) == {"error"}, run.output[-4000:]
    assert run.returncode == 3
    assert "could not check" in run.requirement("DNS-001")["messages"][0]["message"]


def test_parallel_run_gives_the_same_verdicts(tmp_path) -> None:
    with Lab(faults=["cert-missing-name"]) as lab:
        serial = run_suite(lab.workdir, tmp_path / "serial", *SELECT)
        parallel = run_suite(lab.workdir, tmp_path / "parallel", *SELECT, "-n", "2")
    assert serial.verdicts() == parallel.verdicts()
    assert serial.returncode == parallel.returncode == 1
