"""LB: what hands out load-balancer addresses on each seed, from which pools, how they are announced (read-only).

The profile's ``load_balancer.mode`` says which implementation to look for; the table of what that
means (workloads, pool and announcement objects) is data in :mod:`kkp_readiness.network_facts`.
Pools, announcements and peers of an implementation that is not deployed at all cannot be judged:
those checks end as ``error`` and point at LB-001.
"""

from __future__ import annotations

import pytest

from fixtures.cluster import Clusters
from fixtures.site import DnsObserver, SeedTarget, seed_targets
from kkp_readiness import kube_facts as facts
from kkp_readiness import network_facts as net
from kkp_readiness.addressing import (
    Pool,
    addresses_in,
    count_usable,
    is_ip,
    outside,
    overlaps,
    parse_ranges,
    pool_from_object,
)
from kkp_readiness.errors import DnsProbeError, KubeProbeError
from kkp_readiness.evidence import Evidence
from kkp_readiness.probes.dns import DnsServer
from kkp_readiness.probes.kube import ClusterReader
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect

#: Addresses KKP itself needs from the pools: the NGINX ingress and the node-port-proxy.
KKP_ADDRESSES = 2


def implementation(profile: Profile) -> net.Implementation:
    """What implements the profile's load-balancer mode; ``other`` names nothing the suite can look for."""
    mode = profile.load_balancer.mode
    if mode not in net.IMPLEMENTATIONS:
        raise KubeProbeError(
            f"cannot judge: load-balancer mode '{mode}' names no implementation the suite knows "
            f"({', '.join(net.IMPLEMENTATIONS)}); check the controller by hand, "
            "or prove it with the active check LB-010"
        )
    return net.IMPLEMENTATIONS[mode]


def component_states(reader: ClusterReader, impl: net.Implementation) -> list[net.ComponentState]:
    kinds = sorted({kind for component in impl.components for kind in component.kinds})
    return net.find_components(impl, {kind: reader.list(kind) for kind in kinds})


def deployed_implementation(reader: ClusterReader, profile: Profile, seed: SeedTarget) -> net.Implementation:
    """The implementation, or an error when none of its workloads exists: its objects cannot be judged (LB-001)."""
    impl = implementation(profile)
    states = component_states(reader, impl)
    if not any(state.found for state in states):
        raise KubeProbeError(
            f"cannot judge: {impl.name} is not deployed on seed {seed} "
            f"({'; '.join(state.describe() for state in states)}); see LB-001"
        )
    return impl


def read_pools(reader: ClusterReader, impl: net.Implementation, evidence: Evidence) -> list[Pool]:
    pools = [pool_from_object(obj) for kind in impl.pool_kinds for obj in net.read_custom(reader, kind)]
    evidence.attach("load-balancer address pools", [pool.to_dict() for pool in pools])
    return pools


def node_addresses(reader: ClusterReader) -> dict[str, list[str]]:
    """InternalIP and ExternalIP of every node."""
    return {facts.name(node): [a["address"] for a in node.get("status", {}).get("addresses") or []
                               if a.get("type") in ("InternalIP", "ExternalIP") and a.get("address")]
            for node in reader.nodes()}


# Ensures Services of type LoadBalancer are served: the profile's implementation is deployed and ready.
@pytest.mark.requirement("LB-001")
def test_load_balancer_implementation_runs(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                           evidence: Evidence) -> None:
    reader = clusters(seed)
    impl = implementation(profile)
    states = component_states(reader, impl)
    needed = {str(kind): len(net.read_custom(reader, kind)) for kind in impl.needs_objects}
    evidence.attach(f"{impl.name} on seed {seed}", {
        "mode": profile.load_balancer.mode,
        "components": {s.component.what: [{"object": f"{o.get('kind')} {net.ref(o)}",
                                            "ready": net.workload_ready(o), "status": net.workload_summary(o)}
                                           for o in s.found] for s in states},
        **({"objects": needed} if needed else {}),
    })
    problems = [state.describe() for state in states if not state.ready]
    problems += [f"no {kind} object (it hands out no address without one)" for kind, count in needed.items()
                 if count == 0]
    wanted = ", ".join(state.component.what for state in states)
    expect(not problems, f"{impl.name} on seed {seed} (load-balancer mode {profile.load_balancer.mode})",
           expected=f"deployed and ready: {wanted}"
           + (f", and {' and '.join(needed)} objects" if needed else ""),
           found="; ".join(problems))


