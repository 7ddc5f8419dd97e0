"""What the LB and NET checks look for in a cluster, as data, and the facts they read off objects.

Everything here is pure (plain dicts in the API's JSON shape in, plain data out) except
:func:`read_custom`, which only calls a reader's ``list_custom``. The tables say, per load-balancer
mode, which workloads implement it and which custom resources announce its addresses, so that a
new implementation is one table row rather than a new branch in a check.

>>> [c.what for c in IMPLEMENTATIONS["metallb-bgp"].components]
['MetalLB controller', 'MetalLB speaker']
>>> workload_ready({"kind": "DaemonSet", "status": {"desiredNumberScheduled": 6, "numberReady": 6}})
True
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# ------------------------------------------------------------------ custom resources


@dataclass(frozen=True)
class CustomKind:
    """A custom resource the checks read; ``versions`` newest first, all of them are asked."""

    kind: str
    group: str
    versions: tuple[str, ...]
    plural: str

    def __str__(self) -> str:
        return f"{self.kind} ({self.plural}.{self.group})"


IP_ADDRESS_POOL = CustomKind("IPAddressPool", "metallb.io", ("v1beta1",), "ipaddresspools")
L2_ADVERTISEMENT = CustomKind("L2Advertisement", "metallb.io", ("v1beta1",), "l2advertisements")
BGP_ADVERTISEMENT = CustomKind("BGPAdvertisement", "metallb.io", ("v1beta1",), "bgpadvertisements")
BGP_PEER = CustomKind("BGPPeer", "metallb.io", ("v1beta2", "v1beta1"), "bgppeers")
CILIUM_POOL = CustomKind("CiliumLoadBalancerIPPool", "cilium.io", ("v2", "v2alpha1"), "ciliumloadbalancerippools")
CILIUM_L2_POLICY = CustomKind("CiliumL2AnnouncementPolicy", "cilium.io", ("v2alpha1",), "ciliuml2announcementpolicies")
CILIUM_BGP_PEERING = CustomKind("CiliumBGPPeeringPolicy", "cilium.io", ("v2alpha1",), "ciliumbgppeeringpolicies")
CILIUM_BGP_CLUSTER = CustomKind("CiliumBGPClusterConfig", "cilium.io", ("v2", "v2alpha1"), "ciliumbgpclusterconfigs")
CILIUM_BGP_ADVERTISEMENT = CustomKind("CiliumBGPAdvertisement", "cilium.io", ("v2", "v2alpha1"),
                                      "ciliumbgpadvertisements")
KKP_SEED = CustomKind("Seed", "kubermatic.k8c.io", ("v1",), "seeds")
KKP_CONFIGURATION = CustomKind("KubermaticConfiguration", "kubermatic.k8c.io", ("v1",), "kubermaticconfigurations")
KKP_CLUSTER = CustomKind("Cluster", "kubermatic.k8c.io", ("v1",), "clusters")
KKP_CLUSTER_TEMPLATE = CustomKind("ClusterTemplate", "kubermatic.k8c.io", ("v1",), "clustertemplates")
#: Every custom resource the LB and NET checks may read, each in every version listed: what an
#: offline snapshot has to hold for them (``(group, version, plural)`` via :func:`custom_resources`).
CUSTOM_KINDS = (IP_ADDRESS_POOL, L2_ADVERTISEMENT, BGP_ADVERTISEMENT, BGP_PEER, CILIUM_POOL, CILIUM_L2_POLICY,
                CILIUM_BGP_PEERING, CILIUM_BGP_CLUSTER, CILIUM_BGP_ADVERTISEMENT, KKP_SEED, KKP_CONFIGURATION,
                KKP_CLUSTER, KKP_CLUSTER_TEMPLATE)


def custom_resources() -> list[tuple[str, str, str]]:
    """(group, version, plural) of every custom resource version the LB and NET checks list."""
    return [(kind.group, version, kind.plural) for kind in CUSTOM_KINDS for version in kind.versions]


class CustomReader(Protocol):
    def list_custom(self, group: str, version: str, plural: str, namespace: str | None = None) -> list[dict]: ...


def read_custom(reader: CustomReader, kind: CustomKind) -> list[dict[str, Any]]:
    """Every object of ``kind`` in every namespace, asked in each served version, each object once.

    A version the server does not serve answers ``[]`` (see ``ClusterReader.list_custom``).
    """
    seen: dict[tuple[str | None, str], dict[str, Any]] = {}
    for version in kind.versions:
        for obj in reader.list_custom(kind.group, version, kind.plural):
            meta = obj.get("metadata") or {}
            seen.setdefault((meta.get("namespace"), meta.get("name", "?")), obj)
    return list(seen.values())


def ref(obj: dict[str, Any]) -> str:
    """``namespace/name`` (or ``name`` for cluster-scoped objects)."""
    meta = obj.get("metadata") or {}
    return f"{meta['namespace']}/{meta.get('name', '?')}" if meta.get("namespace") else meta.get("name", "?")


# ------------------------------------------------------------------ implementations (LB-001)


@dataclass(frozen=True)
class Component:
    """One workload of a load-balancer implementation, found by its labels or its name."""

    what: str
    kinds: tuple[str, ...]  # "deployments", "daemonsets"
    #: Any of these label sets (all labels of one set present with these values) identifies it.
    labels: tuple[dict[str, str], ...] = ()
    #: ...or one of these object names.
    names: tuple[str, ...] = ()
    #: ...or a name containing this text (cloud controller managers are named per provider).
    name_contains: str | None = None

    def matches(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        name = meta.get("name", "")
        return (any(all(labels.get(k) == v for k, v in wanted.items()) for wanted in self.labels)
                or name in self.names
                or bool(self.name_contains and self.name_contains in name))


@dataclass(frozen=True)
class Implementation:
    """What serves Services of type LoadBalancer in one mode: workloads, and objects that must exist."""

    name: str
    components: tuple[Component, ...]
    #: Custom objects without which the implementation hands out nothing (Cilium LB-IPAM is dormant
    #: until the first pool exists).
    needs_objects: tuple[CustomKind, ...] = ()
    pool_kinds: tuple[CustomKind, ...] = ()


_METALLB = Implementation(
    "MetalLB",
    (
        Component("MetalLB controller", ("deployments",),
                  labels=({"app": "metallb", "component": "controller"},
                          {"app.kubernetes.io/name": "metallb", "app.kubernetes.io/component": "controller"}),
                  names=("metallb-controller",)),
        Component("MetalLB speaker", ("daemonsets",),
                  labels=({"app": "metallb", "component": "speaker"},
                          {"app.kubernetes.io/name": "metallb", "app.kubernetes.io/component": "speaker"}),
                  names=("metallb-speaker",)),
    ),
    pool_kinds=(IP_ADDRESS_POOL,),
)
_CILIUM = Implementation(
    "Cilium LB-IPAM",
    (
        Component("Cilium operator (runs LB-IPAM)", ("deployments",),
                  labels=({"io.cilium/app": "operator"},), names=("cilium-operator",)),
        Component("Cilium agent (announces the addresses)", ("daemonsets",),
                  labels=({"k8s-app": "cilium"},), names=("cilium",)),
    ),
    needs_objects=(CILIUM_POOL,),
    pool_kinds=(CILIUM_POOL,),
)
#: Load-balancer mode of the profile -> what implements it in the cluster.
IMPLEMENTATIONS: dict[str, Implementation] = {
    "metallb-l2": _METALLB,
    "metallb-bgp": _METALLB,
    "cilium-l2": _CILIUM,
    "cilium-bgp": _CILIUM,
    "kubelb": Implementation("KubeLB", (
        Component("KubeLB cloud controller manager", ("deployments",),
                  labels=({"app.kubernetes.io/name": "kubelb-ccm"},), names=("kubelb-ccm",)),
    )),
    "cloud": Implementation("the cloud's controller manager", (
        Component("cloud controller manager", ("deployments", "daemonsets"),
                  labels=({"component": "cloud-controller-manager"},), name_contains="cloud-controller-manager"),
    )),
}


def workload_ready(obj: dict[str, Any]) -> bool:
    """A Deployment with all its wanted replicas ready, a DaemonSet ready on every node it is scheduled to."""
    status = obj.get("status") or {}
    if obj.get("kind") == "DaemonSet" or "desiredNumberScheduled" in status:
        desired = int(status.get("desiredNumberScheduled") or 0)
        return desired > 0 and int(status.get("numberReady") or 0) >= desired
    wanted = (obj.get("spec") or {}).get("replicas")
    wanted = int(status.get("replicas") or 1) if wanted is None else int(wanted)
    return wanted > 0 and int(status.get("readyReplicas") or 0) >= wanted


class WorkloadReader(Protocol):
    def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None) -> list[dict]: ...


def workloads(reader: WorkloadReader, namespace: str | None = None,
              kinds: Sequence[str] = ("deployments", "statefulsets")) -> list[dict[str, Any]]:
    """The Deployments and StatefulSets (or ``kinds``) of a namespace, or of the whole cluster."""
    return [w for kind in kinds for w in reader.list(kind, namespace=namespace)]


def describe_workload(obj: dict[str, Any]) -> str:
    """``Deployment minio/minio 1/1 ready``."""
    return f"{obj.get('kind', '')} {ref(obj)} {workload_summary(obj)}"


def workload_summary(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    if obj.get("kind") == "DaemonSet" or "desiredNumberScheduled" in status:
        return f"{status.get('numberReady', 0)}/{status.get('desiredNumberScheduled', 0)} ready"
    wanted = (obj.get("spec") or {}).get("replicas", status.get("replicas", 1))
    return f"{status.get('readyReplicas', 0)}/{wanted} ready"


@dataclass
class ComponentState:
    component: Component
    found: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return any(workload_ready(o) for o in self.found)

    def describe(self) -> str:
        if not self.found:
            return f"{self.component.what}: not deployed"
        return f"{self.component.what}: " + ", ".join(f"{o.get('kind', '')} {ref(o)} {workload_summary(o)}"
                                                     for o in self.found)


def find_components(implementation: Implementation, workloads: dict[str, list[dict[str, Any]]]
                    ) -> list[ComponentState]:
    """Each component of ``implementation`` with the workloads (by resource: "deployments", ...) that are it."""
    states = []
    for component in implementation.components:
        found = [o for kind in component.kinds for o in workloads.get(kind, []) if component.matches(o)]
        states.append(ComponentState(component, found))
    return states


# ------------------------------------------------------------------ announcement (LB-004, LB-005)


def family(mode: str) -> str | None:
    """``metallb``/``cilium`` for the pool-based modes, None for cloud, kubelb and other."""
    return mode.split("-", 1)[0] if mode.startswith(("metallb-", "cilium-")) else None


#: Per family: the objects that announce by Layer 2 and those that announce by BGP.
ANNOUNCEMENTS: dict[str, dict[str, tuple[CustomKind, ...]]] = {
    "metallb": {"l2": (L2_ADVERTISEMENT,), "bgp": (BGP_ADVERTISEMENT,)},
    "cilium": {"l2": (CILIUM_L2_POLICY,), "bgp": (CILIUM_BGP_PEERING, CILIUM_BGP_CLUSTER)},
}


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A Kubernetes LabelSelector (matchLabels and matchExpressions) against ``labels``."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def advertised_pools(advertisement: dict[str, Any], pools: Sequence[dict[str, Any]]) -> list[str]:
    """Names of the MetalLB pools an L2Advertisement/BGPAdvertisement announces.

    No ``ipAddressPools`` and no ``ipAddressPoolSelectors``: every pool, as MetalLB reads it.
    """
    spec = advertisement.get("spec") or {}
    names = spec.get("ipAddressPools") or []
    selectors = spec.get("ipAddressPoolSelectors") or []
    namespace = (advertisement.get("metadata") or {}).get("namespace")
    same_namespace = [p for p in pools if namespace is None or (p.get("metadata") or {}).get("namespace") == namespace]
    if not names and not selectors:
        return [p["metadata"]["name"] for p in same_namespace]
    return [p["metadata"]["name"] for p in same_namespace
            if p["metadata"]["name"] in names
            or any(selector_matches(s, p["metadata"].get("labels") or {}) for s in selectors)]


def _address(text: Any) -> str:
    """``10.0.0.1/32`` (Cilium writes peers as prefixes) -> ``10.0.0.1``."""
    value = str(text or "").split("/", 1)[0].strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def bgp_peers(objects: Iterable[dict[str, Any]]) -> list[tuple[str, int | None, str]]:
    """(peer address, peer ASN, defining object) of MetalLB BGPPeers and Cilium BGP configurations."""
    peers = []
    for obj in objects:
        spec = obj.get("spec") or {}
        source = f"{obj.get('kind', '')} {ref(obj)}"
        if obj.get("kind") == "BGPPeer":
            peers.append((_address(spec.get("peerAddress")), _asn(spec.get("peerASN")), source))
        for router in spec.get("virtualRouters") or []:  # CiliumBGPPeeringPolicy
            for neighbor in router.get("neighbors") or []:
                peers.append((_address(neighbor.get("peerAddress")), _asn(neighbor.get("peerASN")), source))
        for instance in spec.get("bgpInstances") or []:  # CiliumBGPClusterConfig
            for peer in instance.get("peers") or []:
                peers.append((_address(peer.get("peerAddress")), _asn(peer.get("peerASN")), source))
    return peers


def _asn(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def cilium_advertises_lb_addresses(objects: Iterable[dict[str, Any]]) -> bool:
    """Whether a Cilium BGP configuration advertises the LoadBalancer addresses of Services.

    BGP control plane v1: a virtual router with a ``serviceSelector``; v2: a CiliumBGPAdvertisement
    of type Service whose ``service.addresses`` include ``LoadBalancerIP``. Which pools the selected
    Services draw from is not judged.
    """
    for obj in objects:
        spec = obj.get("spec") or {}
        if any(router.get("serviceSelector") is not None for router in spec.get("virtualRouters") or []):
            return True
        for advert in spec.get("advertisements") or []:
            if advert.get("advertisementType") == "Service" and \
                    "LoadBalancerIP" in ((advert.get("service") or {}).get("addresses") or []):
                return True
    return False


# ------------------------------------------------------------------ Services (LB-006, LB-007, NET-004)

#: (namespace, name) of the NGINX ingress controller's Service: KKP's chart, then upstream ingress-nginx.
INGRESS_SERVICES = (
    ("nginx-ingress-controller", "nginx-ingress-controller"),
    ("ingress-nginx", "ingress-nginx-controller"),
)
#: The seed-level node-port-proxy KKP runs for the NodePort and Tunneling expose strategies.
NODEPORT_PROXY_SERVICE = ("kubermatic", "nodeport-proxy")


def find_service(services: Iterable[dict[str, Any]], candidates: Sequence[tuple[str, str]]) -> dict[str, Any] | None:
    """The first Service of ``candidates`` (namespace, name) that exists."""
    by_ref = {((s.get("metadata") or {}).get("namespace"), (s.get("metadata") or {}).get("name")): s
              for s in services}
    return next((by_ref[c] for c in candidates if c in by_ref), None)


def service_addresses(service: dict[str, Any]) -> list[str]:
    """External addresses (IPs or host names) the load balancer gave the Service."""
    ingress = (service.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
    return [entry.get("ip") or entry.get("hostname") for entry in ingress if entry.get("ip") or entry.get("hostname")]


def service_summary(service: dict[str, Any]) -> dict[str, Any]:
    spec = service.get("spec") or {}
    return {"service": ref(service), "type": spec.get("type"), "loadBalancerIP": spec.get("loadBalancerIP"),
            "external_addresses": service_addresses(service)}


# ------------------------------------------------------------------ KKP configuration (NET-004, NET-005)

#: KKP's expose strategy when neither the Seed nor the KubermaticConfiguration sets one.
KKP_DEFAULT_EXPOSE_STRATEGY = "NodePort"


def find_seed(seeds: Iterable[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((s for s in seeds if (s.get("metadata") or {}).get("name") == name), None)


def effective_expose_strategy(seed: dict[str, Any] | None, configurations: Sequence[dict[str, Any]]
                              ) -> tuple[str, str]:
    """(strategy, where it comes from): Seed ``spec.exposeStrategy``, else the KubermaticConfiguration's,
    else KKP's default NodePort.

    >>> effective_expose_strategy({"metadata": {"name": "eu"}, "spec": {}}, [])
    ('NodePort', "KKP's default (neither Seed eu nor a KubermaticConfiguration sets one)")
    """
    own = ((seed or {}).get("spec") or {}).get("exposeStrategy")
    seed_name = ((seed or {}).get("metadata") or {}).get("name", "?")
    if own:
        return str(own), f"Seed {seed_name} spec.exposeStrategy"
    for configuration in configurations:
        value = (configuration.get("spec") or {}).get("exposeStrategy")
        if value:
            return str(value), f"KubermaticConfiguration {ref(configuration)} spec.exposeStrategy"
    where = f"neither Seed {seed_name} nor a KubermaticConfiguration sets one" if seed else \
        "no KubermaticConfiguration sets one"
    return KKP_DEFAULT_EXPOSE_STRATEGY, f"KKP's default ({where})"


def konnectivity_disabled_by(configurations: Sequence[dict[str, Any]], seed: dict[str, Any] | None,
                             templates: Sequence[dict[str, Any]], clusters: Sequence[dict[str, Any]]) -> list[str]:
    """What in KKP's configuration turns Konnectivity off (empty: nothing does).

    * a KubermaticConfiguration with ``spec.featureGates.KonnectivityService: false`` (the gate of
      KKP releases before Konnectivity became generally available);
    * the Seed's ``spec.defaultClusterTemplate`` naming a ClusterTemplate with
      ``spec.clusterNetwork.konnectivityEnabled: false`` (new user clusters of the seed start without it);
    * user Clusters on the seed with ``spec.clusterNetwork.konnectivityEnabled: false``.

    >>> konnectivity_disabled_by([{"metadata": {"name": "kkp", "namespace": "kubermatic"},
    ...                            "spec": {"featureGates": {"KonnectivityService": False}}}], None, [], [])
    ['KubermaticConfiguration kubermatic/kkp sets spec.featureGates.KonnectivityService: false']
    """
    problems = []
    for configuration in configurations:
        gates = (configuration.get("spec") or {}).get("featureGates") or {}
        if gates.get("KonnectivityService") is False or str(gates.get("KonnectivityService")).lower() == "false":
            problems.append(f"KubermaticConfiguration {ref(configuration)} sets "
                            "spec.featureGates.KonnectivityService: false")
    template_name = ((seed or {}).get("spec") or {}).get("defaultClusterTemplate")
    if template_name:
        template = next((t for t in templates if (t.get("metadata") or {}).get("name") == template_name), None)
        network = ((template or {}).get("spec") or {}).get("clusterNetwork") or {}
        if network.get("konnectivityEnabled") is False:
            problems.append(f"the Seed's default ClusterTemplate {template_name} sets "
                            "spec.clusterNetwork.konnectivityEnabled: false")
    for cluster in clusters:
        network = (cluster.get("spec") or {}).get("clusterNetwork") or {}
        if network.get("konnectivityEnabled") is False:
            problems.append(f"user Cluster {ref(cluster)} runs without Konnectivity "
                            "(spec.clusterNetwork.konnectivityEnabled: false)")
    return problems
