"""The CONFIG checks against the lab's configuration repository: secrets never reach a report."""

from __future__ import annotations

from kkp_readiness.lab.config_repo_part import LAB_SECRET_MARKER
from tests.conftest import run_suite
from tests.integration.test_plugin_behaviour import _contains_canary


def test_plain_text_secrets_are_named_by_path_never_by_value(tmp_path, kkp_lab_factory) -> None:
    """values.yaml committed in plain text: CONFIG-004 names file and YAML path; no lab secret in any artifact."""
    lab = kkp_lab_factory(["config-plaintext-secret"])
    secrets = (lab.workdir / "config_repo" / "kkp-config" / "values.yaml").read_text()
    assert LAB_SECRET_MARKER in secrets  # the canary: every lab secret value starts with it
    reports = tmp_path / "reports"
    run = run_suite(lab.workdir, reports, "-m", "config", "-o", "log_level=DEBUG")
    assert run.with_verdict("fail", ("CONFIG",)) == {"CONFIG-004"}, run.output[-3000:]
    message = run.requirement("CONFIG-004")["messages"][0]["message"]
    assert "values.yaml: minio.credentials.secretKey (not marked for git-crypt in .gitattributes)" in message
    assert LAB_SECRET_MARKER not in run.output
    files = [path for path in reports.rglob("*") if path.is_file()]
    assert len(files) > 3
    assert not [str(p) for p in files if _contains_canary(p.read_text(errors="ignore"), LAB_SECRET_MARKER)]
