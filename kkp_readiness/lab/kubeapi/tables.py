"""Server-side printing: ``meta.k8s.io/v1`` ``Table`` responses, as ``kubectl get`` asks for them.

``kubectl get`` sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io, application/json``
and prints the columns the server returns. Nodes, pods, namespaces, services, storage classes,
PVCs and PVs get kubectl's usual columns; every other kind gets Name and Age, as a real server
does for custom resources without printer columns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from kkp_readiness.lab.kubeapi.resources import ResourceType

Object = dict[str, Any]
Column = tuple[str, str, Callable[[Object], Any]]


def human_age(timestamp: str | None, now: dt.datetime | None = None) -> str:
    """kubectl's age format: 45s, 3m12s, 47m, 5h3m, 20h, 3d4h, 12d, 2y100d, or <unknown>."""
    if not timestamp:
        return "<unknown>"
    try:
        then = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    seconds = int(((now or dt.datetime.now(dt.UTC)) - then).total_seconds())
    if seconds < 0:
        return "<invalid>"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y{days % 365}d"


def _name(obj: Object) -> str:
    return str(obj["metadata"]["name"])


def _age(obj: Object) -> str:
    return human_age(obj["metadata"].get("creationTimestamp"))


def _condition(obj: Object, kind: str) -> str | None:
    for condition in obj.get("status", {}).get("conditions", []) or []:
        if condition.get("type") == kind:
            return str(condition.get("status"))
    return None


def _node_status(node: Object) -> str:
    ready = _condition(node, "Ready")
    status = "Ready" if ready == "True" else "NotReady" if ready == "False" else "Unknown"
    if node.get("spec", {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _node_roles(node: Object) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix) :] for k in node["metadata"].get("labels", {}) if k.startswith(prefix))
    return ",".join(roles) or "<none>"


def _node_address(kind: str) -> Callable[[Object], str]:
    def value(node: Object) -> str:
        for address in node.get("status", {}).get("addresses", []):
            if address.get("type") == kind:
                return str(address.get("address"))
        return "<none>"

    return value


def _pod_ready(pod: Object) -> str:
    statuses = pod.get("status", {}).get("containerStatuses", []) or []
    total = len(pod.get("spec", {}).get("containers", []) or statuses)
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _restarts(pod: Object) -> int:
    return sum(int(s.get("restartCount", 0)) for s in pod.get("status", {}).get("containerStatuses", []) or [])


def _external_ip(service: Object) -> str:
    spec = service.get("spec", {})
    ingress = service.get("status", {}).get("loadBalancer", {}).get("ingress", [])
    if spec.get("type") == "LoadBalancer":
        return ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or "<pending>"
    return ",".join(spec.get("externalIPs", [])) or "<none>"


def _ports(service: Object) -> str:
    ports = []
    for port in service.get("spec", {}).get("ports", []):
        node_port = f":{port['nodePort']}" if port.get("nodePort") else ""
        ports.append(f"{port.get('port')}{node_port}/{port.get('protocol', 'TCP')}")
    return ",".join(ports) or "<none>"


def _sc_name(sc: Object) -> str:
    default = sc["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    return _name(sc) + (" (default)" if default else "")


COLUMNS: dict[str, list[Column]] = {
    "Node": [
        ("Name", "string", _name),
        ("Status", "string", _node_status),
        ("Roles", "string", _node_roles),
        ("Age", "string", _age),
        ("Version", "string", lambda n: n.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")),
    ],
    "Pod": [
        ("Name", "string", _name),
        ("Ready", "string", _pod_ready),
        ("Status", "string", lambda p: p.get("status", {}).get("phase", "Unknown")),
        ("Restarts", "string", _restarts),
        ("Age", "string", _age),
    ],
    "Namespace": [
        ("Name", "string", _name),
        ("Status", "string", lambda n: n.get("status", {}).get("phase", "")),
        ("Age", "string", _age),
    ],
    "Service": [
        ("Name", "string", _name),
        ("Type", "string", lambda s: s.get("spec", {}).get("type", "ClusterIP")),
        ("Cluster-IP", "string", lambda s: s.get("spec", {}).get("clusterIP", "<none>")),
        ("External-IP", "string", _external_ip),
        ("Port(s)", "string", _ports),
        ("Age", "string", _age),
    ],
    "StorageClass": [
        ("Name", "string", _sc_name),
        ("Provisioner", "string", lambda s: s.get("provisioner", "")),
        ("ReclaimPolicy", "string", lambda s: s.get("reclaimPolicy", "Delete")),
        ("VolumeBindingMode", "string", lambda s: s.get("volumeBindingMode", "Immediate")),
        ("AllowVolumeExpansion", "string", lambda s: str(bool(s.get("allowVolumeExpansion", False))).lower()),
        ("Age", "string", _age),
    ],
    "PersistentVolumeClaim": [
        ("Name", "string", _name),
        ("Status", "string", lambda c: c.get("status", {}).get("phase", "")),
        ("Volume", "string", lambda c: c.get("spec", {}).get("volumeName", "")),
        ("Capacity", "string", lambda c: c.get("status", {}).get("capacity", {}).get("storage", "")),
        ("Access Modes", "string", lambda c: ",".join(c.get("status", {}).get("accessModes", []))),
        ("StorageClass", "string", lambda c: c.get("spec", {}).get("storageClassName", "")),
        ("Age", "string", _age),
    ],
}
#: Extra columns shown by ``kubectl get -o wide`` (priority 1).
WIDE: dict[str, list[Column]] = {
    "Node": [
        ("Internal-IP", "string", _node_address("InternalIP")),
        ("External-IP", "string", _node_address("ExternalIP")),
        ("OS-Image", "string", lambda n: n.get("status", {}).get("nodeInfo", {}).get("osImage", "")),
        ("Kernel-Version", "string", lambda n: n.get("status", {}).get("nodeInfo", {}).get("kernelVersion", "")),
        (
            "Container-Runtime",
            "string",
            lambda n: n.get("status", {}).get("nodeInfo", {}).get("containerRuntimeVersion", ""),
        ),
    ],
    "Pod": [
        ("IP", "string", lambda p: p.get("status", {}).get("podIP", "<none>")),
        ("Node", "string", lambda p: p.get("spec", {}).get("nodeName", "<none>")),
    ],
}
DEFAULT_COLUMNS: list[Column] = [("Name", "string", _name), ("Age", "string", _age)]


def table(rtype: ResourceType, items: list[Object], resource_version: str, include_object: str = "Metadata") -> Object:
    """A ``Table`` of ``items``; each row carries the object's metadata (or the object itself)."""
    columns = [(*c, 0) for c in COLUMNS.get(rtype.kind, DEFAULT_COLUMNS)]
    columns += [(*c, 1) for c in WIDE.get(rtype.kind, [])]
    rows = []
    for item in items:
        row: Object = {"cells": [value(item) for _, _, value, _ in columns]}
        if include_object == "Object":
            row["object"] = item
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": item["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": name,
                "type": kind,
                "format": "name" if name == "Name" else "",
                "description": name,
                "priority": priority,
            }
            for name, kind, _, priority in columns
        ],
        "rows": rows,
    }


def wants_table(accept: str | None) -> bool:
    """True if the client prefers a meta.k8s.io/v1 Table (its first acceptable type is one)."""
    if not accept:
        return False
    first = accept.split(",")[0]
    params = {p.strip() for p in first.split(";")[1:]}
    return "as=Table" in params and "g=meta.k8s.io" in params and "v=v1" in params
