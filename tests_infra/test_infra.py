"""INFRA: the master/seed cluster's nodes, control plane and Kubernetes version (read-only), and the DNS zone.

Every check reads the seed's cluster through ``clusters(seed)``; an unreachable or unauthorised
API ends them all as ``error`` at once, with one reason.
"""

from __future__ import annotations

import pytest

from fixtures.cluster import Clusters
from fixtures.site import SeedTarget
from kkp_readiness import kube_facts as facts
from kkp_readiness import network_facts as net
from kkp_readiness.errors import DnsProbeError, KubeProbeError
from kkp_readiness.evidence import Evidence
from kkp_readiness.probes.dns import DnsServer
from kkp_readiness.probes.dns_zone import ZoneAnswer, find_zone
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect


def node_summary(nodes: list[dict]) -> list[dict]:
    """What an auditor needs to see of the nodes: name, role, zone, readiness, size, kubelet."""
    summary = []
    for node in nodes:
        cpus, memory = facts.capacity(node)
        summary.append({
            "name": facts.name(node),
            "role": "control-plane" if facts.is_control_plane(node) else "worker",
            "zone": facts.zone(node),
            "ready": facts.is_ready(node),
            "cpus": cpus,
            "memory_gib": round(memory, 2),
            "kubelet": node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion"),
        })
    return summary


def zones_of(nodes: list[dict]) -> dict[str, str | None]:
    return {facts.name(n): facts.zone(n) for n in nodes}


# Ensures control plane and workers each span the zones the profile expects (losing a zone keeps quorum).
@pytest.mark.requirement("INFRA-001")
def test_nodes_span_availability_zones(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                       evidence: Evidence) -> None:
    nodes = clusters(seed).nodes()
    evidence.attach(f"nodes of seed {seed}", node_summary(nodes))
    wanted = profile.infra.availability_zones
    for role, group in (("control-plane", [n for n in nodes if facts.is_control_plane(n)]),
                        ("worker", [n for n in nodes if not facts.is_control_plane(n)])):
        by_node = zones_of(group)
        distinct = {z for z in by_node.values() if z}
        expect(len(distinct) >= min(wanted, len(group)) and None not in by_node.values(),
               f"{role} nodes of seed {seed}",
               expected=f"every node labelled {facts.ZONE_LABEL}, spread over at least {wanted} zone(s)",
               found=", ".join(f"{n}: {z or 'no zone label'}" for n, z in sorted(by_node.items())) or "no nodes")


# Ensures an HA control plane: enough control-plane nodes (an odd number) and one etcd member on each.
@pytest.mark.requirement("INFRA-002")
def test_control_plane_is_highly_available(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                           evidence: Evidence) -> None:
    reader = clusters(seed)
    control_plane = sorted(facts.name(n) for n in reader.nodes() if facts.is_control_plane(n))
    etcd = reader.list("pods", namespace="kube-system", label_selector="component=etcd")
    etcd_nodes = sorted(p.get("spec", {}).get("nodeName") or "?" for p in etcd
                        if p.get("status", {}).get("phase") == "Running")
    evidence.attach("control plane and etcd", {"control_plane_nodes": control_plane, "etcd_members_on": etcd_nodes})
    wanted = profile.infra.control_plane_nodes
    expect(len(control_plane) >= wanted and len(control_plane) % 2 == 1,
           f"seed {seed}", expected=f"an odd number of at least {wanted} control-plane nodes",
           found=f"{len(control_plane)}: {', '.join(control_plane) or 'none'}")
    expect(etcd_nodes == control_plane, f"etcd of seed {seed}",
           expected=f"one running etcd member on each control-plane node ({', '.join(control_plane)})",
           found=f"running etcd pods (component=etcd) on {', '.join(etcd_nodes) or 'no node'}")


# Ensures every node is Ready.
@pytest.mark.requirement("INFRA-003")
def test_all_nodes_ready(clusters: Clusters, seed: SeedTarget, evidence: Evidence) -> None:
    nodes = clusters(seed).nodes()
    evidence.attach(f"nodes of seed {seed}", node_summary(nodes))
    not_ready = {}
    for node in nodes:
        if not facts.is_ready(node):
            ready = facts.condition(node, "Ready") or {}
            not_ready[facts.name(node)] = f"{ready.get('status', 'Unknown')} ({ready.get('reason', 'no condition')})"
    expect(bool(nodes) and not not_ready, f"seed {seed}", expected="every node Ready=True",
           found="; ".join(f"{n}: Ready={s}" for n, s in not_ready.items()) or "no nodes at all")


