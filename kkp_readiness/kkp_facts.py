"""Facts about what the KKP installer put into a seed: its objects, volumes, issuers and MLA placement.

Pure functions over plain dicts in the API's JSON shape (except :func:`kkp_objects`, which reads
through ``network_facts.read_custom``). Names and namespaces are KKP's own, as its charts and
operator create them (KKP 2.26 to 2.28); where releases differ, every known form is listed.

Before KKP is installed, a seed holds none of these objects: checks of things the installer
deploys are then *not yet applicable* (skip, with the reason), not failed.

>>> in_cluster_service("http://minio.minio.svc.cluster.local:9000")
('minio', 'minio')
>>> parse_taint("lab.kkp/role=mla:NoSchedule")
{'key': 'lab.kkp/role', 'value': 'mla', 'effect': 'NoSchedule'}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kkp_readiness import kube_facts as facts
from kkp_readiness import network_facts as net

CLUSTER_ISSUER = net.CustomKind("ClusterIssuer", "cert-manager.io", ("v1",), "clusterissuers")
#: Custom resources read here besides those of network_facts (for the offline snapshot's coverage).
CUSTOM_KINDS = (CLUSTER_ISSUER,)

#: cert-manager's workloads, all needed: the controller issues, the webhook admits, the cainjector injects.
CERT_MANAGER_NAMESPACE = "cert-manager"
CERT_MANAGER_DEPLOYMENTS = ("cert-manager", "cert-manager-webhook", "cert-manager-cainjector")

#: Namespaces of the master/seed monitoring and logging stacks (seed-mla) and of the user-cluster MLA stack.
SEED_MLA_NAMESPACES = ("monitoring", "logging")
USER_MLA_NAMESPACE = "mla"
#: KKP runs each user cluster's control plane in namespace cluster-<id>; etcd is the StatefulSet etcd.
USER_CLUSTER_NAMESPACE = re.compile(r"^cluster-[a-z0-9]+$")
#: KubermaticConfiguration spec.caBundle's default ConfigMap, and the key KKP reads in it.
CA_BUNDLE_DEFAULT = "ca-bundle"
CA_BUNDLE_KEY = "ca-bundle.pem"
KKP_NAMESPACE = "kubermatic"


@dataclass(frozen=True)
class KkpObjects:
    """KKP's Seed objects and KubermaticConfigurations in one cluster (both empty before installation)."""

    seeds: list[dict[str, Any]]
    configurations: list[dict[str, Any]]

    @property
    def installed(self) -> bool:
        return bool(self.seeds or self.configurations)

    def seed(self, name: str) -> dict[str, Any] | None:
        return net.find_seed(self.seeds, name)

    @property
    def configuration(self) -> dict[str, Any] | None:
        return self.configurations[0] if self.configurations else None


def kkp_objects(reader: net.CustomReader) -> KkpObjects:
    return KkpObjects(net.read_custom(reader, net.KKP_SEED), net.read_custom(reader, net.KKP_CONFIGURATION))


def not_installed_reason(seed: str, what: str) -> str:
    """The skip reason of a check whose subject the KKP installer deploys."""
    return (f"KKP is not installed in seed {seed} yet (no Seed or KubermaticConfiguration object): {what} "
            "comes with the installation and is checked once it has run")


# ------------------------------------------------------------------ backups (STORAGE-007)


def backup_destinations(seed: dict[str, Any] | None) -> tuple[dict[str, dict[str, Any]], str | None]:
    """(destinations by name, default destination) of a Seed's ``spec.etcdBackupRestore``."""
    backup = ((seed or {}).get("spec") or {}).get("etcdBackupRestore") or {}
    destinations = backup.get("destinations") or {}
    return ({str(k): v or {} for k, v in destinations.items()} if isinstance(destinations, dict) else {},
            backup.get("defaultDestination"))


def destination_problems(name: str, destination: Mapping[str, Any]) -> list[str]:
    """What a destination lacks to be usable: endpoint, bucket, credentials Secret reference."""
    credentials = destination.get("credentials") or {}
    missing = [field for field, present in (("endpoint", destination.get("endpoint")),
                                            ("bucketName", destination.get("bucketName")),
                                            ("credentials.name", credentials.get("name")),
                                            ("credentials.namespace", credentials.get("namespace")))
               if not present]
    return [f"destination {name} has no {', '.join(missing)}"] if missing else []


def in_cluster_service(endpoint: str) -> tuple[str, str] | None:
    """(namespace, service) when an endpoint URL names a Service of the cluster itself, else None."""
    host = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname or ""
    match = re.match(r"^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.cluster\.local)?\.?$", host)
    return (match[2], match[1]) if match else None


# ------------------------------------------------------------------ volumes (STORAGE-008, STORAGE-009)


def claim_class(pvc: dict[str, Any], default_class: str | None) -> str | None:
    """The class a PVC's volume comes from: its own ``storageClassName``, else the default class
    (what the admission plugin fills in); ``""`` means explicitly none (a pre-bound static volume)."""
    own = (pvc.get("spec") or {}).get("storageClassName")
    return default_class if own is None else own


