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
* scheduler and kubelet: a created Pod whose claims are all bound runs on a Ready worker node.

Everything is deterministic apart from generated names and UIDs, and the store is thread-safe
(one lock; ``changed`` is notified on every event for watchers).
"""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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

    def __init__(self, cluster: Cluster, registry: Registry | None = None) -> None:
        self.cluster = cluster
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
            if self._maybe_bind(obj, consumer_exists=self._claim_in_use(obj)):
                # The scheduler retries pods that waited for this claim.
                pod_type = self._type("Pod")
                for pod in self._items(pod_type, obj["metadata"]["namespace"]):
                    if pod.get("status", {}).get("phase") == "Pending" and obj["metadata"]["name"] in _claims(pod):
                        self._run_pod(pod_type, pod)
        elif rtype.kind == "Pod":
            self._run_pod(rtype, obj)

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

    def _node_ip(self, node: str) -> str:
        obj = self.objects.get(self._key(self._type("Node"), None, node)) or {}
        for address in obj.get("status", {}).get("addresses", []):
            if address.get("type") == "InternalIP":
                return str(address.get("address"))
        return ""


def _claims(pod: Object) -> list[str]:
    return [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod.get("spec", {}).get("volumes", []) or []
        if isinstance(v, dict) and v.get("persistentVolumeClaim", {}).get("claimName")
    ]
