"""The shipped cluster checks reach a seed with every kubeconfig credential form a site may hand over.

The token form is what every other lab run uses; here the seed's kubeconfig carries a client
certificate, or an exec credential plugin, and the checks must read the cluster exactly as well.
"""

from __future__ import annotations

import pytest
import yaml

from kkp_readiness.lab.kubeapi.part import read_request_log
from tests.conftest import PROJECT_ROOT, run_suite

LAB_PROFILE = PROJECT_ROOT / "profiles" / "lab.yaml"


@pytest.mark.parametrize(("kubeconfig", "logged_as"), [
    ("kubeconfig_client_cert", "x509:reader"),
    ("kubeconfig_exec", "reader"),
])
def test_infra_checks_pass_with_each_kubeconfig_form(kubeconfig, logged_as, tmp_path, healthy_lab) -> None:
    # The lab profile's seed as it is, only its kubeconfig swapped (lists replace, so the whole seed is restated).
    seed = yaml.safe_load(LAB_PROFILE.read_text())["seeds"][0] | {"kubeconfig": f"${{lab:kubeapi.{kubeconfig}}}"}
    profile = tmp_path / f"lab-{kubeconfig}.yaml"
    profile.write_text(yaml.safe_dump({"extends": str(LAB_PROFILE), "seeds": [seed]}, sort_keys=False))
    log = healthy_lab.state["kubeapi"]["request_log"]
    already = len(read_request_log(log))
    run = run_suite(healthy_lab.workdir, tmp_path / "reports", "-m", "cluster", "-k", "INFRA", profile=str(profile))
    verdicts = run.verdicts(("INFRA",))
    assert {"INFRA-001", "INFRA-002", "INFRA-003"} <= set(verdicts), run.output[-4000:]
    assert set(verdicts.values()) == {"pass"}, run.output[-4000:]
    assert run.returncode == 0, run.output[-4000:]
    # Every request of the run authenticated with the form under test (a certificate is logged as x509:<identity>).
    assert {r.user for r in read_request_log(log)[already:]} == {logged_as}
