"""The OpenStack checks and the checks every provider shares, run as a user runs them against the lab's
OpenStack stand-in (``profiles/lab-openstack.yaml``: integration option II, an additional seed).

The finding faults of the cloud (``openstack-*``, ``<provider>-api-unreachable-from-workers``,
``<provider>-workers-cut-off-from-seed``) are proven by ``test_lab_suite``'s fault batches under that profile;
this module proves the rest: the healthy verdicts of both integration options, refused credentials
as an error carrying Keystone's reason (and no secret), a missing SDK extra, and option I's worker check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kkp_readiness.catalogue import implemented_ids
from tests.conftest import PROJECT_ROOT, run_suite

OPENSTACK = sorted(r for r in implemented_ids() if r.startswith("OPENSTACK-"))
#: Option I only (workers in the cloud, the seed elsewhere) and option II only (an additional seed in the cloud).
WORKERS_ONLY = {"OPENSTACK-012"}
ADDITIONAL_SEED = {"OPENSTACK-013", "OPENSTACK-014", "OPENSTACK-015", "OPENSTACK-016"}


def variant(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"extends: {PROJECT_ROOT / 'profiles' / 'lab-openstack.yaml'}\nname: {name}\n{text}")
    return str(path)


def test_every_openstack_requirement_has_a_check() -> None:
    assert len(OPENSTACK) == 16, OPENSTACK


def test_healthy_openstack_passes_option_two(healthy_lab, tmp_path) -> None:
    run = run_suite(healthy_lab.workdir, tmp_path, "-m", "openstack", profile="lab-openstack")
    verdicts = run.verdicts(("OPENSTACK",))
    assert {k for k, v in verdicts.items() if v == "pass"} == set(OPENSTACK) - WORKERS_ONLY, run.output[-4000:]
    assert verdicts["OPENSTACK-012"] == "skip"
    assert "integration is workers-only" in run.requirement("OPENSTACK-012")["messages"][0]["message"]
    assert run.returncode == 0, run.output[-4000:]


def test_healthy_openstack_passes_option_one_and_cut_off_workers_fail(healthy_lab, tmp_path,
                                                                       kkp_lab_factory) -> None:
    profile = variant(tmp_path, "lab-openstack-workers", "cloud:\n  integration: workers-only\n")
    run = run_suite(healthy_lab.workdir, tmp_path / "healthy", "-m", "openstack", profile=profile)
    verdicts = run.verdicts(("OPENSTACK",))
    assert {k for k, v in verdicts.items() if v == "pass"} == set(OPENSTACK) - ADDITIONAL_SEED, run.output[-4000:]
    lab = kkp_lab_factory(["openstack-workers-cut-off-from-seed"])
    run = run_suite(lab.workdir, tmp_path / "fault", "-m", "openstack", profile=profile)
    assert run.with_verdict("fail", ("OPENSTACK",)) == {"OPENSTACK-012"}, run.findings() or run.output[-4000:]
    message = run.requirement("OPENSTACK-012")["messages"][0]["message"]
    assert "expected every worker host connects; found from 127.0.2.1:" in message, message


def test_refused_credentials_are_an_error_with_keystones_reason(tmp_path, kkp_lab_factory) -> None:
    lab = kkp_lab_factory(["openstack-bad-credentials"])
    run = run_suite(lab.workdir, tmp_path, "-m", "openstack", profile="lab-openstack")
    verdicts = run.verdicts(("OPENSTACK",))
    needs_keystone = set(OPENSTACK) - WORKERS_ONLY - ADDITIONAL_SEED - {"OPENSTACK-008"}  # 008: the profile only
    assert {k for k, v in verdicts.items() if v == "error"} == needs_keystone, run.output[-4000:]
    message = run.requirement("OPENSTACK-001")["messages"][0]["message"]
    assert "refused the credentials" in message, message
    assert "(HTTP 401)" in message, message
    password = (lab.workdir / "cloud" / "openstack-password").read_text()
    for path in run.run_dir.rglob("*"):
        if path.is_file():
            assert password not in path.read_text(errors="replace"), path
    assert run.returncode == 3


def test_missing_extra_is_an_error_naming_it(healthy_lab, tmp_path) -> None:
    """openstacksdk hidden from the run (a ``sitecustomize`` that blocks its import): an error naming the extra."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nsys.modules['openstack'] = None\nsys.modules['openstack.config.loader'] = None\n")
    run = run_suite(healthy_lab.workdir, tmp_path / "reports", "-m", "openstack", "-k", "OPENSTACK-001",
                    profile="lab-openstack", env={"PYTHONPATH": f"{blocker}:{PROJECT_ROOT}"})
    assert run.verdicts(("OPENSTACK",))["OPENSTACK-001"] == "error", run.output[-3000:]
    message = run.requirement("OPENSTACK-001")["messages"][0]["message"]
    assert "pip install 'kkp-readiness[openstack]'" in message, message


@pytest.mark.parametrize("name", ["azure", "vsphere", "openstack"])
def test_site_templates_collect_their_cloud_checks(name: str) -> None:
    """The site templates are never dialled: ``--collect-only`` with their cloud marker collects the checks."""
    import subprocess
    import sys

    secret = "template-secret-value"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(PROJECT_ROOT), "PROXY_CREDENTIALS": f"user:{secret}",
           **dict.fromkeys(("MIRROR_PASSWORD", "KKP_EE_PULL_SECRET", "VSPHERE_PASSWORD", "AZURE_CLIENT_SECRET",
                            "OS_APPLICATION_CREDENTIAL_SECRET"), secret)}
    completed = subprocess.run([sys.executable, "-m", "pytest", "tests_infra", f"--profile={name}", "-m", name,
                                "--collect-only", "-q", "-p", "no:cacheprovider"], cwd=PROJECT_ROOT, env=env,
                               capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert f"test_{name}.py" in completed.stdout or name == "vsphere", completed.stdout[-3000:]
    assert "test_cloud.py" in completed.stdout, completed.stdout[-3000:]
