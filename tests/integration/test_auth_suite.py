"""The AUTH network checks against the real lab: Dex with the lab profile, an own provider with a variant.

The lab profile uses Dex, so AUTH-004/005 (own OIDC provider) are not applicable there: the ``oidc-*``
faults show under the variant profile of their ``shown_with`` (``auth.provider: oidc`` with the lab's
provider sso.kkp.lab), which these tests use too. Runs select ``-k AUTH -m network``: the network
side of the section only, so that the messages and the error-versus-fail cases are proven quickly.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kkp_readiness.lab import FAULTS
from kkp_readiness.lab.ca import LabCA
from kkp_readiness.lab.faults import OIDC_PROFILE
from tests.conftest import PROJECT_ROOT, SuiteRun, run_suite

SELECT = ("-k", "AUTH", "-m", "network")
NETWORK_AUTH = ("AUTH-003", "AUTH-004", "AUTH-005")


def oidc_profile(directory: Path, issuer: str | None = None, **overrides: Any) -> str:
    """The oidc faults' variant of lab.yaml (own provider sso.kkp.lab), optionally with another issuer."""
    document = {"extends": str(PROJECT_ROOT / "profiles" / "lab.yaml"), "name": "lab-oidc",
                **copy.deepcopy(OIDC_PROFILE), **overrides}
    if issuer is not None:
        document["auth"]["oidc_issuer"] = issuer
    path = directory / "lab-oidc.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def verdicts(run: SuiteRun) -> dict[str, str]:
    return {k: v for k, v in run.verdicts(("AUTH",)).items() if k in NETWORK_AUTH}


def messages(run: SuiteRun, requirement_id: str, verdict: str) -> list[str]:
    return [m["message"] for m in run.requirement(requirement_id)["messages"] if m["verdict"] == verdict]


def assert_informative_failure(run: SuiteRun, requirement_id: str) -> str:
    failing = messages(run, requirement_id, "fail")
    assert failing, run.output[-3000:]
    for message in failing:
        assert message.startswith(f"[{requirement_id}]"), message
        assert re.search(r"expected .+; found .+", message), message
        assert "Fix: " in message, message
        assert "Docs: https://" in message, message
    return failing[0]


# --- Dex (the lab profile) -------------------------------------------------------------------------------


def test_dex_discovery_passes_on_the_healthy_lab(healthy_lab, tmp_path: Path) -> None:
    run = run_suite(healthy_lab.workdir, tmp_path, *SELECT)
    assert verdicts(run) == {"AUTH-003": "pass", "AUTH-004": "skip", "AUTH-005": "skip"}, run.output[-3000:]
    assert run.returncode == 0, run.output[-3000:]


def test_dex_issuer_mismatch_fails_auth_003(kkp_lab_factory, tmp_path: Path) -> None:
    lab = kkp_lab_factory(["dex-issuer-mismatch"])
    run = run_suite(lab.workdir, tmp_path, *SELECT)
    assert verdicts(run) == {"AUTH-003": "fail", "AUTH-004": "skip", "AUTH-005": "skip"}, run.output[-3000:]
    assert set(FAULTS["dex-issuer-mismatch"].breaks) == {"AUTH-003"}
    assert run.returncode == 1
    message = assert_informative_failure(run, "AUTH-003")
    port = lab.state["ingress"]["https_port"]
    assert f"expected issuer 'https://kkp.lab:{port}/dex'" in message, message
    assert f"found issuer 'https://kkp.lab:{port}/dex/': path '/dex/' instead of '/dex' (a trailing slash)" in message


def test_untrusted_ingress_certificate_fails_auth_003_as_unverified(kkp_lab_factory, tmp_path: Path) -> None:
    lab = kkp_lab_factory(["cert-untrusted-ca"])
    run = run_suite(lab.workdir, tmp_path, *SELECT)
    assert verdicts(run)["AUTH-003"] == "fail", run.output[-3000:]
    message = assert_informative_failure(run, "AUTH-003")
    assert "found certificate verify failed: unable to get local issuer certificate" in message, message


