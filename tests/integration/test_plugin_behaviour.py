"""How the suite behaves as a pytest plugin: usage errors, selection, reports, exit codes, secrets."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kkp_readiness.catalogue import load_catalogue
from tests.conftest import PROJECT_ROOT, run_suite

TEMPLATE_SECRETS = {name: f"placeholder-for-{name.lower()}" for name in (
    "VSPHERE_PASSWORD", "AZURE_CLIENT_SECRET", "OS_APPLICATION_CREDENTIAL_SECRET", "MIRROR_PASSWORD",
    "KKP_EE_PULL_SECRET", "PROXY_CREDENTIALS")}


def pytest_run(*args: str, cwd: Path = PROJECT_ROOT, env: dict[str, str] | None = None):
    import os

    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300,
                          check=False)


def collected(output: str) -> list[str]:
    return [line for line in output.splitlines() if "::" in line]


# ----------------------------------------------------------------------------- usage errors (exit 2)


def test_checks_without_a_profile_stop_with_usage_error(tmp_path) -> None:
    result = pytest_run("tests_infra", f"--reports-dir={tmp_path}")
    assert result.returncode == 2
    assert "--profile" in result.stdout + result.stderr


def test_invalid_profile_stops_before_any_check(tmp_path) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text(f"extends: {PROJECT_ROOT / 'profiles' / 'vsphere.yaml'}\ncertificates: {{min_day_left: 5}}\n")
    result = pytest_run("tests_infra", f"--profile={profile}", f"--reports-dir={tmp_path / 'reports'}",
                        env=TEMPLATE_SECRETS)
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "bad.yaml:2: certificates.min_day_left: unknown key" in output
    assert not (tmp_path / "reports").exists()
    assert " passed" not in output


def test_unset_secret_stops_the_run(tmp_path) -> None:
    result = pytest_run("tests_infra", "--profile=vsphere", "--collect-only", "-q")
    assert result.returncode == 2
    assert "VSPHERE_PASSWORD is not set" in result.stdout + result.stderr


def test_unknown_requirement_id_fails_collection(tmp_path) -> None:
    (tmp_path / "test_typo.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.mark.requirement("DNS-999")
        def test_typo():
            pass
    """))
    result = pytest_run(str(tmp_path / "test_typo.py"), "--profile=vsphere", "--collect-only",
                        env=TEMPLATE_SECRETS)
    assert result.returncode == 2
    assert "unknown requirement id 'DNS-999'" in result.stdout + result.stderr


@pytest.mark.parametrize("option", ["--reports-dir", "--cluster-snapshot"])
def test_detached_path_value_is_refused(tmp_path, option: str) -> None:
    result = pytest_run("tests_infra", "--profile=vsphere", option, str(tmp_path), "--collect-only",
                        env=TEMPLATE_SECRETS)
    assert result.returncode == 2
    assert f"{option}={tmp_path}" in result.stdout + result.stderr


def test_pytest_usage_error_maps_to_2_through_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "kkp_readiness", "run", "--", "--no-such-option"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2


# ----------------------------------------------------------------------------- selection on site templates


@pytest.mark.parametrize("profile", ["vsphere", "azure", "openstack", "onprem-metallb"])
def test_site_templates_collect_without_dialling(profile: str) -> None:
    """Templates are checked by validation and --collect-only alone: their addresses are never dialled."""
    result = pytest_run("tests_infra", f"--profile={profile}", "--collect-only", "-q", env=TEMPLATE_SECRETS)
    assert result.returncode == 0, result.stdout + result.stderr
    items = collected(result.stdout)
    assert any("test_ui_name_resolves_to_ingress[" in i for i in items)
    assert any("kubermatic.example.com" in i for i in items)


def test_marker_selects_the_section() -> None:
    result = pytest_run("tests_infra", "--profile=vsphere", "-m", "certificates", "--collect-only", "-q",
                        env=TEMPLATE_SECRETS)
    items = collected(result.stdout)
    assert items
    assert all("test_certificates.py" in i for i in items)


def test_keyword_selects_one_requirement_by_id() -> None:
    result = pytest_run("tests_infra", "--profile=vsphere", "-k", "DNS-002", "--collect-only", "-q",
                        env=TEMPLATE_SECRETS)
    items = collected(result.stdout)
    # 4 ingress names (UI name excluded) x 2 DNS servers in the vsphere template
    assert len(items) == 6
    assert all("test_ingress_service_name_resolves_to_ingress" in i for i in items)


# ----------------------------------------------------------------------------- reports of a lab run


@pytest.fixture(scope="module")
def lab_run(healthy_lab, tmp_path_factory):
    reports = tmp_path_factory.mktemp("reports")
    return run_suite(healthy_lab.workdir, reports, "-m", "certificates or dns")


def test_run_directory_holds_every_report(lab_run) -> None:
    assert lab_run.returncode == 0, lab_run.output[-3000:]
    run_dir = lab_run.run_dir
    assert (run_dir.parent / "latest").resolve() == run_dir
    for name in ("report.html", "junit.xml", "results.json"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "allure-results").glob("*-result.json"))