# Ensures the networking model holds: a CNI DaemonSet ready on every node, no node without network.
@pytest.mark.requirement("INFRA-004")
def test_cni_runs_on_every_node(clusters: Clusters, seed: SeedTarget, evidence: Evidence) -> None:
    reader = clusters(seed)
    nodes = reader.nodes()
    cni = [d for d in reader.list("daemonsets", namespace="kube-system") if facts.name(d) in facts.CNI_DAEMONSETS]
    status = {facts.name(d): {key: d.get("status", {}).get(key, 0)
                              for key in ("desiredNumberScheduled", "numberReady")} for d in cni}
    no_network = sorted(facts.name(n) for n in nodes
                        if (facts.condition(n, "NetworkUnavailable") or {}).get("status") == "True")
    evidence.attach("CNI DaemonSets in kube-system", {"daemonsets": status, "nodes": len(nodes),
                                                      "nodes_with_NetworkUnavailable": no_network})
    expect(bool(cni), f"seed {seed}", expected=f"a CNI DaemonSet in kube-system ({', '.join(facts.CNI_DAEMONSETS)})",
           found="none of them")
    short = {name: s for name, s in status.items()
             if not (s["numberReady"] == s["desiredNumberScheduled"] == len(nodes))}
    problems = [f"{n}: {s['numberReady']} ready of {s['desiredNumberScheduled']} scheduled" for n, s in short.items()]
    if no_network:
        problems.append(f"NetworkUnavailable=True on {', '.join(no_network)}")
    expect(not problems, f"CNI of seed {seed}",
           expected=f"a ready CNI pod on each of the {len(nodes)} nodes and no node with NetworkUnavailable=True",
           found="; ".join(problems))


# Ensures the API server and kubelets run a Kubernetes minor the pinned KKP version supports.
@pytest.mark.requirement("INFRA-005")
def test_kubernetes_version_supported(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                      evidence: Evidence) -> None:
    reader = clusters(seed)
    server = reader.version().get("gitVersion", "")
    kubelets = {facts.name(n): n.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")
                for n in reader.nodes()}
    evidence.attach("versions", {"api_server": server, "kubelets": kubelets})
    supported = facts.supported_minors(profile.kkp.version)
    if supported is None:
        raise KubeProbeError(f"the suite has no Kubernetes support table for KKP {profile.kkp.version} "
                             f"(kkp_readiness/data/kubernetes_versions.yaml); cannot judge {server}")
    expect(facts.minor_version(server) in supported, f"API server of seed {seed}",
           expected=f"Kubernetes {', '.join(supported)} (supported by KKP {profile.kkp.version})", found=server)
    server_minor = facts.minor_tuple(server)
    newer = {n: v for n, v in kubelets.items() if facts.minor_tuple(v) > server_minor}
    expect(not newer, f"kubelets of seed {seed}", expected=f"no kubelet newer than the API server ({server})",
           found=", ".join(f"{n}: {v}" for n, v in newer.items()))


# Ensures every node offers at least KKP's documented minimum (or the profile's stricter one).
@pytest.mark.requirement("INFRA-006")
def test_node_sizes(clusters: Clusters, seed: SeedTarget, profile: Profile, evidence: Evidence) -> None:
    nodes = clusters(seed).nodes()
    evidence.attach(f"nodes of seed {seed}", node_summary(nodes))
    cpus, memory = profile.infra.min_node_cpus, profile.infra.min_node_memory_gib
    # A VM with 4 GiB reports a little less as capacity (kernel reservations): allow 5 %.
    small = {facts.name(n): facts.capacity(n) for n in nodes
             if facts.capacity(n)[0] < cpus or facts.capacity(n)[1] < memory * 0.95}
    expect(not small, f"nodes of seed {seed}", expected=f"at least {cpus:g} CPUs and {memory:g} GiB memory each",
           found="; ".join(f"{n}: {c:g} CPUs, {m:.1f} GiB" for n, (c, m) in small.items()))


