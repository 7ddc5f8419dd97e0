"""The bastion checks with an encrypted operator key: they pass, and the passphrase appears nowhere."""

from __future__ import annotations

import secrets

import paramiko
import pytest

from kkp_readiness.lab import Fault, Lab
from kkp_readiness.lab.bastion_part import BastionPlan
from kkp_readiness.lab.config_repo_part import LAB_SECRET_MARKER
from tests.conftest import PROJECT_ROOT, run_suite
from tests.integration.test_plugin_behaviour import _contains_canary

#: The canary: starts with the lab's secret marker, unique per run.
PASSPHRASE = f"{LAB_SECRET_MARKER}-ssh-{secrets.token_hex(6)}"
ENV = "LAB_BASTION_KEY_PASSPHRASE"


def _encrypt_key(plan: BastionPlan) -> None:
    """Not a registered fault: the lab's operator key is encrypted with ``PASSPHRASE``."""
    plan.key_passphrase = PASSPHRASE


def test_passphrase_protected_key_logs_in_and_is_never_written(tmp_path) -> None:
    profile = tmp_path / "lab-passphrase.yaml"
    profile.write_text(f"extends: {PROJECT_ROOT / 'profiles' / 'lab.yaml'}\nname: lab-passphrase\n"
                       f"bastion: {{key_passphrase: '${{env:{ENV}}}'}}\n")
    lab = Lab()
    lab.faults = (Fault("key-passphrase", "bastion", "The operator key is encrypted.",
                        touches=("bastion:key",), apply=_encrypt_key),)
    reports = tmp_path / "reports"
    with lab:
        with pytest.raises(paramiko.SSHException):  # the key file really is encrypted
            paramiko.Ed25519Key.from_private_key_file(lab.state["bastion"]["key_file"])
        run = run_suite(lab.workdir, reports, "-m", "bastion", "-k", "ACCESS or SEED", "-o", "log_level=DEBUG",
                        profile=str(profile), env={ENV: PASSPHRASE})
    verdicts = run.verdicts(("ACCESS", "SEED"))
    assert {k: v for k, v in verdicts.items() if v != "skip"} == dict.fromkeys(
        {k for k in verdicts if k != "ACCESS-005"}, "pass"), run.output[-4000:]
    assert {"ACCESS-001", "ACCESS-006", "ACCESS-008", "SEED-003"} <= set(verdicts)
    assert not _contains_canary(run.output, PASSPHRASE)
    files = [path for path in reports.rglob("*") if path.is_file()]
    assert len(files) > 3
    assert not [str(p) for p in files if _contains_canary(p.read_text(errors="ignore"), PASSPHRASE)]
