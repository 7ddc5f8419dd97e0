"""The lab API server's object store, with the few controllers a real cluster would run.

Objects live in memory, keyed by resource type, namespace and name; every change bumps one
counter that becomes the object's ``metadata.resourceVersion`` (and the list's), and is kept as
a watch event. Simulated controllers, each as small as what active checks observe:

* load balancer: a Service of type LoadBalancer gets the next free address of the fixture's
  ``lb_pool`` in ``status.loadBalancer.ingress[0].ip`` (MetalLB-like; off with
  ``controllers.load_balancer: false``);
* volume binder: a PVC of an existing StorageClass is Bound at once (``Immediate``) or when a
  Pod using it is created (``WaitForFirstConsumer``), with a PersistentVolume created for it
  (off with ``controllers.volume_binder: false``);
* scheduler and kubelet: a created Pod whose claims are all bound runs on a Ready worker node;
* job controller: a created Job gets one Pod from its template (``<job>-<5 chars>``, labelled
  ``job-name``/``controller-uid``, owned by the Job); when it fails and ``backoffLimit`` allows, another;
  ``activeDeadlineSeconds`` fails the Job (``DeadlineExceeded``) also while its pod waits;
* the lab's kubelet for pods owned by Jobs, only when the store has a ``volumes_dir``: the lab has no
  container runtime, so the lab's kubelet runs the container's command on the lab machine with the
  volume's mount path mapped to the volume's directory; the image is recorded, not pulled. Each
  bound PersistentVolume is the directory ``<volumes_dir>/<pv-name>`` (or under the directory
  ``class_dirs`` gives its StorageClass); every occurrence of a volume's ``mountPath`` in the
  command and args strings is replaced with that directory (there is no mount namespace per
  container). The process runs in a background thread in its own process group, its stdout and
  stderr interleaved into the pod's log (``pods/<name>/log``); its exit sets the pod
  Succeeded/Failed and the Job's status. Without a ``volumes_dir`` such pods stay Running.

Everything is deterministic apart from generated names and UIDs, and the store is thread-safe
(one lock; ``changed`` is notified on every event for watchers).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kkp_readiness.lab.kubeapi.cluster import Cluster
from kkp_readiness.lab.kubeapi.resources import Registry, ResourceType, crd_object

Object = dict[str, Any]
#: Key of an object: (group/plural, namespace or "", name).
Key = tuple[str, str, str]

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
#: How many events a watch can resume from; older resourceVersions get 410 Expired.
EVENT_HISTORY = 2000
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORTS = range(30000, 32768)
JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
CONTROLLER_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
#: A pod's container could not be started (the runtime found no executable): what containerd reports.
START_ERROR_EXIT = 128


class ApiError(Exception):
    """An error answered as a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(rtype: ResourceType, name: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if rtype.group:
        details["group"] = rtype.group
    details["kind"] = rtype.plural
    return details


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rtype.qualified} "{name}" not found', _details(rtype, name))


def already_exists(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rtype.qualified} "{name}" already exists', _details(rtype, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(rtype: ResourceType, name: str, message: str) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        f'{rtype.kind} "{name}" is invalid: {message}',
        {**_details(rtype, name), "causes": [{"reason": "FieldValueInvalid", "message": message}]},
    )


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _suffix(length: int = 5) -> str:
    # The alphabet Kubernetes uses for generated names (no vowels, no confusable characters).
    return "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(length))


def _address_range(spec: str) -> Iterator[ipaddress.IPv4Address]:
    """Addresses of ``a-b``, a CIDR or a single address (the forms MetalLB pools accept)."""
    if "-" in spec:
        first, last = (ipaddress.IPv4Address(p.strip()) for p in spec.split("-", 1))
        for value in range(int(first), int(last) + 1):
            yield ipaddress.IPv4Address(value)
    else:
        yield from ipaddress.ip_network(spec.strip(), strict=False)


@dataclass
class Event:
    resource_version: int
    resource: str
    type: str
    object: Object