# --- an own OIDC provider (a variant of the lab profile) ---------------------------------------------------


def test_own_provider_passes_on_the_healthy_lab(healthy_lab, tmp_path: Path) -> None:
    run = run_suite(healthy_lab.workdir, tmp_path / "reports", *SELECT, profile=oidc_profile(tmp_path))
    assert verdicts(run) == {"AUTH-003": "skip", "AUTH-004": "pass", "AUTH-005": "pass"}, run.output[-3000:]
    assert run.returncode == 0, run.output[-3000:]
    assert "applies only where auth is dex" in run.requirement("AUTH-003")["messages"][0]["message"]


OIDC_FAULTS = {
    "oidc-issuer-mismatch": ("scheme http instead of https",),
    "oidc-no-signing-keys": ("found 1 key(s), none usable for signing", "use enc)"),
}


def test_every_oidc_fault_is_shown_here_under_its_variant() -> None:
    oidc = {name for name, fault in FAULTS.items() if fault.shown_with == OIDC_PROFILE}
    assert oidc == set(OIDC_FAULTS)


@pytest.mark.parametrize("fault", OIDC_FAULTS)
def test_oidc_fault_fails_exactly_its_requirement(fault: str, kkp_lab_factory, tmp_path: Path) -> None:
    lab = kkp_lab_factory([fault])
    run = run_suite(lab.workdir, tmp_path / "reports", *SELECT, profile=oidc_profile(tmp_path))
    expected = set(FAULTS[fault].breaks)
    assert expected, fault
    found = verdicts(run)
    assert {k for k, v in found.items() if v == "fail"} == expected, run.output[-3000:]
    assert {v for k, v in found.items() if k not in expected} == {"pass", "skip"}, run.output[-3000:]
    assert run.returncode == 1
    for requirement_id in expected:
        message = assert_informative_failure(run, requirement_id)
        for snippet in OIDC_FAULTS[fault]:
            assert snippet in message, message


@pytest.mark.parametrize(("issuer", "reason"), [
    ("https://sso.kkp.lab:9/realms/kkp", "TCP connect failed"),  # 127.0.0.10:9: nothing listens
    ("https://nowhere.example.com/realms/kkp", "no DNS server of the profile gives an address"),
], ids=["closed-port", "unresolvable-name"])
def test_unreachable_provider_is_an_error_not_a_failure(healthy_lab, tmp_path: Path, issuer: str,
                                                        reason: str) -> None:
    run = run_suite(healthy_lab.workdir, tmp_path / "reports", *SELECT, profile=oidc_profile(tmp_path, issuer))
    assert verdicts(run) == {"AUTH-003": "skip", "AUTH-004": "error", "AUTH-005": "error"}, run.output[-3000:]
    assert run.returncode == 3
    for requirement_id in ("AUTH-004", "AUTH-005"):
        (message,) = messages(run, requirement_id, "error")
        assert "could not check" in message, message
        assert reason in message, message


def test_provider_certificate_that_does_not_verify_fails_auth_004(healthy_lab, tmp_path: Path) -> None:
    """A CA bundle without the lab CA: AUTH-004 fails (not verified HTTPS); AUTH-005 cannot judge the endpoints."""
    unrelated = LabCA(tmp_path / "unrelated-ca", label="Unrelated")
    profile = oidc_profile(tmp_path, certificates={"ca_bundle": str(unrelated.bundle_path)})
    run = run_suite(healthy_lab.workdir, tmp_path / "reports", *SELECT, profile=profile)
    assert verdicts(run) == {"AUTH-003": "skip", "AUTH-004": "fail", "AUTH-005": "error"}, run.output[-3000:]
    assert run.returncode == 1
    message = assert_informative_failure(run, "AUTH-004")
    assert "found certificate verify failed: unable to get local issuer certificate" in message, message
    (error,) = messages(run, "AUTH-005", "error")
    assert "see AUTH-004" in error, error
