"""The cloud's address and tenant plan, judged on the profile alone (nothing is dialled): VSPHERE-005..009 and
OPENSTACK-008. The arithmetic lives in ``kkp_readiness.cloud.plan``; hypothesis properties test it."""

from __future__ import annotations

import pytest

from kkp_readiness.cloud import plan
from kkp_readiness.evidence import Evidence
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect


# Ensures KKP can provision user-cluster machines at all: they get their addresses by DHCP.
@pytest.mark.requirement("VSPHERE-005")
def test_user_cluster_networks_have_dhcp(profile: Profile, evidence: Evidence) -> None:
    """The rule: every ``cloud.vsphere.networks`` entry with role ``user-clusters`` is declared with DHCP."""
    assert profile.cloud.vsphere is not None
    networks = [n for n in profile.cloud.vsphere.networks if n.role == "user-clusters"]
    evidence.attach("user-cluster networks", [n.model_dump() for n in networks])
    expect(bool(networks), "cloud.vsphere.networks", expected="at least one network with role user-clusters",
           found="none")
    without = [n.name for n in networks if not n.dhcp]
    expect(not without, "the user-cluster networks", expected="DHCP on each (dhcp: true)",
           found=f"no DHCP on {', '.join(without)}: machines KKP creates would get no address (unsupported)")


def _management_user(profile: Profile) -> str | None:
    cloud = profile.cloud
    if cloud.management_user:
        return cloud.management_user
    if cloud.vsphere:
        return cloud.vsphere.username
    if cloud.openstack:
        return cloud.openstack.application_credential_id or cloud.openstack.username
    return None


# Ensures one tenant can neither reach another's machines by address nor act with its credentials.
@pytest.mark.parametrize("provider", [
    pytest.param("vsphere", marks=pytest.mark.requirement("VSPHERE-006"), id="vsphere"),
    pytest.param("openstack", marks=pytest.mark.requirement("OPENSTACK-008"), id="openstack")])
def test_tenants_have_own_cidr_and_user(provider: str, profile: Profile, evidence: Evidence) -> None:
    """The rule: ``cloud.tenants`` are declared, no tenant CIDR overlaps another's or the management networks'
    (``network.node_cidrs``, the vSphere management networks), and no tenant shares a user with another or with
    management."""
    tenants = list(profile.cloud.tenants)
    management_user = _management_user(profile)
    management = {"cidrs": plan.management_cidrs(profile), "user": management_user}
    evidence.attach("tenant plan", {"management": management,
                                    "tenants": [t.model_dump() for t in tenants]})
    expect(bool(tenants), "cloud.tenants", expected="the tenants with their CIDRs and technical users",
           found="none declared")
    problems = plan.tenant_problems(tenants, plan.management_cidrs(profile), management_user)
    expect(not problems, "the tenant plan", expected="separate CIDRs and users", found="; ".join(problems))


# Ensures the MetalLB virtual IPs are reachable and never handed to a machine.
@pytest.mark.requirement("VSPHERE-007")
def test_vip_range_routed_and_free(profile: Profile, evidence: Evidence) -> None:
    """The rule (``plan.vip_problems``)."""
    evidence.attach("VIP plan", {"vip ranges": list(profile.load_balancer.address_pools),
                                 "routed prefixes": list(profile.network.routed_cidrs),
                                 "machine CIDRs": plan.machine_cidrs(profile),
                                 "dhcp ranges": list(profile.network.dhcp_ranges),
                                 "pod": profile.network.pod_cidr, "service": profile.network.service_cidr})
    problems = plan.vip_problems(profile)
    expect(not problems, "the VIP range (load_balancer.address_pools)",
           expected="inside a routed prefix, clear of machine CIDRs, DHCP ranges, pod and service CIDRs",
           found="; ".join(problems))


# Ensures every planned virtual IP has an address.
@pytest.mark.requirement("VSPHERE-008")
def test_vip_range_holds_the_planned_vips(profile: Profile, evidence: Evidence) -> None:
    """The rule (``plan.vips_needed``): the VIP ranges hold the ingress, the node-port proxies (or one per user
    cluster under LoadBalancer) and the user-cluster workload VIPs."""
    needed = plan.vips_needed(profile)
    capacity = plan.vip_capacity(profile)
    evidence.attach("VIPs", {"needed": needed, "in the VIP ranges": capacity})
    expect(capacity >= sum(needed.values()), "the VIP range (load_balancer.address_pools)",
           expected=f"at least {sum(needed.values())} addresses ({', '.join(f'{k}: {v}' for k, v in needed.items())})",
           found=f"{capacity} addresses")


# Ensures the seed's machines fit into the management network when it has no DHCP.
@pytest.mark.requirement("VSPHERE-009")
def test_static_machine_cidrs_hold_the_seed(profile: Profile, evidence: Evidence) -> None:
    """The rule: each management network without DHCP (``cloud.vsphere.networks`` role management,
    ``dhcp: false``, with its CIDR) holds the control-plane nodes (at least 3) plus the seed's workers
    (``infra.control_plane_nodes``, ``infra.worker_nodes``)."""
    assert profile.cloud.vsphere is not None
    static = [n for n in profile.cloud.vsphere.networks if n.role == "management" and not n.dhcp]
    if not static:
        pytest.skip("not applicable: the management networks have DHCP (no static machine CIDR to size)")
    machines = max(profile.infra.control_plane_nodes, 3) + profile.infra.worker_nodes
    sizes = {n.name: (n.cidr, plan.static_capacity(n.cidr) if n.cidr else 0) for n in static}
    evidence.attach("static management networks", {"machines": machines, "capacity": sizes})
    problems = [f"{name}: {'no CIDR declared' if cidr is None else f'{cidr} holds {size}'}"
                for name, (cidr, size) in sizes.items() if size < machines]
    expect(not problems, "the static management networks",
           expected=f"room for {machines} machines (3 control-plane nodes + {profile.infra.worker_nodes} workers)",
           found="; ".join(problems))