def default_class_name(storage_classes: Iterable[dict[str, Any]]) -> str | None:
    return next((facts.name(c) for c in storage_classes if facts.is_default_class(c)), None)


def user_cluster_etcd_claims(pvcs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The PVCs of KKP's user-cluster etcd StatefulSets (``cluster-<id>/data-etcd-<n>``, label app=etcd)."""
    return [p for p in pvcs
            if USER_CLUSTER_NAMESPACE.match((p.get("metadata") or {}).get("namespace", ""))
            and facts.labels(p).get("app") == "etcd"]


def namespace_claims(pvcs: Iterable[dict[str, Any]], namespaces: Sequence[str]) -> list[dict[str, Any]]:
    return [p for p in pvcs if (p.get("metadata") or {}).get("namespace") in namespaces]


def wrong_class_claims(claims: Iterable[dict[str, Any]], allowed: set[str], default_class: str | None
                       ) -> dict[str, str]:
    """``namespace/name -> class`` of the claims whose volume is not of an allowed class."""
    wrong = {}
    for claim in claims:
        used = claim_class(claim, default_class)
        if used not in allowed:
            wrong[net.ref(claim)] = "no class (static volume)" if used == "" else str(used or "no class")
    return wrong


# ------------------------------------------------------------------ certificates (CERT-101, CERT-102)


def ready_condition(obj: dict[str, Any] | None) -> tuple[bool, str]:
    """(Ready=True?, "Ready=<status> (<reason>: <message>)") of a cert-manager or similar object."""
    condition = facts.condition(obj or {}, "Ready")
    if condition is None:
        return False, "no Ready condition"
    detail = ": ".join(str(condition[k]) for k in ("reason", "message") if condition.get(k))
    return condition.get("status") == "True", f"Ready={condition.get('status')}" + (f" ({detail})" if detail else "")


def dns01_solvers_for(issuer: dict[str, Any], domain: str) -> list[str]:
    """The DNS01 solvers of an ACME issuer that may solve challenges for ``domain`` (by their selector)."""
    found = []
    for index, solver in enumerate(((issuer.get("spec") or {}).get("acme") or {}).get("solvers") or []):
        if not isinstance(solver, dict) or "dns01" not in solver:
            continue
        selector = solver.get("selector") or {}
        zones = selector.get("dnsZones") or []
        names = selector.get("dnsNames") or []
        if selector.get("matchLabels") and not (zones or names):
            continue  # applies to labelled Certificates only: cannot be sure it covers the KKP certificate
        if (not zones and not names) or domain in names or any(domain == z or domain.endswith(f".{z}") for z in zones):
            provider = next((k for k in solver["dns01"] if k not in ("cnameStrategy",)), "?")
            found.append(f"solvers[{index}] dns01/{provider}")
    return found


def solver_kinds(issuer: dict[str, Any]) -> list[str]:
    solvers = ((issuer.get("spec") or {}).get("acme") or {}).get("solvers") or []
    return [next((k for k in ("dns01", "http01") if k in s), "?") for s in solvers if isinstance(s, dict)] or ["none"]


# ------------------------------------------------------------------ MLA placement (PERF-009)


def parse_taint(text: str) -> dict[str, str]:
    """``key[=value]:Effect`` as a taint object."""
    key_value, _, effect = text.rpartition(":")
    key, _, value = key_value.partition("=")
    return {"key": key, "value": value, "effect": effect}


def has_taint(node: dict[str, Any], taint: Mapping[str, str]) -> bool:
    return any(t.get("key") == taint["key"] and (t.get("value") or "") == taint["value"]
               and t.get("effect") == taint["effect"] for t in (node.get("spec") or {}).get("taints") or [])


def tolerates(pod_spec: Mapping[str, Any], taint: Mapping[str, str]) -> bool:
    """Whether a pod spec's tolerations admit the taint (Kubernetes' matching rules)."""
    for toleration in pod_spec.get("tolerations") or []:
        if toleration.get("effect") not in (None, "", taint["effect"]):
            continue
        if toleration.get("operator") == "Exists":
            if not toleration.get("key") or toleration.get("key") == taint["key"]:
                return True
        elif toleration.get("key") == taint["key"] and (toleration.get("value") or "") == taint["value"]:
            return True
    return False


def bound_to_labels(pod_spec: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a pod spec may only run on nodes with ``labels``: by nodeSelector, or by a required
    node affinity each of whose terms demands them (``In`` with exactly the value, or equality)."""
    selector = pod_spec.get("nodeSelector") or {}
    if all(selector.get(k) == v for k, v in labels.items()):
        return True
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []

    def demands(term: Mapping[str, Any], key: str, value: str) -> bool:
        return any(e.get("key") == key and e.get("operator") == "In" and list(e.get("values") or []) == [value]
                   for e in term.get("matchExpressions") or [])

    return bool(terms) and all(all(demands(t, k, v) for k, v in labels.items()) for t in terms)


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return (((workload.get("spec") or {}).get("template") or {}).get("spec")) or {}
