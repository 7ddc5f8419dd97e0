"""Version parsing of the bastion's tools, on outputs recorded from the real tools."""

from __future__ import annotations

import subprocess

import paramiko
import pytest

from kkp_readiness.lab.bastion_part import STAND_INS, stand_in_script
from kkp_readiness.probes.ssh import (
    TOOL_MARK,
    CommandResult,
    HostKeyVerifier,
    at_least,
    fingerprint,
    judge_tool,
    parse_tools_output,
    parse_version,
    tools_script,
)

RECORDED = {
    "kubeone": (STAND_INS["kubeone"], "1.9.2"),
    "helm": ("v3.16.3+gcfd0749\n", "3.16.3"),
    "terraform": ("Terraform v1.9.8\non linux_amd64\n", "1.9.8"),
    "kubectl": (STAND_INS["kubectl"], "1.31.3"),
    "git": ("git version 2.39.5\n", "2.39.5"),
    "jq": ("jq-1.6\n", "1.6"),
    "yq": ("yq (https://github.com/mikefarah/yq/) version v4.44.3\n", "4.44.3"),
}


@pytest.mark.parametrize("tool", sorted(RECORDED))
def test_parse_version_of_real_output(tool: str) -> None:
    output, version = RECORDED[tool]
    assert parse_version(tool, output) == version


def test_kubeone_version_is_not_machine_controllers() -> None:
    assert parse_version("kubeone", STAND_INS["kubeone"]) == "1.9.2"


@pytest.mark.parametrize(("found", "minimum", "ok"), [("2.25", "2.25.0", True), ("1.9.8", "1.10.0", False),
                                                      ("0.12.31", "1.5.0", False), ("3.16.3", "3.14", True)])
def test_at_least(found: str, minimum: str, ok: bool) -> None:
    assert at_least(found, minimum) is ok


def test_judge_tool_missing_and_old() -> None:
    missing = judge_tool("helm", "3.14.0", CommandResult("helm version --short", 127, "", "helm: not found"))
    assert missing.problem == "helm is not installed"
    old = judge_tool("terraform", "1.5.0", CommandResult("terraform version", 0, "Terraform v0.12.31\n", ""))
    assert old.problem == "terraform 0.12.31 is older than 1.5.0"


# --- all tools in one remote command (tools_script / parse_tools_output) ----------------------


def test_parse_tools_output_splits_sections_and_ignores_forged_marks() -> None:
    token = "abc123"
    output = (f"{TOOL_MARK} {token} helm 0\nv3.16.3+gcfd0749\n"
              f"{TOOL_MARK} {token} terraform 0\nTerraform v1.9.8\n{TOOL_MARK} forged jq 0\non linux_amd64\n"
              f"{TOOL_MARK} {token} fubectl 1\n\n"
              f"{TOOL_MARK} {token} jq 127\nsh: 1: jq: not found\n")
    parsed = parse_tools_output(output, token)
    assert list(parsed) == ["helm", "terraform", "fubectl", "jq"]
    assert parsed["helm"] == CommandResult("helm version --short", 0, "v3.16.3+gcfd0749\n", "")
    assert parsed["terraform"].stdout == f"Terraform v1.9.8\n{TOOL_MARK} forged jq 0\non linux_amd64\n"
    assert parsed["fubectl"].exit_status == 1
    assert parsed["fubectl"].stdout == ""
    assert judge_tool("jq", None, parsed["jq"]).problem == "jq is not installed"
    assert judge_tool("fubectl", None, parsed["fubectl"]).problem == "fubectl is not installed"


def test_tools_script_runs_in_posix_sh(tmp_path) -> None:
    """The real script in dash/sh against stand-ins: same findings as one session per tool gave."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("helm", "terraform"):
        (bin_dir / tool).write_text(stand_in_script(STAND_INS[tool], tool))
        (bin_dir / tool).chmod(0o755)
    (bin_dir / "git").write_text("#!/bin/sh\nprintf 'git version 2.39.5'\n")  # no trailing newline
    (bin_dir / "git").chmod(0o755)
    (bin_dir / "kubeone").write_text(stand_in_script(None, "kubeone"))
    (bin_dir / "kubeone").chmod(0o755)
    tools = ["helm", "terraform", "git", "kubeone", "fubectl"]
    completed = subprocess.run(["/bin/sh", "-c", tools_script(tools, "t0k")], capture_output=True, text=True,
                               env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, timeout=10, check=False)
    parsed = parse_tools_output(completed.stdout, "t0k")
    assert list(parsed) == tools
    findings = {t: judge_tool(t, {"fubectl": None}.get(t, "1.0"), parsed[t]) for t in tools}
    assert findings["helm"].version == "3.16.3"
    assert findings["terraform"].version == "1.9.8"
    assert findings["git"].version == "2.39.5"
    assert findings["kubeone"].problem == "kubeone is not installed"
    assert findings["fubectl"].problem == "fubectl is not installed"


def test_tools_script_refuses_what_is_not_a_tool_name() -> None:
    with pytest.raises(ValueError):
        tools_script(["helm; rm -rf /"], "t")


# --- HostKeyVerifier, without any server: generated keys ------------------------------------------


def _known_hosts(tmp_path, *lines: str) -> str:
    path = tmp_path / "known_hosts"
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


def test_pinned_fingerprint_matches_and_mismatches() -> None:
    key, other = paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()
    verifier = HostKeyVerifier(None, fingerprint(key))
    assert verifier.check("192.0.2.5", 22, key, pinned=True).verified_by == f"pinned fingerprint {fingerprint(key)}"
    refused = verifier.check("192.0.2.5", 22, other, pinned=True)
    assert refused.verified_by is None
    assert fingerprint(other) in refused.problem
    assert fingerprint(key) in refused.problem


def test_known_hosts_match_and_the_pin_applies_only_when_pinned(tmp_path) -> None:
    key = paramiko.ECDSAKey.generate()
    path = _known_hosts(tmp_path, f"[192.0.2.5]:2222 {key.get_name()} {key.get_base64()}")
    verifier = HostKeyVerifier(path, "SHA256:" + "A" * 43)
    assert verifier.check("192.0.2.5", 2222, key).verified_by == f"known_hosts {path}"
    assert verifier.check("192.0.2.5", 22, key).verified_by is None  # another port is another entry


def test_a_changed_key_names_both_fingerprints(tmp_path) -> None:
    old, new = paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()
    verifier = HostKeyVerifier(_known_hosts(tmp_path, f"192.0.2.5 {old.get_name()} {old.get_base64()}"))
    check = verifier.check("192.0.2.5", 22, new)
    assert check.verified_by is None
    assert "CHANGED" in check.problem
    assert fingerprint(old) in check.problem
    assert fingerprint(new) in check.problem


def test_an_unknown_key_says_how_to_pin_it_and_is_never_trusted(tmp_path) -> None:
    key = paramiko.ECDSAKey.generate()
    path = _known_hosts(tmp_path)
    verifier = HostKeyVerifier(path)
    first = verifier.check("192.0.2.5", 22, key)
    assert first.verified_by is None
    assert f"host_key_fingerprint: {fingerprint(key)}" in first.problem
    assert f"192.0.2.5 {key.get_name()} {key.get_base64()}" in first.problem
    # no trust on first use: asking again is refused again, and nothing was written to known_hosts
    assert verifier.check("192.0.2.5", 22, key).verified_by is None
    assert (tmp_path / "known_hosts").read_text() == ""
    assert "no known_hosts file" in HostKeyVerifier(None).check("192.0.2.5", 22, key).problem