# Ensures the pools hold an address for KKP's ingress, its node-port-proxy and every planned workload.
@pytest.mark.requirement("LB-002")
def test_pools_hold_enough_addresses(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                     evidence: Evidence) -> None:
    reader = clusters(seed)
    impl = deployed_implementation(reader, profile, seed)
    pools = read_pools(reader, impl, evidence)
    workloads = profile.load_balancer.workload_addresses
    needed = KKP_ADDRESSES + workloads
    total = count_usable(pools)
    expect(total >= needed, f"{impl.name} pools on seed {seed}",
           expected=f"at least {needed} distinct addresses ({KKP_ADDRESSES} for KKP's ingress and node-port-proxy "
                    f"+ {workloads} for workloads, load_balancer.workload_addresses)",
           found=f"{total}: " + ("; ".join(f"{p} {', '.join(map(str, p.ranges)) or '(no addresses)'}"
                                           f"{' (disabled)' if p.disabled else ''}" for p in pools)
                                  or f"no {' or '.join(k.kind for k in impl.pool_kinds)} object"))


# Ensures no pool address is a node's or DHCP's; L2 pools lie in the node segment, BGP pools outside it.
@pytest.mark.requirement("LB-003")
def test_pools_avoid_nodes_and_dhcp(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                    evidence: Evidence) -> None:
    """Judged against the nodes' InternalIP/ExternalIP addresses read from the cluster and the
    profile's ``network.dhcp_ranges`` and ``network.node_cidrs``. Layer 2 or BGP is the profile's
    plan (``load_balancer.mode``). Without ``network.node_cidrs`` the segment rule cannot be
    judged: the check then reports what it found wrong, else ends as ``error``.
    """
    reader = clusters(seed)
    impl = deployed_implementation(reader, profile, seed)
    pools = read_pools(reader, impl, evidence)
    if not pools:
        raise KubeProbeError(f"cannot judge: seed {seed} has no {impl.pool_kinds[0].kind} object (see LB-002)")
    nodes = node_addresses(reader)
    node_cidrs = parse_ranges(profile.network.node_cidrs)
    dhcp = parse_ranges(profile.network.dhcp_ranges)
    layer2 = profile.load_balancer.mode.endswith("-l2")
    evidence.attach("address plan", {"node_addresses": nodes, "node_cidrs": profile.network.node_cidrs,
                                     "dhcp_ranges": profile.network.dhcp_ranges,
                                     "announcement": "Layer 2" if layer2 else "BGP"})
    problems = []
    for pool in pools:
        taken = sorted({f"{address} ({node})" for node, addresses in nodes.items()
                        for address in addresses_in(pool.usable, addresses)})
        if taken:
            problems.append(f"{pool} holds node addresses {', '.join(taken)}")
        problems += [f"{pool} shares {common} with the DHCP range {scope.source}"
                     for _, scope, common in overlaps(pool.usable, dhcp)]
        if layer2 and node_cidrs:
            problems += [f"{pool} has {part} outside the node networks {', '.join(profile.network.node_cidrs)} "
                         "(Layer 2 announcement only reaches the nodes' segment)"
                         for part in outside(pool.usable, node_cidrs)]
        elif node_cidrs:
            problems += [f"{pool} shares {common} with the node network {network.source} "
                         "(BGP-announced pools must lie outside it)"
                         for _, network, common in overlaps(pool.usable, node_cidrs)]
    expect(not problems, f"{impl.name} pools on seed {seed}",
           expected="no node address, no DHCP address"
                    + (", inside the node networks" if layer2 else ", outside the node networks"),
           found="; ".join(problems))
    if not node_cidrs:
        raise KubeProbeError("cannot judge whether the pools lie "
                             f"{'inside' if layer2 else 'outside'} the node networks: set network.node_cidrs "
                             "in the profile (no node address and no DHCP address is in a pool)")


