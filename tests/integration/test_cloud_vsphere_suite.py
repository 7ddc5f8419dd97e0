"""The VSPHERE checks against the lab's vCenter stand-in: healthy, with each fault, pinned and refused."""

from __future__ import annotations

import re
from pathlib import Path

from kkp_readiness.lab import FAULTS
from tests.conftest import PROJECT_ROOT, run_suite

MINE = ("VSPHERE-001", "VSPHERE-002", "VSPHERE-003", "VSPHERE-004", "VSPHERE-012")
SELECT = ("-m", "vsphere")
FINDING_FAULTS = ("vsphere-missing-privilege", "vsphere-folder-missing", "vsphere-network-missing",
                  "vsphere-template-missing")


def _verdicts(run) -> dict[str, str]:
    verdicts = run.verdicts(("VSPHERE",))
    return {rid: verdicts.get(rid) for rid in MINE}


def _variant(tmp_path: Path, name: str, vsphere: str) -> str:
    profile = tmp_path / f"{name}.yaml"
    profile.write_text(f"extends: {PROJECT_ROOT / 'profiles' / 'lab-vsphere.yaml'}\nname: {name}\n"
                       f"cloud:\n  vsphere:\n{vsphere}")
    return str(profile)


def _failing(run, requirement_id: str) -> list[str]:
    return [m["message"] for m in run.requirement(requirement_id)["messages"] if m["verdict"] == "fail"]


def test_healthy_vcenter_passes(healthy_lab, tmp_path) -> None:
    run = run_suite(healthy_lab.workdir, tmp_path / "reports", *SELECT, profile="lab-vsphere")
    assert _verdicts(run) == dict.fromkeys(MINE, "pass"), run.findings() or run.output[-4000:]


def test_faults_fail_exactly_their_requirement(kkp_lab_factory, tmp_path) -> None:
    assert all(FAULTS[name].shown_with == {"extends": "lab-vsphere"} for name in FINDING_FAULTS)
    lab = kkp_lab_factory(list(FINDING_FAULTS))
    run = run_suite(lab.workdir, tmp_path / "reports", *SELECT, profile="lab-vsphere")
    expected = {rid for name in FINDING_FAULTS for rid in FAULTS[name].breaks}
    assert expected == {"VSPHERE-002", "VSPHERE-003", "VSPHERE-004", "VSPHERE-012"}
    assert {rid for rid, v in _verdicts(run).items() if v == "fail"} == expected, run.findings()
    assert _verdicts(run)["VSPHERE-001"] == "pass", run.findings()
    for requirement_id in expected:
        for message in _failing(run, requirement_id) or [f"no failure of {requirement_id}"]:
            assert message.startswith(f"[{requirement_id}]"), message
            assert re.search(r"expected .+; found .+", message), message
            assert "Fix: " in message, message
    assert "Datastore.FileManagement" in _failing(run, "VSPHERE-002")[0]
    assert "/dc-1/vm/kubermatic not found" in _failing(run, "VSPHERE-003")[0]
    assert "kkp-tenant-a exists but is not available" in _failing(run, "VSPHERE-004")[0]
    assert "ubuntu-22.04-template not found" in _failing(run, "VSPHERE-012")[0]


def test_bad_password_is_an_error_with_vcenters_reason(kkp_lab_factory, tmp_path) -> None:
    lab = kkp_lab_factory(["vsphere-bad-password"])
    given = Path(lab.state["cloud"]["vsphere"]["password_file"]).read_text()
    run = run_suite(lab.workdir, tmp_path / "reports", *SELECT, profile="lab-vsphere")
    assert _verdicts(run) == dict.fromkeys(MINE, "error"), run.findings() or run.output[-4000:]
    message = run.requirement("VSPHERE-001")["messages"][0]["message"]
    assert "Cannot complete login due to an incorrect user name or password" in message
    assert given not in run.output
    assert not [p for p in (tmp_path / "reports").rglob("*") if p.is_file() and given in p.read_text(errors="ignore")]


def test_pinned_thumbprint(healthy_lab, tmp_path) -> None:
    right = _variant(tmp_path, "lab-vsphere-pinned", "    ca_bundle: null\n"
                     "    thumbprint: ${lab:cloud.vsphere.thumbprint}\n")
    run = run_suite(healthy_lab.workdir, tmp_path / "right", *SELECT, profile=right)
    assert _verdicts(run) == dict.fromkeys(MINE, "pass"), run.findings() or run.output[-4000:]
    wrong = _variant(tmp_path, "lab-vsphere-wrong-pin", "    ca_bundle: null\n    thumbprint: '" + "ab" * 32 + "'\n")
    run = run_suite(healthy_lab.workdir, tmp_path / "wrong", *SELECT, profile=wrong)
    assert _verdicts(run)["VSPHERE-001"] == "fail", run.findings() or run.output[-4000:]
    [message] = _failing(run, "VSPHERE-001")
    assert f"expected a certificate with the pinned thumbprint {'ab' * 32}" in message
    assert healthy_lab.state["cloud"]["vsphere"]["thumbprint"] in message
    assert "Fix: " in message
