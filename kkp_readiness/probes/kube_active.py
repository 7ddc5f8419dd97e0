"""Active checks: objects the suite creates in a cluster, only with ``--active``, always removed.

Everything lives in one namespace of the run's own, labelled as the suite's
(``app.kubernetes.io/managed-by=kkp-readiness``), so that deleting the namespace removes it all,
and ``kkp-readiness cleanup`` finds leftovers of a run that was killed before it could clean up.

>>> session = ActiveSession(reader, run_id="20261124T190000Z-lab-ab12", timeout=120)   # doctest: +SKIP
>>> session.load_balancer_address()                                                   # doctest: +SKIP
LoadBalancerResult(address='192.0.2.40', waited=1.5, service={...})
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kkp_readiness.errors import KubeProbeError
from kkp_readiness.probes.kube import ClusterReader

MANAGED_BY = ("app.kubernetes.io/managed-by", "kkp-readiness")
RUN_LABEL = "kkp-readiness.kubermatic.io/run"


@dataclass(frozen=True)
class WaitResult:
    """What an active check saw: whether the cluster did it in time, and the objects as last read."""

    done: bool
    waited: float
    objects: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobRun:
    """What a Job the suite ran did: whether it finished in time and succeeded, and its pod's log.

    ``reason`` says in words why it did not succeed ("" when it did); ``objects`` holds the Job,
    claim and pod as last read (``"pod"`` is ``{}`` when the Job never got one).
    """

    done: bool
    succeeded: bool
    waited: float
    log: str
    exit_code: int | None
    pod_phase: str | None
    reason: str
    objects: dict[str, Any] = field(default_factory=dict)


class ActiveSession:
    """The test objects of one run in one cluster."""

    def __init__(self, reader: ClusterReader, run_id: str, timeout: float, poll: float = 0.5) -> None:
        self.reader = reader
        self.run_id = run_id
        self.timeout = timeout
        self.poll = poll
        suffix = run_id.rsplit("-", 1)[-1].lower()
        self.namespace = f"kkp-readiness-{suffix}"
        self._created = False

    def _core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.reader._client())

    def _namespace(self) -> str:
        if not self._created:
            body = {"metadata": {"name": self.namespace,
                                 "labels": {MANAGED_BY[0]: MANAGED_BY[1], RUN_LABEL: self.run_id[:63]}}}
            self.reader._call("create", "namespaces", "", self._core().create_namespace, body=body)
            self._created = True
        return self.namespace

    def _wait(self, read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool],
              timeout: float | None = None) -> WaitResult:
        started = time.monotonic()
        limit = self.timeout if timeout is None else timeout
        while True:
            objects = read()
            if done(objects):
                return WaitResult(True, time.monotonic() - started, objects)
            if time.monotonic() - started >= limit:
                return WaitResult(False, time.monotonic() - started, objects)
            time.sleep(self.poll)

    def load_balancer(self) -> WaitResult:
        """A Service of type LoadBalancer; done when it has an external address."""
        namespace = self._namespace()
        core = self._core()
        body = {"metadata": {"name": "lb-probe", "labels": {MANAGED_BY[0]: MANAGED_BY[1]}},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": 8080}],
                         "selector": {"app": "kkp-readiness-none"}}}
        self.reader._call("create", "services", "", core.create_namespaced_service, namespace=namespace, body=body)

        def read() -> dict[str, Any]:
            service = self.reader._call("get", "services", "", core.read_namespaced_service,
                                        name="lb-probe", namespace=namespace)
            return {"service": self.reader._serialize(service)}

        return self._wait(read, lambda o: bool(external_addresses(o["service"])))

    def bound_volume(self, storage_class: str, image: str) -> WaitResult:
        """A PVC of ``storage_class`` and a pod mounting it (so WaitForFirstConsumer binds); done when
        the claim is Bound and the pod Running."""
        namespace = self._namespace()
        core = self._core()
        claim = {"metadata": {"name": "volume-probe", "labels": {MANAGED_BY[0]: MANAGED_BY[1]}},
                 "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                          "resources": {"requests": {"storage": "1Gi"}}}}
        pod = {"metadata": {"name": "volume-probe", "labels": {MANAGED_BY[0]: MANAGED_BY[1]}},
               "spec": {"containers": [{"name": "pause", "image": image,
                                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "volume-probe"}}],
                        "terminationGracePeriodSeconds": 0}}
        self.reader._call("create", "persistentvolumeclaims", "", core.create_namespaced_persistent_volume_claim,
                          namespace=namespace, body=claim)
        self.reader._call("create", "pods", "", core.create_namespaced_pod, namespace=namespace, body=pod)

        def read() -> dict[str, Any]:
            claim_now = self.reader._call("get", "persistentvolumeclaims", "",
                                          core.read_namespaced_persistent_volume_claim,
                                          name="volume-probe", namespace=namespace)
            pod_now = self.reader._call("get", "pods", "", core.read_namespaced_pod,
                                        name="volume-probe", namespace=namespace)
            return {"claim": self.reader._serialize(claim_now), "pod": self.reader._serialize(pod_now)}

        def done(objects: dict[str, Any]) -> bool:
            return (objects["claim"].get("status", {}).get("phase") == "Bound"
                    and objects["pod"].get("status", {}).get("phase") == "Running")

        return self._wait(read, done)

    def _batch(self) -> Any:
        from kubernetes import client

        return client.BatchV1Api(self.reader._client())

    def run_job(self, name: str, storage_class: str, volume_size: str, image: str, command: list[str],
                mount_path: str, timeout: float) -> JobRun:
        """Run ``command`` in ``image`` as a Job (container ``fio``) on a new PVC ``name`` of
        ``storage_class`` mounted at ``mount_path``; wait until the Job is Complete or Failed (at
        most ``timeout`` seconds, which is also its ``activeDeadlineSeconds``), then read its pod's log.

        The claim and the Job are created together, so that a WaitForFirstConsumer class binds
        when the pod is scheduled. Both stay until ``cleanup`` deletes the namespace.
        """
        namespace = self._namespace()
        core, batch = self._core(), self._batch()
        labels = {MANAGED_BY[0]: MANAGED_BY[1]}
        claim = {"metadata": {"name": name, "labels": labels},
                 "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                          "resources": {"requests": {"storage": volume_size}}}}
        job = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": name, "labels": labels},
               "spec": {"backoffLimit": 0, "activeDeadlineSeconds": max(1, math.ceil(timeout)),
                        "template": {"metadata": {"labels": labels},
                                     "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                                              "containers": [{"name": "fio", "image": image, "command": command,
                                                              "volumeMounts": [{"name": "data",
                                                                                "mountPath": mount_path}]}],
                                              "volumes": [{"name": "data",
                                                           "persistentVolumeClaim": {"claimName": name}}]}}}}
        self.reader._call("create", "persistentvolumeclaims", "", core.create_namespaced_persistent_volume_claim,
                          namespace=namespace, body=claim)
        self.reader._call("create", "jobs", "batch", batch.create_namespaced_job, namespace=namespace, body=job)

        def read() -> dict[str, Any]:
            job_now = self.reader._call("get", "jobs", "batch", batch.read_namespaced_job,
                                        name=name, namespace=namespace)
            claim_now = self.reader._call("get", "persistentvolumeclaims", "",
                                          core.read_namespaced_persistent_volume_claim,
                                          name=name, namespace=namespace)
            pods = self.reader._call("list", "pods", "", core.list_namespaced_pod, namespace=namespace,
                                     label_selector=f"job-name={name}")
            items = self.reader._serialize(pods).get("items") or []
            # The newest pod (a Job with backoffLimit 0 has one; a retried one the last).
            items.sort(key=lambda p: p.get("metadata", {}).get("creationTimestamp") or "")
            return {"job": self.reader._serialize(job_now), "claim": self.reader._serialize(claim_now),
                    "pod": items[-1] if items else {}}

        result = self._wait(read, lambda o: job_finished(o["job"]) is not None, timeout=timeout)
        objects = result.objects
        outcome = job_finished(objects["job"])
        pod = objects["pod"]
        pod_name = pod.get("metadata", {}).get("name")
        log = ""
        if pod_name and pod.get("status", {}).get("phase") not in (None, "Pending"):
            try:
                log = self.reader._call("get", "pods/log", "", core.read_namespaced_pod_log, name=pod_name,
                                        namespace=namespace, container="fio")
            except KubeProbeError as exc:
                if "HTTP 400" not in str(exc) and "HTTP 404" not in str(exc):
                    raise
        if outcome is not True and objects["claim"].get("status", {}).get("phase") != "Bound":
            objects = {**objects, "claim_events": self._events(namespace, "PersistentVolumeClaim", name)}
        terminated = _terminated(pod)
        exit_code = terminated.get("exitCode") if terminated else None
        succeeded = outcome is True
        reason = "" if succeeded else job_failure_reason(objects, result.done, timeout)
        return JobRun(result.done, succeeded, result.waited, log or "", exit_code,
                      pod.get("status", {}).get("phase"), reason, objects)

    def _events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        """Events about one object, oldest first; [] when they cannot be read (they only explain)."""
        try:
            found = self.reader._call("list", "events", "", self._core().list_namespaced_event, namespace=namespace,
                                      field_selector=f"involvedObject.kind={kind},involvedObject.name={name}")
        except KubeProbeError:
            return []
        items = self.reader._serialize(found).get("items") or []
        return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    def cleanup(self) -> None:
        """Delete the run's namespace (and so everything in it); a namespace that is gone is fine."""
        if not self._created:
            return
        delete_namespace(self.reader, self.namespace)
        self._created = False


