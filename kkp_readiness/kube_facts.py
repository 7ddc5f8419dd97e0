"""Facts read off Kubernetes objects (plain dicts in the API's JSON shape): pure functions.

>>> is_ready({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
True
>>> parse_quantity("16384Mi") / 2**30
16.0
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
ZONE_LABEL = "topology.kubernetes.io/zone"
DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)
_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}
_QUANTITY = re.compile(r"^(?P<number>[+-]?\d+(\.\d+)?)(?P<suffix>[KMGTPE]i|[numkMGTPE]?)$")
VERSIONS_FILE = Path(__file__).with_name("data") / "kubernetes_versions.yaml"
# DaemonSet names of the CNI plugins KubeOne and common installers deploy in kube-system.
CNI_DAEMONSETS = ("cilium", "canal", "calico-node", "kube-flannel-ds", "kube-flannel", "weave-net", "kube-router")


def name(obj: dict[str, Any]) -> str:
    return obj.get("metadata", {}).get("name", "?")


def labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("annotations") or {}


def is_control_plane(node: dict[str, Any]) -> bool:
    return any(label in labels(node) for label in CONTROL_PLANE_LABELS)


def zone(node: dict[str, Any]) -> str | None:
    return labels(node).get(ZONE_LABEL)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in obj.get("status", {}).get("conditions") or [] if c.get("type") == kind), None)


def is_ready(node: dict[str, Any]) -> bool:
    ready = condition(node, "Ready")
    return bool(ready and ready.get("status") == "True")


def parse_quantity(text: str | int | float) -> Decimal:
    """A Kubernetes resource quantity (``4``, ``3800m``, ``16384Mi``, ``16G``) as a number."""
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    return Decimal(match["number"]) * Decimal(_SUFFIXES[match["suffix"]])


def capacity(node: dict[str, Any]) -> tuple[float, float]:
    """(CPU cores, memory GiB) the node's kubelet reports as capacity."""
    raw = node.get("status", {}).get("capacity") or {}
    return float(parse_quantity(raw.get("cpu", "0"))), float(parse_quantity(raw.get("memory", "0")) / 2**30)


def minor_version(git_version: str) -> str:
    """``v1.31.4`` -> ``1.31``."""
    match = re.match(r"^v?(\d+)\.(\d+)", git_version or "")
    if not match:
        raise ValueError(f"{git_version!r} is not a Kubernetes version")
    return f"{match[1]}.{match[2]}"


def minor_tuple(git_version: str) -> tuple[int, int]:
    """``v1.31.4`` -> ``(1, 31)``, for ordering."""
    major, minor = minor_version(git_version).split(".")
    return int(major), int(minor)


def is_default_class(storage_class: dict[str, Any]) -> bool:
    return any(annotations(storage_class).get(a) == "true" for a in DEFAULT_CLASS_ANNOTATIONS)


@cache
def _ssd_rules() -> dict[str, dict[str, Any]]:
    return yaml.safe_load((Path(__file__).with_name("data") / "ssd_rules.yaml").read_text(encoding="utf-8"))["rules"]


def ssd_judgement(storage_class: dict[str, Any], site_values: Sequence[str] = ()) -> tuple[bool | None, str]:
    """(True/False, why) whether the class provisions SSD volumes; (None, why) when no rule knows its provisioner."""
    provisioner = storage_class.get("provisioner", "")
    rule = _ssd_rules().get(provisioner)
    if rule is None:
        return None, f"no SSD rule for provisioner {provisioner!r} (kkp_readiness/data/ssd_rules.yaml)"
    parameters = {k.lower(): v for k, v in (storage_class.get("parameters") or {}).items()}
    value = str(parameters.get(rule["parameter"].lower(), ""))
    described = f"{provisioner} {rule['parameter']}={value or '(not set)'}"
    known = {v.lower() for v in [*rule.get("values", []), *site_values]}
    if value.lower() in known or (rule.get("pattern") and value and re.search(rule["pattern"], value)):
        return True, described
    return False, described


@cache
def supported_minors(kkp_version: str) -> tuple[str, ...] | None:
    """The Kubernetes minors a KKP minor version supports (``None`` when the suite has no data for it)."""
    table = yaml.safe_load(VERSIONS_FILE.read_text(encoding="utf-8"))["kkp"]
    minor = ".".join(kkp_version.split(".")[:2])
    return tuple(table[minor]) if minor in table else None


#: In-tree provisioners and the CSI driver that serves them since CSI migration (the in-tree code is gone).
CSI_MIGRATION = {
    "kubernetes.io/aws-ebs": "ebs.csi.aws.com",
    "kubernetes.io/gce-pd": "pd.csi.storage.gke.io",
    "kubernetes.io/azure-disk": "disk.csi.azure.com",
    "kubernetes.io/azure-file": "file.csi.azure.com",
    "kubernetes.io/cinder": "cinder.csi.openstack.org",
    "kubernetes.io/vsphere-volume": "csi.vsphere.vmware.com",
}
#: The provisioner of statically created local volumes: no dynamic provisioning at all.
NO_PROVISIONER = "kubernetes.io/no-provisioner"
#: The external-provisioner sidecar every CSI controller runs to create volumes.
CSI_PROVISIONER_CONTAINER = "csi-provisioner"


def carries_volumes(node: dict[str, Any]) -> bool:
    """Whether pods with volumes land on the node: a worker that is not cordoned. Workers tainted for
    a purpose (dedicated MLA nodes) count: their pods have volumes too; control-plane nodes do not."""
    return not is_control_plane(node) and not (node.get("spec") or {}).get("unschedulable")


def csi_drivers_on(csi_node: dict[str, Any]) -> set[str]:
    """The CSI drivers the kubelet of a node registered (CSINode ``spec.drivers``)."""
    return {str(d.get("name")) for d in (csi_node.get("spec") or {}).get("drivers") or []}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod template's spec of a Deployment, StatefulSet or DaemonSet."""
    return (((workload.get("spec") or {}).get("template") or {}).get("spec")) or {}


def runs_container(workload: dict[str, Any], container: str) -> bool:
    return any(c.get("name") == container for c in pod_spec(workload).get("containers") or [])


#: The label KubeOne puts on every control-plane and static worker node it provisions.
KUBEONE_OS_LABEL = "v1.kubeone.io/operating-system"


@cache
def kubeone_os_rules() -> tuple[str, tuple[tuple[str, re.Pattern[str]], ...]]:
    """(KubeOne version, ((name, osImage pattern), ...)) from ``data/kubeone_os.yaml``."""
    data = yaml.safe_load((Path(__file__).with_name("data") / "kubeone_os.yaml").read_text(encoding="utf-8"))
    return str(data["kubeone"]), tuple((str(r["name"]), re.compile(r["pattern"])) for r in data["supported"])


def os_image(node: dict[str, Any]) -> str:
    return str(((node.get("status") or {}).get("nodeInfo") or {}).get("osImage") or "")


def kubeone_supports(image: str) -> str | None:
    """The supported-OS entry an ``osImage`` matches, or None."""
    return next((name for name, pattern in kubeone_os_rules()[1] if pattern.search(image)), None)
