"""Jobs in the lab's Kubernetes API server, run through the suite's own probe (``ActiveSession.run_job``).

The lab's kubelet runs a Job pod's command on this machine, with the volume's mount path mapped to
the volume's directory under ``<workdir>/kubeapi/volumes``. Only the kubeapi part is started (a
second or two), as in test_kubeapi.py's fault tests; the client is the real ``kubernetes`` one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from kkp_readiness.lab import Lab, LabCA, LabContext, resolve_faults
from kkp_readiness.lab.kubeapi import KubeApiPart
from kkp_readiness.lab.part import running_as_root
from kkp_readiness.probes.fio import parse_fio_json
from kkp_readiness.probes.kube import ClusterAccess, ClusterReader
from kkp_readiness.probes.kube_active import ActiveSession, JobRun

FAST = "kubermatic-fast"


@pytest.fixture(scope="module")
def start_part(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., dict[str, Any]]]:
    """Start the kubeapi part alone with the given faults; all are stopped at the end of the module."""
    ca = LabCA(tmp_path_factory.mktemp("kubeapi-jobs-ca") / "ca")
    parts: list[KubeApiPart] = []
    directories: list[str] = []

    def start(*faults: str) -> dict[str, Any]:
        workdir = Path(tempfile.mkdtemp(prefix="kkp-kubeapi-jobs-"))
        directories.append(str(workdir))
        part = KubeApiPart()
        parts.append(part)
        return part.start(LabContext(workdir, resolve_faults(faults), _ca=ca))

    yield start
    for part in reversed(parts):
        part.stop()
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def state(start_part: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return start_part()


def _session(state: dict[str, Any]) -> ActiveSession:
    reader = ClusterReader(ClusterAccess(kubeconfig=state["kubeconfig"], context=None, timeout=5))
    return ActiveSession(reader, run_id=f"test-{uuid.uuid4().hex[:8]}", timeout=10, poll=0.1)


@pytest.fixture
def session(state: dict[str, Any]) -> Iterator[ActiveSession]:
    active = _session(state)
    yield active
    active.cleanup()


def _run(session: ActiveSession, command: list[str], storage_class: str = FAST, timeout: float = 10) -> JobRun:
    return session.run_job("fio-probe", storage_class, "1Gi", "registry.example/fio:3.36", command, "/data", timeout)


def test_job_runs_its_command_on_the_volume(session: ActiveSession, state: dict[str, Any]) -> None:
    run = _run(session, ["sh", "-c", "echo hello > /data/x && cat /data/x && echo done"])
    assert run.done, run.reason
    assert run.succeeded, run
    assert run.exit_code == 0
    assert run.pod_phase == "Succeeded"
    assert run.reason == ""
    assert run.log == "hello\ndone\n"
    volume = run.objects["claim"]["spec"]["volumeName"]
    assert (Path(state["volumes_dir"]) / volume / "x").read_text() == "hello\n"
    job = run.objects["job"]
    assert job["status"]["succeeded"] == 1
    assert [c["type"] for c in job["status"]["conditions"]][-1] == "Complete"
    pod = run.objects["pod"]
    assert pod["metadata"]["labels"]["job-name"] == "fio-probe"
    assert pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "fio-probe"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert pod["metadata"]["name"].startswith("fio-probe-")
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


def test_failing_command_fails_the_job(session: ActiveSession) -> None:
    run = _run(session, ["sh", "-c", "echo broken >&2; exit 3"])
    assert run.done
    assert not run.succeeded
    assert run.exit_code == 3
    assert run.pod_phase == "Failed"
    assert run.log == "broken\n"
    assert run.reason == "the pod's container terminated with exit code 3"
    failed = [c for c in run.objects["job"]["status"]["conditions"] if c["type"] == "Failed"]
    assert failed[0]["reason"] == "BackoffLimitExceeded"


def test_missing_executable_is_a_start_error(session: ActiveSession) -> None:
    run = _run(session, ["fio-does-not-exist", "--version"])
    assert run.done
    assert not run.succeeded
    assert run.exit_code == 128
    assert "exit code 128" in run.reason
    assert "fio-does-not-exist" in run.reason


def test_missing_storage_class_leaves_the_claim_pending(session: ActiveSession) -> None:
    run = _run(session, ["sh", "-c", "echo never"], storage_class="no-such-class", timeout=1.5)
    assert not run.done
    assert not run.succeeded
    assert run.exit_code is None
    assert run.pod_phase == "Pending"
    assert run.log == ""
    assert run.reason.startswith("the Job did not finish within 1.5 s: the claim stayed Pending: ")
    assert 'storageclass.storage.k8s.io "no-such-class" not found' in run.reason


def test_deadline_kills_the_command(session: ActiveSession) -> None:
    run = _run(session, ["sh", "-c", "echo started; sleep 30"], timeout=1)
    assert run.done
    assert not run.succeeded
    assert run.log == "started\n"
    failed = [c for c in run.objects["job"]["status"]["conditions"] if c["type"] == "Failed"]
    assert failed[0]["reason"] == "DeadlineExceeded"
    assert "deadline" in run.reason


def test_pod_log_of_a_pending_pod_is_refused(session: ActiveSession) -> None:
    _run(session, ["sh", "-c", "echo never"], storage_class="no-such-class", timeout=0.2)
    core = kubernetes.client.CoreV1Api(session.reader._client())
    pod = core.list_namespaced_pod(session.namespace, label_selector="job-name=fio-probe").items[0]
    with pytest.raises(kubernetes.client.ApiException) as raised:
        core.read_namespaced_pod_log(pod.metadata.name, session.namespace)
    assert raised.value.status == 400
    status = json.loads(raised.value.body)
    assert status["reason"] == "BadRequest"
    assert status["message"] == f'container "fio" in pod "{pod.metadata.name}" is waiting to start: ContainerCreating'


def test_namespace_delete_stops_a_running_pod(state: dict[str, Any]) -> None:
    session = _session(state)
    marker = uuid.uuid4().hex
    try:
        run = _run(session, ["sh", "-c", f"echo {marker}; sleep 60"], timeout=0.5)
        assert not run.done or not run.succeeded
    finally:
        session.cleanup()
    assert not any(Path(state["volumes_dir"]).iterdir()), "the deleted claim's volume directory is left"
    batch = kubernetes.client.BatchV1Api(session.reader._client())
    with pytest.raises(kubernetes.client.ApiException):
        batch.read_namespaced_job("fio-probe", session.namespace)
    assert marker not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("fio") is None, reason="fio is not installed")
def test_fio_runs_on_the_volume(session: ActiveSession) -> None:
    run = _run(session, ["fio", "--name=t", "--directory=/data", "--size=1m", "--bs=4k", "--rw=write",
                         "--output-format=json"], timeout=30)
    assert run.succeeded, run.reason + run.log[-2000:]
    report = parse_fio_json(run.log)
    assert report.job("t").write_ios == 256


@pytest.mark.skipif(not running_as_root() or shutil.which("fio") is None, reason="needs root and fio")
def test_fast_volumes_slow_fault_throttles_fio(kkp_lab_factory: Callable[..., Lab]) -> None:
    """The whole lab with the fault: kubermatic-fast volumes sit on the throttled disk, others do not."""
    lab = kkp_lab_factory(["kube-fast-volumes-slow"])
    assert lab.state is not None
    slow = lab.state["kubeapi"]
    session = _session(slow)
    try:
        run = _run(session, ["fio", "--name=wal", "--directory=/data", "--size=64k", "--bs=2300", "--rw=write",
                             "--ioengine=sync", "--fdatasync=1", "--output-format=json"], timeout=60)
        assert run.succeeded, run.reason + run.log[-2000:]
        volume = run.objects["claim"]["spec"]["volumeName"]
        assert (Path(slow["volumes_dir"]).parent / "volumes-slow" / volume).is_dir()
        p99 = parse_fio_json(run.log).job("wal").sync_percentile(99.0)
        assert p99 is not None
        assert p99 > 10, p99
        other = session.run_job("other", "standard", "1Gi", "img", ["sh", "-c", "echo ok"], "/data", 10)
        assert other.succeeded, other.reason
        assert (Path(slow["volumes_dir"]) / other.objects["claim"]["spec"]["volumeName"]).is_dir()
    finally:
        session.cleanup()
