"""Active checks: objects the suite creates in a cluster, only with ``--active``, always removed.

Everything lives in one namespace of the run's own, labelled as the suite's
(``app.kubernetes.io/managed-by=kkp-readiness``), so that deleting the namespace removes it all,
and ``kkp-readiness cleanup`` finds leftovers of a run that was killed before it could clean up.

>>> session = ActiveSession(reader, run_id="20261124T190000Z-lab-ab12", timeout=120)   # doctest: +SKIP
>>> session.load_balancer_address()                                                   # doctest: +SKIP
LoadBalancerResult(address='192.0.2.40', waited=1.5, service={...})
"""

from __future__ import annotations

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

    def _wait(self, read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> WaitResult:
        started = time.monotonic()
        while True:
            objects = read()
            if done(objects):
                return WaitResult(True, time.monotonic() - started, objects)
            if time.monotonic() - started >= self.timeout:
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

    def cleanup(self) -> None:
        """Delete the run's namespace (and so everything in it); a namespace that is gone is fine."""
        if not self._created:
            return
        delete_namespace(self.reader, self.namespace)
        self._created = False


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
