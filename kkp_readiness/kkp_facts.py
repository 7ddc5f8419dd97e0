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
#: What KKP's seed-sync controller labels its copies of the Seed and KubermaticConfiguration with.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
SEED_SYNC_CONTROLLER = "kkp-seed-sync-controller"


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
        """The master's own KubermaticConfiguration: KKP's seed-sync controller copies it into every
        dedicated seed, labelled as its own, so a cluster holding only a copy is not the master."""
        return next((c for c in self.configurations
                     if facts.labels(c).get(MANAGED_BY_LABEL) != SEED_SYNC_CONTROLLER), None)


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
    """The class a PVC's volume comes from, as Kubernetes decides it.

    The DefaultStorageClass admission plugin writes the default class into ``storageClassName`` at
    creation, so a claim without one was created when no class was default: bound, its volume has
    no class (``""``); still pending, Kubernetes (1.28+) gives it the current default later. ``""``
    set explicitly means a static volume without class.
    """
    own = (pvc.get("spec") or {}).get("storageClassName")
    if own is not None:
        return own
    return "" if (pvc.get("status") or {}).get("phase") == "Bound" else default_class


def default_class_name(storage_classes: Iterable[dict[str, Any]]) -> str | None:
    """The default class new claims get: with several marked default, Kubernetes takes the newest."""
    defaults = [c for c in storage_classes if facts.is_default_class(c)]
    newest = max(defaults, key=lambda c: str((c.get("metadata") or {}).get("creationTimestamp") or ""), default=None)
    return facts.name(newest) if newest is not None else None


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
            wrong[net.ref(claim)] = "no class" if not used else str(used)
    return wrong


# ------------------------------------------------------------------ certificates (CERT-101, CERT-102)


def find_cluster_issuer(reader: net.CustomReader, name: str) -> dict[str, Any] | None:
    return next((i for i in net.read_custom(reader, CLUSTER_ISSUER) if facts.name(i) == name), None)


def ready_condition(obj: dict[str, Any] | None) -> tuple[bool, str]:
    """(Ready=True?, "Ready=<status> (<reason>: <message>)") of a cert-manager or similar object."""
    condition = facts.condition(obj or {}, "Ready")
    if condition is None:
        return False, "no Ready condition"
    detail = ": ".join(str(condition[k]) for k in ("reason", "message") if condition.get(k))
    return condition.get("status") == "True", f"Ready={condition.get('status')}" + (f" ({detail})" if detail else "")


def acme_solvers(issuer: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in ((issuer.get("spec") or {}).get("acme") or {}).get("solvers") or [] if isinstance(s, dict)]


def solver_for(issuer: dict[str, Any], domain: str) -> tuple[int, dict[str, Any]] | None:
    """(index, solver) cert-manager uses for ``domain``'s challenge, by its own rule: a selector whose
    ``dnsNames`` lists the name beats the longest matching ``dnsZones``, which beats no selector; the
    first in the list wins a tie; a selector whose names and zones miss the domain does not apply.
    Solvers selected by ``matchLabels`` are left out: the labels of KKP's Certificate are not known.

    >>> solver_for({"spec": {"acme": {"solvers": [{"http01": {}}, {"selector": {"dnsZones": ["lab"]},
    ...             "dns01": {"rfc2136": {}}}]}}}, "kkp.lab")[0]
    1
    """
    wanted = domain.lower().rstrip(".")
    best: tuple[tuple[int, int], int, dict[str, Any]] | None = None
    for index, solver in enumerate(acme_solvers(issuer)):
        selector = solver.get("selector") or {}
        if selector.get("matchLabels"):
            continue
        names = [str(n).lower().rstrip(".") for n in selector.get("dnsNames") or []]
        zones = [str(z).lower().rstrip(".") for z in selector.get("dnsZones") or []]
        matching = [z for z in zones if wanted == z or wanted.endswith(f".{z}")]
        if wanted in names:
            rank = (2, 0)
        elif matching:
            rank = (1, max(len(z) for z in matching))
        elif names or zones:
            continue
        else:
            rank = (0, 0)
        if best is None or rank > best[0]:
            best = (rank, index, solver)
    return (best[1], best[2]) if best else None


def describe_solver(index: int, solver: dict[str, Any]) -> str:
    """``solvers[1] dns01/rfc2136 (dnsZones kkp.lab)``: type, provider and selector, no configuration
    (a solver's configuration may hold credentials)."""
    kind = next((k for k in ("dns01", "http01") if k in solver), "unknown")
    provider = next(iter(solver.get(kind) or {}), "") if isinstance(solver.get(kind), dict) else ""
    selector = solver.get("selector") or {}
    scope = "; ".join(f"{key} {', '.join(map(str, selector[key]))}" for key in ("dnsNames", "dnsZones")
                      if selector.get(key))
    return f"solvers[{index}] {kind}" + (f"/{provider}" if provider else "") + (f" ({scope})" if scope else "")


# ------------------------------------------------------------------ MLA placement (PERF-009)


def parse_taint(text: str) -> dict[str, str]:
    """``key[=value]:Effect`` as a taint object."""
    key_value, _, effect = text.rpartition(":")
    key, _, value = key_value.partition("=")
    return {"key": key, "value": value, "effect": effect}


def has_taint(node: dict[str, Any], taint: Mapping[str, str]) -> bool:
    return any(t.get("key") == taint["key"] and (t.get("value") or "") == taint["value"]
               and t.get("effect") == taint["effect"] for t in (node.get("spec") or {}).get("taints") or [])


def tolerates(spec: Mapping[str, Any], taint: Mapping[str, str]) -> bool:
    """Whether a pod spec's tolerations admit the taint (Kubernetes' matching rules)."""
    for toleration in spec.get("tolerations") or []:
        if toleration.get("effect") not in (None, "", taint["effect"]):
            continue
        if toleration.get("operator") == "Exists":
            if not toleration.get("key") or toleration.get("key") == taint["key"]:
                return True
        elif toleration.get("key") == taint["key"] and (toleration.get("value") or "") == taint["value"]:
            return True
    return False


def bound_to_labels(spec: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a pod spec may only run on nodes with ``labels``: each label demanded by the
    nodeSelector or by every term of a required node affinity (``In`` exactly that value)."""
    selector = spec.get("nodeSelector") or {}
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []

    def demands(term: Mapping[str, Any], key: str, value: str) -> bool:
        return any(e.get("key") == key and e.get("operator") == "In" and list(e.get("values") or []) == [value]
                   for e in term.get("matchExpressions") or [])

    return all(selector.get(k) == v or (bool(terms) and all(demands(t, k, v) for t in terms))
               for k, v in labels.items())