class Store:
    """All objects of one lab cluster, and the controllers acting on them."""

    def __init__(
        self,
        cluster: Cluster,
        registry: Registry | None = None,
        volumes_dir: Path | None = None,
        class_dirs: dict[str, Path] | None = None,
    ) -> None:
        self.cluster = cluster
        #: Where the lab's kubelet keeps volumes and pod logs; None: pods of Jobs are not executed.
        self.volumes_dir = Path(volumes_dir) if volumes_dir is not None else None
        #: StorageClass name -> the directory its volumes are created under instead of ``volumes_dir``.
        self.class_dirs = {name: Path(path) for name, path in (class_dirs or {}).items()}
        #: Processes of running pods, by pod uid (the lab's kubelet).
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        #: Pod uids whose container was started (each pod runs once).
        self._started: set[str] = set()
        #: Set by ``shutdown``: nothing is started any more.
        self._stopping = False
        self.registry = registry or Registry.build(cluster.resources)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.resource_version = 0
        self.events: deque[Event] = deque(maxlen=EVENT_HISTORY)
        self.objects: dict[Key, Object] = {}
        self.load_balancer = cluster.controllers.get("load_balancer", True)
        self.volume_binder = cluster.controllers.get("volume_binder", True)
        self._load(cluster)

    # -- loading ---------------------------------------------------------------------------------

    def _load(self, cluster: Cluster) -> None:
        objects = [crd_object(rtype) for rtype in self.registry.custom_types] + list(cluster.objects)
        typed = []
        for obj in objects:
            rtype = self.type_of(obj)
            typed.append((rtype, copy.deepcopy(obj)))
        namespaces = {obj["metadata"]["name"] for rtype, obj in typed if rtype.kind == "Namespace"}
        for rtype, obj in typed:
            meta = obj["metadata"]
            namespace = meta.get("namespace")
            if rtype.namespaced and namespace not in namespaces:
                raise ValueError(f"{rtype.kind} {meta['name']!r} is in namespace {namespace!r}, which does not exist")
            if not rtype.namespaced and namespace:
                raise ValueError(f"{rtype.kind} {meta['name']!r} is cluster-scoped but has a namespace")
            if self._key(rtype, namespace, meta["name"]) in self.objects:
                raise ValueError(f"{rtype.kind} {meta['name']!r} appears twice in the fixture")
            meta.setdefault("creationTimestamp", cluster.created)
            self._put(rtype, obj, event=None)

    def type_of(self, obj: Object) -> ResourceType:
        if not isinstance(obj, dict) or not obj.get("metadata", {}).get("name"):
            raise ValueError(f"fixture object without metadata.name: {obj!r:.200}")
        rtype = self.registry.by_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
        if rtype is None:
            raise ValueError(
                f"fixture object {obj['metadata']['name']!r} has unknown kind "
                f"{obj.get('apiVersion')}/{obj.get('kind')}; declare custom kinds under 'resources'"
            )
        return rtype

    # -- primitives ------------------------------------------------------------------------------

    @staticmethod
    def _key(rtype: ResourceType, namespace: str | None, name: str) -> Key:
        return (f"{rtype.group}/{rtype.plural}", namespace or "", name)

    def _put(self, rtype: ResourceType, obj: Object, event: str | None = "MODIFIED") -> Object:
        """Store ``obj`` with a new resourceVersion (and uid); record a watch event if ``event``."""
        self.resource_version += 1
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(self.resource_version)
        meta.setdefault(
            "uid",
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"kkp-lab/{rtype.qualified}/{meta.get('namespace')}/{meta['name']}")),
        )
        obj["apiVersion"] = rtype.api_version
        obj["kind"] = rtype.kind
        self.objects[self._key(rtype, meta.get("namespace"), meta["name"])] = obj
        if event:
            self._event(rtype, event, obj)
        return obj

    def _event(self, rtype: ResourceType, kind: str, obj: Object) -> None:
        self.events.append(Event(self.resource_version, f"{rtype.group}/{rtype.plural}", kind, copy.deepcopy(obj)))
        self.changed.notify_all()

    def _items(self, rtype: ResourceType, namespace: str | None = None) -> list[Object]:
        prefix = f"{rtype.group}/{rtype.plural}"
        return [
            obj
            for (resource, ns, _), obj in sorted(self.objects.items())
            if resource == prefix and (namespace is None or ns == namespace)
        ]

    def _type(self, kind: str) -> ResourceType:
        return next(t for t in self.registry.types if t.kind == kind)

    # -- reading ---------------------------------------------------------------------------------

    def list(
        self, rtype: ResourceType, namespace: str | None = None, matches: Callable[[Object], bool] = lambda o: True
    ) -> tuple[list[Object], str]:
        """Matching objects (copies, sorted by namespace and name) and the list's resourceVersion."""
        with self.lock:
            items = [copy.deepcopy(o) for o in self._items(rtype, namespace) if matches(o)]
            return items, str(self.resource_version)

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Object:
        with self.lock:
            obj = self.objects.get(self._key(rtype, namespace, name))
            if obj is None:
                raise not_found(rtype, name)
            return copy.deepcopy(obj)

    def events_after(self, resource_version: int, rtype: ResourceType) -> list[Event]:
        """Events of ``rtype`` newer than ``resource_version``; 410 if history no longer reaches it."""
        with self.lock:
            if self.events and resource_version < self.events[0].resource_version - 1:
                raise ApiError(
                    410, "Expired", f"too old resource version: {resource_version} ({self.resource_version})"
                )
            key = f"{rtype.group}/{rtype.plural}"
            return [e for e in self.events if e.resource_version > resource_version and e.resource == key]

    # -- writing ---------------------------------------------------------------------------------

    def create(self, rtype: ResourceType, namespace: str | None, body: Object) -> Object:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was not a JSON object")
        obj = copy.deepcopy(body)
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if (kind and kind != rtype.kind) or (api_version and api_version != rtype.api_version):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rtype.api_version}) or kind {kind} is not {rtype.kind}"
            )
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{_suffix()}"
        name = meta.get("name")
        if not name:
            raise invalid(rtype, "", "metadata.name: Required value: name or generateName is required")
        with self.lock:
            if rtype.namespaced:
                if meta.get("namespace") and meta["namespace"] != namespace:
                    raise bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request"
                    )
                meta["namespace"] = namespace
                if self.objects.get(self._key(self._type("Namespace"), None, str(namespace))) is None:
                    raise not_found(self._type("Namespace"), str(namespace))
            else:
                meta.pop("namespace", None)
            if self._key(rtype, namespace, name) in self.objects:
                raise already_exists(rtype, name)
            meta["creationTimestamp"] = now()
            meta.pop("resourceVersion", None)
            meta["uid"] = str(uuid.uuid4())
            defaults = getattr(self, f"_default_{rtype.kind.lower()}", None)
            if defaults is not None:
                defaults(obj)
            created = self._put(rtype, obj, event="ADDED")
            self._reconcile(rtype, created)
            return copy.deepcopy(self.objects[self._key(rtype, namespace, name)])

    def delete(self, rtype: ResourceType, namespace: str | None, name: str) -> Object:
        with self.lock:
            obj = self.objects.pop(self._key(rtype, namespace, name), None)
            if obj is None:
                raise not_found(rtype, name)
            self.resource_version += 1
            obj["metadata"]["resourceVersion"] = str(self.resource_version)
            self._event(rtype, "DELETED", obj)
            if rtype.kind == "Pod":
                self._kill(obj["metadata"].get("uid", ""))
            elif rtype.kind == "PersistentVolume" and self.volumes_dir is not None:
                # reclaimPolicy Delete: the volume's data goes with it.
                shutil.rmtree(self._volume_path(obj), ignore_errors=True)
            if rtype.kind == "Namespace":
                for key in [k for k in self.objects if k[1] == name]:
                    child = self.objects.get(key)
                    if child is None:
                        continue
                    self.delete(self.registry.by_kind(child["apiVersion"], child["kind"]), name, key[2])  # type: ignore[arg-type]
            elif rtype.kind == "PersistentVolumeClaim":
                volume = obj.get("spec", {}).get("volumeName")
                pv_type = self._type("PersistentVolume")
                if volume and self._key(pv_type, None, volume) in self.objects:
                    self.delete(pv_type, None, volume)
            return obj

    # -- defaults a real API server applies on create --------------------------------------------

    def _default_namespace(self, obj: Object) -> None:
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]

    def _default_service(self, obj: Object) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if spec.get("clusterIP") != "None":
            used = {o.get("spec", {}).get("clusterIP") for o in self._items(self._type("Service"))}
            address = next(str(a) for a in SERVICE_CIDR.hosts() if str(a) not in used)
            spec["clusterIP"] = address
            spec["clusterIPs"] = [address]
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("ipFamilies", ["IPv4"])
        if spec["type"] in ("NodePort", "LoadBalancer"):
            used_ports = {
                p.get("nodePort")
                for o in self._items(self._type("Service"))
                for p in o.get("spec", {}).get("ports", [])
            }
            free = (port for port in NODE_PORTS if port not in used_ports)
            for port in spec.get("ports", []):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
                if not port.get("nodePort"):
                    port["nodePort"] = next(free)
        for port in spec.get("ports", []):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        obj["status"] = {"loadBalancer": {}}

    def _default_persistentvolumeclaim(self, obj: Object) -> None:
        spec = obj.setdefault("spec", {})
        if "storageClassName" not in spec:
            default = self._default_class()
            if default is not None:
                spec["storageClassName"] = default
        spec.setdefault("volumeMode", "Filesystem")
        obj["status"] = {"phase": "Pending"}

    def _default_pod(self, obj: Object) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", "default")
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}

    def _default_job(self, obj: Object) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        obj["status"] = {}

    # -- controllers -----------------------------------------------------------------------------

    def _reconcile(self, rtype: ResourceType, obj: Object) -> None:
        if rtype.kind == "Service" and self.load_balancer:
            self._assign_load_balancer(rtype, obj)
        elif rtype.kind == "PersistentVolumeClaim" and self.volume_binder:
            class_name = obj.get("spec", {}).get("storageClassName")
            if class_name and self._key(self._type("StorageClass"), None, class_name) not in self.objects:
                self._warn(obj, "ProvisioningFailed", f'storageclass.storage.k8s.io "{class_name}" not found')
            if self._maybe_bind(obj, consumer_exists=self._claim_in_use(obj)):
                # The scheduler retries pods that waited for this claim.
                pod_type = self._type("Pod")
                for pod in self._items(pod_type, obj["metadata"]["namespace"]):
                    if pod.get("status", {}).get("phase") == "Pending" and obj["metadata"]["name"] in _claims(pod):
                        self._run_pod(pod_type, pod)
        elif rtype.kind == "Pod":
            self._run_pod(rtype, obj)
        elif rtype.kind == "Job":
            self._start_job(rtype, obj)

    def _warn(self, obj: Object, reason: str, message: str) -> None:
        """A Warning Event about ``obj`` (as the controller that gave up on it records one)."""
        meta = obj["metadata"]
        timestamp = now()
        event = {
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": meta["namespace"],
                         "uid": str(uuid.uuid4()), "creationTimestamp": timestamp},
            "involvedObject": {"kind": obj["kind"], "apiVersion": obj["apiVersion"], "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"]},
            "reason": reason, "message": message, "type": "Warning", "count": 1,
            "firstTimestamp": timestamp, "lastTimestamp": timestamp,
            "source": {"component": "persistentvolume-controller"},
        }
        self._put(self._type("Event"), event, event="ADDED")

    def _assign_load_balancer(self, rtype: ResourceType, service: Object) -> None:
        if service["spec"].get("type") != "LoadBalancer":
            return
        used = {
            ingress.get("ip")
            for other in self._items(rtype)
            for ingress in other.get("status", {}).get("loadBalancer", {}).get("ingress", [])
        }
        wanted = service["spec"].get("loadBalancerIP")
        pool = [str(a) for spec in self.cluster.lb_pool for a in _address_range(spec)]
        choice = wanted if wanted in pool and wanted not in used else None
        if choice is None and not wanted:
            choice = next((a for a in pool if a not in used), None)
        if choice is None:
            return  # pool exhausted: the Service stays <pending>, as with MetalLB
        service["status"] = {"loadBalancer": {"ingress": [{"ip": choice, "ipMode": "VIP"}]}}
        self._put(rtype, service)

    def _default_class(self) -> str | None:
        for sc in self._items(self._type("StorageClass")):
            if sc.get("metadata", {}).get("annotations", {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
                return str(sc["metadata"]["name"])
        return None

    def _claim_in_use(self, claim: Object) -> bool:
        namespace, name = claim["metadata"]["namespace"], claim["metadata"]["name"]
        return any(name in _claims(pod) for pod in self._items(self._type("Pod"), namespace))

    def _maybe_bind(self, claim: Object, consumer_exists: bool, node: str | None = None) -> bool:
        """Bind ``claim`` if its class exists and its binding mode allows it now; True if bound."""
        if claim.get("status", {}).get("phase") == "Bound":
            return True
        class_name = claim.get("spec", {}).get("storageClassName")
        sc = self.objects.get(self._key(self._type("StorageClass"), None, str(class_name))) if class_name else None
        if sc is None:
            return False
        mode = sc.get("volumeBindingMode", "Immediate")
        if mode == "WaitForFirstConsumer" and not consumer_exists:
            return False
        pvc_type, pv_type = self._type("PersistentVolumeClaim"), self._type("PersistentVolume")
        meta = claim["metadata"]
        annotations = meta.setdefault("annotations", {})
        if mode == "WaitForFirstConsumer" and node:
            annotations[SELECTED_NODE_ANNOTATION] = node
        volume_name = f"pvc-{meta['uid']}"
        request = claim.get("spec", {}).get("resources", {}).get("requests", {}).get("storage", "1Gi")
        access_modes = claim.get("spec", {}).get("accessModes", ["ReadWriteOnce"])
        volume = {
            "metadata": {
                "name": volume_name,
                "annotations": {"pv.kubernetes.io/provisioned-by": sc.get("provisioner", "")},
                "finalizers": ["kubernetes.io/pv-protection"],
            },
            "spec": {
                "accessModes": access_modes,
                "capacity": {"storage": request},
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta["uid"],
                },
                "csi": {"driver": sc.get("provisioner", ""), "volumeHandle": f"lab-{meta['uid']}"},
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                "storageClassName": class_name,
                "volumeMode": claim.get("spec", {}).get("volumeMode", "Filesystem"),
            },
            "status": {"phase": "Bound"},
        }
        volume["metadata"]["creationTimestamp"] = now()
        self._put(pv_type, volume, event="ADDED")
        annotations["pv.kubernetes.io/bind-completed"] = "yes"
        annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
        annotations["volume.kubernetes.io/storage-provisioner"] = sc.get("provisioner", "")
        claim["spec"]["volumeName"] = volume_name
        claim["status"] = {"phase": "Bound", "accessModes": access_modes, "capacity": {"storage": request}}
        self._put(pvc_type, claim)
        return True

    def _ready_workers(self) -> list[str]:
        names = []
        for node in self._items(self._type("Node")):
            labels = node.get("metadata", {}).get("labels", {})
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in node.get("status", {}).get("conditions", [])
            )
            if ready and "node-role.kubernetes.io/control-plane" not in labels:
                names.append(node["metadata"]["name"])
        return names

    def _run_pod(self, rtype: ResourceType, pod: Object) -> None:
        """Schedule and "run" a created pod: bind its claims (WaitForFirstConsumer), then Running."""
        namespace = pod["metadata"]["namespace"]
        pvc_type = self._type("PersistentVolumeClaim")
        workers = self._ready_workers()
        node = pod["spec"].get("nodeName") or (
            workers[sum(map(ord, pod["metadata"]["name"])) % len(workers)] if workers else None
        )
        unbound = []
        for claim_name in _claims(pod):
            claim = self.objects.get(self._key(pvc_type, namespace, claim_name))
            bound = claim is not None and (
                claim.get("status", {}).get("phase") == "Bound"
                or (self.volume_binder and self._maybe_bind(claim, consumer_exists=True, node=node))
            )
            if not bound:
                unbound.append(claim_name)
        timestamp = now()
        if node is None or unbound:
            nodes = len(self._items(self._type("Node")))
            if node is None:
                message = f"0/{nodes} nodes are available: no Ready worker node."
            elif any(self._key(pvc_type, namespace, c) not in self.objects for c in unbound):
                missing = next(c for c in unbound if self._key(pvc_type, namespace, c) not in self.objects)
                message = f'persistentvolumeclaim "{missing}" not found.'
            else:
                message = f"0/{nodes} nodes are available: pod has unbound immediate PersistentVolumeClaims."
            pod["status"] = {
                "phase": "Pending",
                "qosClass": "BestEffort",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                        "lastTransitionTime": timestamp,
                    }
                ],
            }
        else:
            pod["spec"]["nodeName"] = node
            containers = pod["spec"].get("containers", [])
            pod["status"] = {
                "phase": "Running",
                "qosClass": "BestEffort",
                "hostIP": self._node_ip(node),
                "podIP": f"10.244.{len(self.objects) % 250}.{self.resource_version % 250 + 2}",
                "startTime": timestamp,
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": timestamp}
                    for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
                ],
                "containerStatuses": [
                    {
                        "name": c.get("name", "main"),
                        "image": c.get("image", ""),
                        "imageID": "",
                        "ready": True,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": timestamp}},
                    }
                    for c in containers
                ],
            }
        self._put(rtype, pod)
        if pod["status"]["phase"] == "Running" and self._job_of(pod) is not None:
            self._execute(pod)

    def _node_ip(self, node: str) -> str:
        obj = self.objects.get(self._key(self._type("Node"), None, node)) or {}
        for address in obj.get("status", {}).get("addresses", []):
            if address.get("type") == "InternalIP":
                return str(address.get("address"))
        return ""


    # -- job controller --------------------------------------------------------------------------

    def _job_of(self, pod: Object) -> Object | None:
        """The Job owning ``pod`` (its controller ownerReference), if it still exists."""
        for ref in pod.get("metadata", {}).get("ownerReferences") or []:
            if ref.get("kind") == "Job" and ref.get("controller"):
                job = self.objects.get(self._key(self._type("Job"), pod["metadata"].get("namespace"), ref["name"]))
                if job is not None and job["metadata"].get("uid") == ref.get("uid"):
                    return job
        return None

    def _start_job(self, rtype: ResourceType, job: Object) -> None:
        meta, spec = job["metadata"], job.setdefault("spec", {})
        uid = meta["uid"]
        selector = {CONTROLLER_UID_LABELS[1]: uid}
        spec.setdefault("selector", {"matchLabels": selector})
        template_labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
        for label in (*JOB_NAME_LABELS,):
            template_labels[label] = meta["name"]
        for label in CONTROLLER_UID_LABELS:
            template_labels[label] = uid
        job["status"] = {"startTime": now(), "active": 1, "ready": 0, "terminating": 0,
                         "uncountedTerminatedPods": {}}
        self._put(rtype, job)
        self._job_pod(job)
        deadline = spec.get("activeDeadlineSeconds")
        if isinstance(deadline, (int, float)) and deadline > 0:
            timer = threading.Timer(float(deadline), self._job_deadline, (meta["namespace"], meta["name"], uid))
            timer.daemon = True
            timer.start()

    def _job_pod(self, job: Object) -> None:
        """Create the next pod of ``job`` from its template and schedule it."""
        meta = job["metadata"]
        template = copy.deepcopy(job["spec"].get("template", {}))
        pod_meta = template.get("metadata") or {}
        pod_type = self._type("Pod")
        name = f"{meta['name']}-{_suffix()}"
        while self._key(pod_type, meta["namespace"], name) in self.objects:
            name = f"{meta['name']}-{_suffix()}"
        pod = {
            "metadata": {
                **pod_meta,
                "name": name,
                "generateName": f"{meta['name']}-",
                "namespace": meta["namespace"],
                "uid": str(uuid.uuid4()),
                "creationTimestamp": now(),
                "labels": dict(pod_meta.get("labels") or {}),
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": template.get("spec") or {},
        }
        self._default_pod(pod)
        created = self._put(pod_type, pod, event="ADDED")
        self._run_pod(pod_type, created)

    def _finish_job(self, job: Object, succeeded: bool, reason: str, message: str) -> None:
        timestamp = now()
        status = job.setdefault("status", {})
        status["active"] = 0
        status["ready"] = 0
        kind = "Complete" if succeeded else "Failed"
        conditions = [{"type": "SuccessCriteriaMet" if succeeded else "FailureTarget", "status": "True",
                       "reason": reason, "message": message, "lastProbeTime": timestamp,
                       "lastTransitionTime": timestamp},
                      {"type": kind, "status": "True", "reason": reason, "message": message,
                       "lastProbeTime": timestamp, "lastTransitionTime": timestamp}]
        status["conditions"] = conditions
        if succeeded:
            status["completionTime"] = timestamp
        self._put(self._type("Job"), job)

    @staticmethod
    def _job_finished(job: Object) -> bool:
        return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                   for c in job.get("status", {}).get("conditions") or [])

    def _job_deadline(self, namespace: str, name: str, uid: str) -> None:
        """``activeDeadlineSeconds`` passed: fail the Job and stop its active pods."""
        with self.lock:
            job = self.objects.get(self._key(self._type("Job"), namespace, name))
            if job is None or job["metadata"].get("uid") != uid or self._job_finished(job):
                return
            pod_type = self._type("Pod")
            for pod in self._items(pod_type, namespace):
                phase = pod.get("status", {}).get("phase")
                if self._job_of(pod) is not job or phase not in ("Pending", "Running"):
                    continue
                self._kill(pod["metadata"]["uid"])
                pod["status"].update(reason="DeadlineExceeded",
                                     message="Pod was active on the node longer than the specified deadline")
                if phase == "Running":
                    self._terminate(pod, 137, "Error")
                else:  # never started: no container state to report
                    pod["status"]["phase"] = "Failed"
                    self._put(pod_type, pod)
                job["status"]["failed"] = job["status"].get("failed", 0) + 1
            self._finish_job(job, False, "DeadlineExceeded", "Job was active longer than specified deadline")

    def _terminate(self, pod: Object, exit_code: int, reason: str, message: str = "") -> None:
        """Set ``pod`` Succeeded (exit 0) or Failed, its containers terminated with ``exit_code``."""
        timestamp = now()
        status = pod.setdefault("status", {})
        status["phase"] = "Succeeded" if exit_code == 0 else "Failed"
        for condition in status.get("conditions") or []:
            if condition.get("type") in ("Ready", "ContainersReady", "PodReadyToStartContainers"):
                condition.update(status="False", reason="PodCompleted", lastTransitionTime=timestamp)
        started = status.get("startTime", timestamp)
        terminated = {"exitCode": exit_code, "reason": reason, "startedAt": started, "finishedAt": timestamp,
                      "containerID": ""}
        if message:
            terminated["message"] = message
        statuses = status.get("containerStatuses") or [
            {"name": c.get("name", "main"), "image": c.get("image", ""), "imageID": "", "restartCount": 0}
            for c in pod.get("spec", {}).get("containers", [])
        ]
        for container in statuses:
            container.update(ready=False, started=False, state={"terminated": terminated})
        status["containerStatuses"] = statuses
        self._put(self._type("Pod"), pod)

    # -- the lab's kubelet for pods of Jobs --------------------------------------------------------

    def volume_dir(self, volume: Object) -> Path | None:
        """The host directory of a PersistentVolume (created on first use); None without ``volumes_dir``."""
        if self.volumes_dir is None:
            return None
        path = self._volume_path(volume)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _volume_path(self, volume: Object) -> Path:
        assert self.volumes_dir is not None
        base = self.class_dirs.get(str(volume.get("spec", {}).get("storageClassName")), self.volumes_dir)
        return base / volume["metadata"]["name"]

    def log_path(self, pod: Object) -> Path | None:
        if self.volumes_dir is None:
            return None
        meta = pod["metadata"]
        return self.volumes_dir.parent / "pod-logs" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}.log"

    def _mounts(self, pod: Object, container: Object) -> dict[str, str]:
        """mountPath -> host directory of every claim the container mounts."""
        namespace = pod["metadata"]["namespace"]
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in pod.get("spec", {}).get("volumes") or []
            if isinstance(v, dict) and v.get("persistentVolumeClaim", {}).get("claimName")
        }
        mounts = {}
        for mount in container.get("volumeMounts") or []:
            claim = self.objects.get(
                self._key(self._type("PersistentVolumeClaim"), namespace, claims.get(mount.get("name"), ""))
            )
            volume_name = (claim or {}).get("spec", {}).get("volumeName")
            volume = self.objects.get(self._key(self._type("PersistentVolume"), None, str(volume_name)))
            if volume is not None and mount.get("mountPath"):
                directory = self.volume_dir(volume)
                if directory is not None:
                    mounts[str(mount["mountPath"]).rstrip("/") or "/"] = str(directory)
        return mounts

    def _execute(self, pod: Object) -> None:
        """Run the first container's command of a Running pod (once), in a background thread."""
        uid = pod["metadata"]["uid"]
        log = self.log_path(pod)
        containers = pod.get("spec", {}).get("containers") or []
        if log is None or uid in self._started or not containers or self._stopping:
            return
        self._started.add(uid)
        container = containers[0]
        mounts = self._mounts(pod, container)
        argv = []
        for word in [*(container.get("command") or []), *(container.get("args") or [])]:
            word = str(word)
            for mount_path in sorted(mounts, key=len, reverse=True):
                word = word.replace(mount_path, mounts[mount_path])
            argv.append(word)
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOSTNAME": pod["metadata"]["name"]}
        env.update({str(e["name"]): str(e.get("value", "")) for e in container.get("env") or [] if "name" in e})
        workdir = next(iter(mounts.values()), str(self.volumes_dir))
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            try:
                if not argv:
                    raise FileNotFoundError("no command (the lab's kubelet does not run image entrypoints)")
                process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                           cwd=workdir, env=env, start_new_session=True)
            except OSError as exc:
                message = f'exec: "{argv[0] if argv else ""}": {exc.strerror or exc}'
                out.write(f"{message}\n".encode())
                threading.Thread(target=self._exited, args=(pod, START_ERROR_EXIT, "StartError", message),
                                 daemon=True).start()
                return
        self.processes[uid] = process
        threading.Thread(target=self._wait, args=(pod, process), daemon=True, name=f"kubelet-{uid}").start()

    def _wait(self, pod: Object, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        self._exited(pod, 128 - code if code < 0 else code, "Completed" if code == 0 else "Error")

    def _exited(self, pod: Object, exit_code: int, reason: str, message: str = "") -> None:
        """The container of ``pod`` (the stored object at the time it started) ended."""
        with self.lock:
            meta = pod["metadata"]
            self.processes.pop(meta["uid"], None)
            current = self.objects.get(self._key(self._type("Pod"), meta["namespace"], meta["name"]))
            if current is None or current["metadata"].get("uid") != meta["uid"]:
                return  # deleted meanwhile
            if current.get("status", {}).get("phase") not in ("Pending", "Running"):
                return  # already terminated (deadline)
            self._terminate(current, exit_code, reason, message)
            job = self._job_of(current)
            if job is None or self._job_finished(job):
                return
            status = job.setdefault("status", {})
            if exit_code == 0:
                status["succeeded"] = status.get("succeeded", 0) + 1
                self._finish_job(job, True, "CompletionsReached", "Reached expected number of succeeded pods")
                return
            status["failed"] = status.get("failed", 0) + 1
            if status["failed"] > int(job["spec"].get("backoffLimit", 6)):
                self._finish_job(job, False, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
            else:
                self._put(self._type("Job"), job)
                self._job_pod(job)

    def _kill(self, uid: str) -> None:
        process = self.processes.pop(uid, None)
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Kill every process the lab's kubelet runs (the server is stopping) and reap them."""
        with self.lock:
            self._stopping = True
            processes = list(self.processes.values())
            for uid in list(self.processes):
                self._kill(uid)
        deadline = time.monotonic() + timeout
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))

    def pod_log(self, namespace: str, name: str, container: str | None = None) -> str:
        """The log of ``pod`` (its first container), as ``pods/<name>/log`` answers it."""
        with self.lock:
            pod_type = self._type("Pod")
            pod = self.objects.get(self._key(pod_type, namespace, name))
            if pod is None:
                raise not_found(pod_type, name)
            names = [c.get("name", "main") for c in pod.get("spec", {}).get("containers") or []]
            if container and container not in names:
                raise bad_request(f"container {container} is not valid for pod {name}")
            if len(names) > 1 and container is None:
                raise bad_request(f"a container name must be specified for pod {name}, choose one of: {names}")
            container = container or (names[0] if names else "main")
            phase = pod.get("status", {}).get("phase")
            log = self.log_path(pod)
        if phase == "Pending":
            raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
        if log is None or not log.exists():
            return ""
        return log.read_text(errors="replace")


def _claims(pod: Object) -> list[str]:
    return [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod.get("spec", {}).get("volumes", []) or []
        if isinstance(v, dict) and v.get("persistentVolumeClaim", {}).get("claimName")
    ]
