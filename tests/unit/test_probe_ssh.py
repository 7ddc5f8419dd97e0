"""Version parsing of the bastion's tools, on outputs recorded from the real tools."""

from __future__ import annotations

import pytest

from kkp_readiness.lab.bastion_part import STAND_INS
from kkp_readiness.probes.ssh import CommandResult, at_least, judge_tool, parse_version

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
