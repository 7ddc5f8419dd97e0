"""The AZURE checks against the lab's Azure stand-in (profile lab-azure): healthy, each finding fault, bad credentials.

Only this module's requirements are asserted (AZURE-001..005, 008); the shared cloud checks
(AZURE-006/007/009..014) are proven with them elsewhere. The five finding faults touch different
objects and break disjoint requirements, so they run in one lab.
"""

from __future__ import annotations

import re
from pathlib import Path

from kkp_readiness.lab import FAULTS
from tests.conftest import run_suite

OURS = ("AZURE-001", "AZURE-002", "AZURE-003", "AZURE-004", "AZURE-005", "AZURE-008")
FINDING_FAULTS = ("azure-missing-role", "azure-zone-missing", "azure-subnet-no-route-table", "azure-subnet-too-small",
                  "azure-md-image-missing")


def _ours(run) -> dict[str, str]:
    verdicts = run.verdicts(("AZURE",))
    return {rid: verdicts.get(rid) for rid in OURS}


def test_faults_are_declared_for_the_lab_azure_profile() -> None:
    for name in (*FINDING_FAULTS, "azure-bad-credentials"):
        assert FAULTS[name].shown_with == {"extends": "lab-azure"}
    assert FAULTS["azure-bad-credentials"].breaks == ()
    assert sorted(r for name in FINDING_FAULTS for r in FAULTS[name].breaks) == \
        ["AZURE-002", "AZURE-003", "AZURE-004", "AZURE-005", "AZURE-008"]


def test_healthy_azure_passes(healthy_lab, tmp_path) -> None:
    run = run_suite(healthy_lab.workdir, tmp_path / "reports", "-m", "azure", profile="lab-azure")
    assert _ours(run) == dict.fromkeys(OURS, "pass"), run.findings() or run.output[-4000:]


def test_each_fault_fails_exactly_its_requirement(kkp_lab_factory, tmp_path) -> None:
    lab = kkp_lab_factory(list(FINDING_FAULTS))
    run = run_suite(lab.workdir, tmp_path / "reports", "-m", "azure", profile="lab-azure")
    broken = {r for name in FINDING_FAULTS for r in FAULTS[name].breaks}
    expected = {rid: ("fail" if rid in broken else "pass") for rid in OURS}
    assert _ours(run) == expected, run.findings() or run.output[-4000:]
    for requirement_id in broken:
        failing = [m["message"] for m in run.requirement(requirement_id)["messages"] if m["verdict"] == "fail"]
        assert failing, run.requirement(requirement_id)
        for message in failing:
            assert message.startswith(f"[{requirement_id}]"), message
            assert re.search(r"expected .+; found .+", message), message
            assert "Fix: " in message, message
            assert "Docs: https://" in message, message
    messages = {rid: run.requirement(rid)["messages"][0]["message"] for rid in broken}
    assert "not granted: Microsoft.Compute/virtualMachines/write" in messages["AZURE-002"]
    assert "not in 3" in messages["AZURE-003"]
    assert "route table none associated" in messages["AZURE-004"]
    assert "10.240.0.0/27" in messages["AZURE-005"]
    assert "kkp-ubuntu-2404 does not exist" in messages["AZURE-008"]


def test_bad_credentials_end_as_error_with_the_reason(kkp_lab_factory, tmp_path) -> None:
    lab = kkp_lab_factory(["azure-bad-credentials"])
    secret = Path(lab.state["cloud"]["azure"]["client_secret_file"]).read_text()
    run = run_suite(lab.workdir, tmp_path / "reports", "-m", "azure", profile="lab-azure")
    assert _ours(run) == dict.fromkeys(OURS, "error"), run.output[-4000:]
    message = run.requirement("AZURE-001")["messages"][0]["message"]
    assert "could not check" in message
    assert "AADSTS7000215: Invalid client secret provided" in message
    assert run.returncode == 3 or "fail" in run.verdicts(("AZURE",)).values(), run.output[-4000:]
    assert run.run_dir is not None
    for path in run.run_dir.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