def job_finished(job: dict[str, Any]) -> bool | None:
    """True: the Job is Complete; False: it Failed; None: it is still running (or waiting)."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return condition["type"] == "Complete"
    if status.get("succeeded"):
        return True
    if status.get("failed"):
        return False
    return None


def _terminated(pod: dict[str, Any]) -> dict[str, Any]:
    for container in pod.get("status", {}).get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated")
        if terminated:
            return dict(terminated)
    return {}


def _condition(obj: dict[str, Any], kind: str, status: str = "True") -> dict[str, Any]:
    for condition in obj.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == status:
            return dict(condition)
    return {}


def job_failure_reason(objects: dict[str, Any], done: bool, timeout: float) -> str:
    """Why a Job of ``run_job`` did not succeed, in words, from its objects as last read."""
    job, claim, pod = objects.get("job") or {}, objects.get("claim") or {}, objects.get("pod") or {}
    failed = _condition(job, "Failed")
    terminated = _terminated(pod)
    deadline = failed.get("reason") == "DeadlineExceeded"
    if terminated and terminated.get("exitCode") not in (None, 0):
        detail = f" ({terminated['message'].strip()})" if terminated.get("message") else ""
        what = f"the pod's container terminated with exit code {terminated['exitCode']}{detail}"
        if deadline:
            return f"the Job exceeded its deadline of {timeout:g} s and its container was killed: {what}"
        return what
    if failed and not deadline:
        return f"the Job failed ({failed.get('reason', '')}): {failed.get('message', '')}".rstrip(": ")
    waiting = (f"the Job exceeded its deadline of {timeout:g} s" if deadline
               else f"the Job did not finish within {timeout:g} s")
    if claim.get("status", {}).get("phase") != "Bound":
        events = [e.get("message") for e in objects.get("claim_events") or [] if e.get("message")]
        scheduled = _condition(pod, "PodScheduled", "False")
        message = (events[-1] if events else "") or scheduled.get("message") or "no event or condition explains it"
        return f"{waiting}: the claim stayed {claim.get('status', {}).get('phase', 'Pending')}: {message}"
    if not pod:
        return f"{waiting}: it never created a pod"
    phase = pod.get("status", {}).get("phase")
    if phase == "Pending" or not terminated:
        scheduled = _condition(pod, "PodScheduled", "False")
        waiting_state = next(((c.get("state") or {}).get("waiting") or {}
                              for c in pod.get("status", {}).get("containerStatuses") or []), {})
        message = scheduled.get("message") or waiting_state.get("message") or waiting_state.get("reason") or ""
        state = "stayed Pending" if phase == "Pending" else f"was {phase}"
        return f"{waiting}: its pod {state}" + (f": {message}" if message else "")
    return f"{waiting}: its pod was {phase}"


def external_addresses(service: dict[str, Any]) -> list[str]:
    ingress = service.get("status", {}).get("loadBalancer", {}).get("ingress") or []
    return [entry.get("ip") or entry.get("hostname") for entry in ingress if entry.get("ip") or entry.get("hostname")]


def delete_namespace(reader: ClusterReader, name: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(reader._client())
    try:
        reader._call("delete", "namespaces", "", core.delete_namespace, name=name)
    except KubeProbeError as exc:
        if "HTTP 404" not in str(exc):
            raise


def leftovers(reader: ClusterReader) -> list[str]:
    """Namespaces an earlier run created and did not remove."""
    from kubernetes import client

    core = client.CoreV1Api(reader._client())
    found = reader._call("list", "namespaces", "", core.list_namespace, label_selector="=".join(MANAGED_BY))
    return sorted(ns.metadata.name for ns in found.items)
