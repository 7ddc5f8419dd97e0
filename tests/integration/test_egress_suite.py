"""PROXY and INSTALLER against the lab's way out: the credentials never reach an artifact; the mirror login."""

from __future__ import annotations

import json
from pathlib import Path

from kkp_readiness.lab.config_repo_part import LAB_SECRET_MARKER
from tests.conftest import PROJECT_ROOT, run_suite
from tests.integration.test_plugin_behaviour import _contains_canary


def _offline_profile(tmp_path, **mirror: str) -> str:
    """The lab profile in offline mode, with ``mirror`` overrides."""
    profile = tmp_path / "offline.yaml"
    proxy: dict[str, object] = {"offline": True, **({"mirror": mirror} if mirror else {})}
    profile.write_text(json.dumps({"extends": str(PROJECT_ROOT / "profiles" / "lab.yaml"), "name": "lab-offline",
                                   "proxy": proxy}))
    return str(profile)


def test_proxy_credentials_pull_secret_and_mirror_password_reach_no_artifact(tmp_path, kkp_lab_factory) -> None:
    """With the credentials rejected (messages about them) and accepted (offline, the mirror password in use)."""
    lab = kkp_lab_factory(["proxy-credentials-wrong", "ee-pull-secret-revoked"])
    egress = lab.state["egress"]
    secrets = [Path(egress[key]).read_text().strip() for key in ("proxy_credentials_file", "mirror_password_file")]
    secrets.append(json.loads(Path(egress["pull_secret_file"]).read_text())["auths"]["quay.io"]["auth"])
    assert all(LAB_SECRET_MARKER in s for s in secrets[:2])
    runs = [run_suite(lab.workdir, tmp_path / "online", "-m", "proxy or installer", "-o", "log_level=DEBUG"),
            run_suite(lab.workdir, tmp_path / "offline", "-m", "proxy or installer", "-o", "log_level=DEBUG",
                      profile=_offline_profile(tmp_path))]
    failed = runs[0].with_verdict("fail", ("PROXY", "INSTALLER"))
    assert failed >= {"PROXY-005", "INSTALLER-003"}, runs[0].output[-3000:]
    assert "refused the credentials" in runs[0].requirement("PROXY-005")["messages"][0]["message"]
    passed = runs[1].with_verdict("pass", ("PROXY", "INSTALLER"))
    assert passed == {"PROXY-006", "PROXY-007", "PROXY-008", "INSTALLER-002"}, runs[1].output[-3000:]
    files = [path for path in tmp_path.rglob("*") if path.is_file() and path.suffix != ".yaml"]
    assert len(files) > 6
    for run in runs:
        assert LAB_SECRET_MARKER not in run.output
        assert not any(secret in run.output for secret in secrets)
    assert not [str(p) for p in files if _contains_canary(p.read_text(errors="ignore"), LAB_SECRET_MARKER)]
    assert not [str(p) for p in files if secrets[2] in p.read_text(errors="ignore")]


def test_a_wrong_mirror_password_fails_the_login_and_the_image_checks(tmp_path, kkp_lab_factory) -> None:
    lab = kkp_lab_factory([])
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-mirror-password\n")
    run = run_suite(lab.workdir, tmp_path / "reports", "-m", "proxy",
                    profile=_offline_profile(tmp_path, password=f"${{file:{wrong}}}"))
    verdicts = {k: v for k, v in run.verdicts(("PROXY",)).items() if v != "skip"}
    assert verdicts == {"PROXY-006": "pass", "PROXY-007": "fail", "PROXY-008": "fail"}, run.output[-3000:]
    assert "the registry refused user mirror-pull" in run.requirement("PROXY-007")["messages"][0]["message"]
    assert "could not log in" in run.requirement("PROXY-008")["messages"][0]["message"]