# Ensures the load-balancer addresses are announced by BGP, not by Layer 2 (a recommendation: warn).
@pytest.mark.requirement("LB-004")
def test_addresses_announced_by_bgp(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                    evidence: Evidence) -> None:
    reader = clusters(seed)
    deployed_implementation(reader, profile, seed)
    kinds = net.ANNOUNCEMENTS[net.family(profile.load_balancer.mode) or ""]
    found = {how: [f"{obj.get('kind', kind.kind)} {net.ref(obj)}" for kind in kinds[how]
                   for obj in net.read_custom(reader, kind)] for how in ("l2", "bgp")}
    evidence.attach("announcement objects", {"mode": profile.load_balancer.mode, "layer2": found["l2"],
                                             "bgp": found["bgp"]})
    findings = []
    if profile.load_balancer.mode.endswith("-l2"):
        findings.append(f"the profile plans Layer 2 announcement (load_balancer.mode {profile.load_balancer.mode})")
    if found["l2"]:
        findings.append(f"Layer 2 announcement by {', '.join(found['l2'])}")
    if not found["bgp"]:
        findings.append(f"no BGP announcement ({' or '.join(k.kind for k in kinds['bgp'])} object)")
    expect(not findings, f"announcement of the load-balancer addresses on seed {seed}",
           expected=f"BGP only: a {' or '.join(k.kind for k in kinds['bgp'])}, "
                    f"no {' or '.join(k.kind for k in kinds['l2'])}",
           found="; ".join(findings))


# Ensures BGP mode has its peers (those of the profile) and an advertisement covering the pools.
@pytest.mark.requirement("LB-005")
def test_bgp_peers_configured(clusters: Clusters, seed: SeedTarget, profile: Profile, evidence: Evidence) -> None:
    """MetalLB: BGPPeer objects, and every IPAddressPool named (or selected) by a BGPAdvertisement.
    Cilium: peers of CiliumBGPPeeringPolicy / CiliumBGPClusterConfig objects, and a BGP configuration
    that advertises the LoadBalancer addresses of Services (which pools those come from is not judged).
    With ``load_balancer.bgp_peers`` in the profile, each of them (address and ASN) must be a peer.
    """
    reader = clusters(seed)
    impl = deployed_implementation(reader, profile, seed)
    if net.family(profile.load_balancer.mode) == "metallb":
        peer_objects = net.read_custom(reader, net.BGP_PEER)
        pools = net.read_custom(reader, net.IP_ADDRESS_POOL)
        adverts = net.read_custom(reader, net.BGP_ADVERTISEMENT)
        covered = {name for advert in adverts for name in net.advertised_pools(advert, pools)}
        uncovered = [net.ref(p) for p in pools if p["metadata"]["name"] not in covered]
        advertisement = "a BGPAdvertisement for every IPAddressPool"
    else:
        peer_objects = [o for kind in (net.CILIUM_BGP_PEERING, net.CILIUM_BGP_CLUSTER)
                        for o in net.read_custom(reader, kind)]
        adverts = net.read_custom(reader, net.CILIUM_BGP_ADVERTISEMENT)
        uncovered = [] if net.cilium_advertises_lb_addresses(peer_objects + adverts) else \
            ["the LoadBalancer addresses of Services"]
        advertisement = "a BGP advertisement of the Services' LoadBalancer addresses"
    peers = net.bgp_peers(peer_objects)
    evidence.attach("BGP configuration", {
        "peers": [{"address": a, "asn": asn, "object": source} for a, asn, source in peers],
        "advertisements": [net.ref(a) for a in adverts],
        "profile_peers": [p.model_dump() for p in profile.load_balancer.bgp_peers],
    })
    problems = []
    if not peers:
        problems.append(f"no BGP peer ({impl.name} has no peer object)")
    for wanted in profile.load_balancer.bgp_peers:
        if not any(address == wanted.address and asn == wanted.asn for address, asn, _ in peers):
            problems.append(f"no peer {wanted.address} AS {wanted.asn} (load_balancer.bgp_peers)")
    if uncovered:
        problems.append(f"not advertised by BGP: {', '.join(uncovered)}")
    planned = ", ".join(f"{p.address} AS {p.asn}" for p in profile.load_balancer.bgp_peers)
    expect(not problems, f"BGP announcement on seed {seed}",
           expected=f"{'the peers ' + planned if planned else 'at least one BGP peer'} and {advertisement}",
           found="; ".join(problems))


