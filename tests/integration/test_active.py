"""Active checks clean up after themselves: after a pass, after a failure and after Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from kkp_readiness.lab.kubeapi.part import read_request_log
from tests.conftest import PROJECT_ROOT, run_suite


def suite_namespaces(lab) -> list[str]:
    """Namespaces labelled as the suite's that still exist in the lab cluster."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=lab.state["kubeapi"]["kubeconfig"], persist_config=False)
    found = client.CoreV1Api(api).list_namespace(label_selector="app.kubernetes.io/managed-by=kkp-readiness")
    return [ns.metadata.name for ns in found.items]


def writes(lab) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in read_request_log(lab.state["kubeapi"]["request_log"]) if r.method != "GET"]


def test_active_checks_pass_and_leave_nothing(tmp_path, kkp_lab_factory) -> None:
    lab = kkp_lab_factory([])
    run = run_suite(lab.workdir, tmp_path, "-m", "active", "--active")
    verdicts = run.verdicts(("LB", "STORAGE"))
    assert verdicts == {"LB-010": "pass", "STORAGE-010": "pass"}, run.output[-3000:]
    assert suite_namespaces(lab) == []
    created = writes(lab)[0]
    assert created == ("POST", "/api/v1/namespaces")
    assert writes(lab)[-1][0] == "DELETE"


def test_without_active_nothing_is_created(tmp_path, kkp_lab_factory) -> None:
    lab = kkp_lab_factory([])
    run = run_suite(lab.workdir, tmp_path, "-m", "active")
    assert set(run.verdicts(("LB", "STORAGE")).values()) == {"skip"}
    assert writes(lab) == []


def test_failed_active_check_still_cleans_up(tmp_path, kkp_lab_factory) -> None:
    lab = kkp_lab_factory(["kube-lb-controller-off"])
    run = run_suite(lab.workdir, tmp_path, "-m", "active", "--active")
    assert run.verdicts(("LB",)) == {"LB-010": "fail"}, run.output[-3000:]
    assert "no address (pending)" in run.requirement("LB-010")["messages"][0]["message"]
    assert suite_namespaces(lab) == []


def test_interrupted_run_cleans_up(tmp_path, kkp_lab_factory) -> None:
    """SIGINT while an active check waits: the namespace is still deleted."""
    lab = kkp_lab_factory(["kube-lb-controller-off"])
    profile = tmp_path / "slow.yaml"
    profile.write_text(f"extends: {PROJECT_ROOT / 'profiles' / 'lab.yaml'}\nactive: {{timeout: 120}}\n")
    env = {**os.environ, "KKP_READINESS_LAB_DIR": str(lab.workdir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "tests_infra", f"--profile={profile}", f"--reports-dir={tmp_path / 'r'}",
         "-p", "no:cacheprovider", "--no-allure-report", "-m", "active", "--active", "-k", "LB-010"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(method == "POST" and path.endswith("/services") for method, path in writes(lab)):
            assert time.monotonic() < deadline, "the active check never created its Service"
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.2)
        assert suite_namespaces(lab)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, output[-3000:]
    assert suite_namespaces(lab) == [], output[-3000:]
    results = json.loads(next((tmp_path / "r").glob("*/results.json")).read_text())
    assert results["exit_code"] == 130


def test_cleanup_command_removes_leftovers(tmp_path, kkp_lab_factory) -> None:
    """A run killed with SIGKILL cannot clean up; `kkp-readiness cleanup` removes its namespace by label."""
    from kubernetes import client, config

    lab = kkp_lab_factory([])
    api = config.new_client_from_config(config_file=lab.state["kubeapi"]["kubeconfig"], persist_config=False)
    client.CoreV1Api(api).create_namespace(
        {"metadata": {"name": "kkp-readiness-dead", "labels": {"app.kubernetes.io/managed-by": "kkp-readiness"}}})
    env = {**os.environ, "KKP_READINESS_LAB_DIR": str(lab.workdir)}
    command = [sys.executable, "-m", "kkp_readiness", "cleanup", "--profile=lab"]
    dry = subprocess.run([*command, "--dry-run"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert "would delete namespace kkp-readiness-dead" in dry.stdout
    assert suite_namespaces(lab) == ["kkp-readiness-dead"]
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert suite_namespaces(lab) == []