def test_results_json_accounts_for_every_requirement(lab_run) -> None:
    results = lab_run.results
    run = results["run"]
    for key in ("id", "profile", "profile_sha256", "started", "finished", "tool_version", "host", "pytest_args"):
        assert run[key], key
    assert run["profile"] == "lab"
    rows = results["requirements"]
    assert [r["id"] for r in rows] == [r.id for r in load_catalogue()]
    by_verdict = {r["id"]: r["verdict"] for r in rows}
    assert by_verdict["DNS-001"] == "pass"
    assert by_verdict["INFRA-001"] == "not-run"  # implemented, but -m selected DNS and CERT only
    assert by_verdict["AZURE-014"] == "not-implemented"
    assert "pass" not in {by_verdict[r.id] for r in load_catalogue() if r.section not in ("DNS", "CERT")}
    assert results["summary"]["pass"] == 14  # DNS-001..006, CERT-001..007 and CERT-103 (the lab uses its own CA)
    assert results["exit_code"] == 0
    assert all(t["nodeid"].startswith("tests_infra/") for t in rows[0]["tests"] or [{"nodeid": "tests_infra/"}])


def test_unselected_requirements_are_not_run(healthy_lab, tmp_path) -> None:
    run = run_suite(healthy_lab.workdir, tmp_path, "-m", "certificates")
    rows = {r["id"]: r["verdict"] for r in run.results["requirements"]}
    assert rows["DNS-001"] == "not-run"
    assert rows["CERT-001"] == "pass"


def test_html_report_has_requirement_columns_and_evidence(lab_run) -> None:
    html = (lab_run.run_dir / "report.html").read_text()
    for column in ("Requirement", "Section", "Severity", "Verdict", "Docs"):
        assert f">{column}</th>" in html
    assert "DNS-001" in html
    blobs = re.findall(r"data:text/plain;charset=utf-8;base64,([A-Za-z0-9+/=]+)", html)
    decoded = "\n".join(base64.b64decode(b).decode() for b in blobs)
    assert "sha256_fingerprint" in decoded
    assert '"addresses"' in decoded


def test_junit_carries_requirement_properties(lab_run) -> None:
    tree = ET.parse(lab_run.run_dir / "junit.xml")
    properties = {(p.get("name"), p.get("value")) for p in tree.iter("property")}
    assert ("requirement", "DNS-001") in properties
    assert ("section", "CERT") in properties


def test_allure_results_carry_labels_links_and_evidence(lab_run) -> None:
    results = [json.loads(p.read_text()) for p in (lab_run.run_dir / "allure-results").glob("*-result.json")]
    one = next(r for r in results if "test_ui_name_resolves_to_ingress" in r["fullName"])
    labels = {(label["name"], label["value"]) for label in one["labels"]}
    assert ("requirement", "DNS-001") in labels
    assert ("epic", "DNS: DNS") in labels or any(n == "epic" and v.startswith("DNS") for n, v in labels)
    assert any(link["url"].startswith("https://") for link in one["links"])
    assert one["attachments"]


# ----------------------------------------------------------------------------- secrets


LEAKY_CHECK = '''
import logging

import pytest

from kkp_readiness.errors import ProbeError


@pytest.mark.requirement("DNS-001")
def test_leaks_everywhere(loaded_profile, evidence):
    secret = loaded_profile.profile.storage.s3_secret_key.reveal()
    print("stdout", secret)
    logging.getLogger("leak").warning("log %s", secret)
    evidence.attach("json evidence", {"value": secret})
    evidence.attach("text evidence", "text " + secret)
    assert secret == "something else", "message " + secret


@pytest.mark.requirement("DNS-002")
def test_leaks_in_errors(loaded_profile):
    raise ProbeError("could not log in with " + loaded_profile.profile.storage.s3_secret_key.reveal())
'''


def _contains_canary(text: str, canary: str) -> bool:
    import html

    forms = (canary, json.dumps(canary)[1:-1], html.escape(canary), html.escape(canary, False))
    if any(form in text for form in forms):
        return True
    for blob in re.findall(r"[A-Za-z0-9+/]{16,}={0,2}", text):
        try:
            decoded = base64.b64decode(blob + "=" * (-len(blob) % 4)).decode("utf-8", "ignore")
        except ValueError:
            continue
        if canary in decoded:
            return True
    return False


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "xdist"])
def test_canary_secret_never_reaches_an_artifact(healthy_lab, tmp_path, parallel: bool) -> None:
    canary = 'canary-"S3CR3T"&<9f8e>\\7d6c5b4a'
    profile = tmp_path / "canary.yaml"
    profile.write_text(f"extends: {PROJECT_ROOT / 'profiles' / 'lab.yaml'}\n"
                       "storage: {s3_secret_key: '${env:KKP_CANARY_SECRET}'}\n")
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "test_leaky.py").write_text(LEAKY_CHECK)
    env = {"KKP_CANARY_SECRET": canary, "KKP_READINESS_LAB_DIR": str(healthy_lab.workdir)}
    reports = tmp_path / "reports"
    extra = ["-n", "2"] if parallel else []
    shipped = run_suite(healthy_lab.workdir, reports, "-m", "dns or certificates", *extra, env=env,
                        profile=str(profile))
    assert shipped.returncode == 0, shipped.output[-3000:]
    user_allure = tmp_path / "user-allure"
    leaky = pytest_run("tests_infra", str(tmp_path / "checks" / "test_leaky.py"), f"--profile={profile}",
                       f"--reports-dir={reports}", "-o", "log_level=INFO", f"--alluredir={user_allure}",
                       f"--html={tmp_path / 'user.html'}", "-m", "not benchmark", *extra, env=env)
    assert leaky.returncode == 1, leaky.stdout + leaky.stderr
    assert canary not in leaky.stdout + leaky.stderr
    files = [p for p in (*reports.rglob("*"), *user_allure.rglob("*"), tmp_path / "user.html") if p.is_file()]
    assert list(user_allure.glob("*-result.json"))
    assert len(files) > 10
    leaking = [str(p) for p in files if _contains_canary(p.read_text(errors="ignore"), canary)]
    assert not leaking