# Ensures the storage classes KKP uses can create volumes: their CSI driver is registered, its node
# plugin is on every worker and a volume-creating controller runs.
@pytest.mark.requirement("INFRA-007")
def test_storage_provisioner_works(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                   evidence: Evidence) -> None:
    """Which classes: kubermatic-fast, the backup class and the default class, those that exist (their
    absence is STORAGE-001/005/006); every class when none of them does. The controller is recognised
    by the external-provisioner sidecar (container ``csi-provisioner``) every CSI controller runs;
    nothing in the API ties a controller to its driver's name, so any ready one counts."""
    reader = clusters(seed)
    classes = reader.storage_classes()
    expect(bool(classes), f"seed {seed}", expected="at least one StorageClass", found="none")
    used = {profile.storage.fast_class, profile.storage.backup_class}
    judged = [c for c in classes if facts.name(c) in used or facts.is_default_class(c)] or classes
    drivers = {facts.name(d) for d in reader.list("csidrivers")}
    nodes = [facts.name(n) for n in reader.nodes() if facts.carries_volumes(n)]
    registered = {facts.name(c): facts.csi_drivers_on(c) for c in reader.list("csinodes")}
    workloads = [w for w in net.workloads(reader) if facts.runs_container(w, facts.CSI_PROVISIONER_CONTAINER)]
    controllers = [net.describe_workload(w) for w in workloads]
    evidence.attach("provisioners", {"classes": {facts.name(c): c.get("provisioner") for c in judged},
                                     "csi_drivers": sorted(drivers),
                                     "csi_nodes": {k: sorted(v) for k, v in registered.items()},
                                     "csi_provisioner_controllers": controllers})
    problems = []
    for storage_class in judged:
        provisioner = str(storage_class.get("provisioner", ""))
        driver = facts.CSI_MIGRATION.get(provisioner, provisioner)
        label = f"{facts.name(storage_class)} ({provisioner})"
        if provisioner == facts.NO_PROVISIONER:
            problems.append(f"{label}: static local volumes only, nothing creates volumes on demand")
        elif driver not in drivers:
            problems.append(f"{label}: no CSIDriver {driver}")
        else:
            missing = [n for n in nodes if driver not in registered.get(n, set())]
            if missing:
                problems.append(f"{label}: driver {driver} not registered on worker(s) {', '.join(missing)}")
    if not any(net.workload_ready(w) for w in workloads):
        problems.append(f"no ready CSI controller (Deployment or StatefulSet with a {facts.CSI_PROVISIONER_CONTAINER} "
                        f"container): {'; '.join(controllers) or 'none'}")
    expect(not problems, f"storage provisioning of seed {seed}",
           expected="for each class KKP uses: its CSIDriver registered on every (uncordoned) worker and a ready "
                    "CSI controller",
           found="; ".join(problems))


def zone_finding(zone: ZoneAnswer, base_domain: str) -> str | None:
    """What is wrong with the zone a server named for ``base_domain``, as dig would show it; None: nothing."""
    if zone.apex is None:
        return f"{zone.status}: no SOA for it or any parent below the root ({'; '.join(zone.steps)})"
    if base_domain != zone.apex and not base_domain.endswith(f".{zone.apex}"):
        return f"SOA of {zone.apex}, a zone that does not hold it"
    if not zone.nameservers:
        return f"zone {zone.apex} (SOA {zone.soa}) without NS records"
    return None


# Ensures the base domain lives in a zone (SOA and NS) that every DNS server of the profile serves: a DNS
# service the installation team can edit, not just static address overrides. A network check, not a cluster one.
@pytest.mark.requirement("INFRA-008")
def test_dns_zone_of_base_domain(profile: Profile, dns_server: DnsServer, evidence: Evidence) -> None:
    zone = find_zone(profile.base_domain, dns_server, timeout=profile.timeouts.dns)
    evidence.attach(f"zone of {profile.base_domain} at {dns_server}", zone.to_dict())
    if zone.status == "REFUSED":
        raise DnsProbeError(f"DNS server {dns_server} refused SOA queries for {profile.base_domain} (an ACL?): "
                            "the suite could not look")
    problem = zone_finding(zone, profile.base_domain)
    expect(problem is None, f"zone of {profile.base_domain} at DNS server {dns_server}",
           expected=f"the SOA and NS records of {profile.base_domain} or of a parent zone holding it",
           found=problem or "")