def master_target(profile: Profile) -> SeedTarget:
    """The master cluster: the profile's first seed (in a single-seed set-up the master is the seed)."""
    return seed_targets(profile)[0]


# Ensures the NGINX ingress Service has an external address, the one DNS gives for the KKP UI name.
@pytest.mark.requirement("LB-006")
def test_ingress_address_matches_ui_record(clusters: Clusters, profile: Profile, dns: DnsObserver,
                                           evidence: Evidence) -> None:
    """Read from the master cluster (the profile's first seed). DNS is asked at the profile's first
    DNS server (DNS-001 compares every server); the address must also be one of ``ingress.addresses``.
    """
    master = master_target(profile)
    service = net.find_service(clusters(master).list("services"), net.INGRESS_SERVICES)
    candidates = " or ".join(f"{ns}/{name}" for ns, name in net.INGRESS_SERVICES)
    expect(service is not None, f"master cluster (seed {master})",
           expected=f"the NGINX ingress controller's Service {candidates}", found="none of them")
    assert service is not None
    evidence.attach("NGINX ingress Service", net.service_summary(service))
    kind = (service.get("spec") or {}).get("type")
    addresses = net.service_addresses(service)
    expect(kind == "LoadBalancer" and bool(addresses), f"Service {net.ref(service)}",
           expected="type LoadBalancer with an external address",
           found=f"type {kind}, {', '.join(addresses) or 'no external address (pending)'}")
    server = DnsServer.parse(profile.dns.servers[0])
    ips = [a for a in addresses if is_ip(a)]
    for hostname in (a for a in addresses if not is_ip(a)):  # cloud load balancers may publish a name
        ips += list(dns.ask(hostname, server).addresses)
    answer = dns.ask(profile.base_domain, server, ips or None)
    evidence.attach(f"DNS answer for {profile.base_domain} from {server}", answer.to_dict())
    if answer.status == "REFUSED":
        raise DnsProbeError(f"DNS server {server} refused to answer for {profile.base_domain}: "
                            "the suite could not look")
    expect(bool(ips) and set(answer.addresses) == set(ips), f"{profile.base_domain} at DNS server {server}",
           expected=f"the ingress Service's address {', '.join(addresses)}",
           found=", ".join(answer.addresses) or answer.status)
    foreign = [a for a in ips if a not in profile.ingress.addresses]
    expect(not foreign, f"Service {net.ref(service)}",
           expected=f"an address the profile plans for the ingress ({', '.join(profile.ingress.addresses)})",
           found=", ".join(ips))


# Ensures a NodePort/Tunneling seed's node-port-proxy has the external address the profile plans.
@pytest.mark.requirement("LB-007")
def test_nodeport_proxy_has_external_address(clusters: Clusters, seed: SeedTarget, evidence: Evidence) -> None:
    namespace, name = net.NODEPORT_PROXY_SERVICE
    service = net.find_service(clusters(seed).list("services"), [net.NODEPORT_PROXY_SERVICE])
    planned = seed.seed.nodeport_proxy_addresses
    subject = f"Service {namespace}/{name} on seed {seed} (expose strategy {seed.seed.expose_strategy})"
    expected = f"type LoadBalancer with the external address {', '.join(planned)} (seeds[].nodeport_proxy_addresses)"
    expect(service is not None, subject, expected=expected, found="no such Service")
    assert service is not None
    evidence.attach("node-port-proxy Service", net.service_summary(service))
    kind = (service.get("spec") or {}).get("type")
    addresses = net.service_addresses(service)
    expect(kind == "LoadBalancer" and bool(addresses) and all(a in planned for a in addresses), subject,
           expected=expected, found=f"type {kind}, {', '.join(addresses) or 'no external address (pending)'}")
