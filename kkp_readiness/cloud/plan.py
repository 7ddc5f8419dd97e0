"""The cloud address plan and tenant plan as arithmetic on the profile (VSPHERE-005..009, OPENSTACK-008). Pure.

Nothing here asks a cloud: the rules hold for what the profile plans, so they are judged before any
machine exists. Each function returns the problems as sentences (empty: the rule holds).

>>> from kkp_readiness.profile_model import TenantSpec
>>> tenant_problems([TenantSpec(name="a", cidrs=["192.0.2.0/25"], user="u")], ["192.0.2.0/24"], "m")
['tenant a CIDR 192.0.2.0/25 overlaps the management CIDR 192.0.2.0/24']
"""

from __future__ import annotations

import ipaddress

from kkp_readiness import address_plan
from kkp_readiness.addressing import count_addresses, parse_range, parse_ranges
from kkp_readiness.profile_model import Profile, TenantSpec

#: Addresses of an IPv4 machine network no machine gets: network, gateway, broadcast.
RESERVED_IPV4 = 3


def machine_cidrs(profile: Profile) -> list[str]:
    """Every CIDR machines take addresses from: the node networks, the vSphere networks' and the tenants'."""
    cidrs = list(profile.network.node_cidrs)
    if profile.cloud.vsphere:
        cidrs += [n.cidr for n in profile.cloud.vsphere.networks if n.cidr and n.cidr not in cidrs]
    cidrs += [c for t in profile.cloud.tenants for c in t.cidrs if c not in cidrs]
    return cidrs


def management_cidrs(profile: Profile) -> list[str]:
    """The management components' CIDRs: the node networks and the vSphere networks with role management."""
    cidrs = list(profile.network.node_cidrs)
    if profile.cloud.vsphere:
        cidrs += [n.cidr for n in profile.cloud.vsphere.networks
                  if n.role == "management" and n.cidr and n.cidr not in cidrs]
    return cidrs


def _overlap(first: str, second: str) -> bool:
    a, b = parse_range(first), parse_range(second)
    return a.version == b.version and a.low <= b.high and b.low <= a.high


def tenant_problems(tenants: list[TenantSpec], management_cidrs: list[str], management_user: str | None) -> list[str]:
    """Tenants must not share a CIDR with each other or with management, nor a technical user."""
    problems = []
    for index, tenant in enumerate(tenants):
        for cidr in tenant.cidrs:
            problems += [f"tenant {tenant.name} CIDR {cidr} overlaps the management CIDR {m}"
                         for m in management_cidrs if _overlap(cidr, m)]
            problems += [f"tenant {tenant.name} CIDR {cidr} overlaps tenant {other.name} CIDR {c}"
                         for other in tenants[index + 1:] for c in other.cidrs if _overlap(cidr, c)]
        if management_user and tenant.user == management_user:
            problems.append(f"tenant {tenant.name} uses the management user {tenant.user}")
        problems += [f"tenants {tenant.name} and {other.name} share the user {tenant.user}"
                     for other in tenants[index + 1:] if other.user == tenant.user]
    return problems


def vip_problems(profile: Profile) -> list[str]:
    """The VIP ranges (``load_balancer.address_pools``) lie in a routed prefix and overlap no machine CIDR,
    DHCP range, pod or service CIDR (under Layer 2 a VIP range may share a machine network, as in NET-003)."""
    pools = list(profile.load_balancer.address_pools)
    if not pools:
        return ["no VIP range is planned (load_balancer.address_pools)"]
    routed = parse_ranges(profile.network.routed_cidrs)
    problems = []
    if not routed:
        problems.append("no routed prefix is declared (network.routed_cidrs)")
    for text in pools:
        pool = parse_range(text)
        if routed and not any(r.version == pool.version and r.low <= pool.low and pool.high <= r.high for r in routed):
            prefixes = ", ".join(profile.network.routed_cidrs)
            problems.append(f"VIP range {text} is not inside a routed prefix ({prefixes})")
    layer2 = profile.load_balancer.mode.endswith("-l2")
    ranges = [*(address_plan.PlannedRange(address_plan.NODE, c) for c in machine_cidrs(profile)),
              *(r for r in address_plan.address_plan(profile.network, profile.load_balancer)
                if r.role != address_plan.NODE)]
    problems += [p for p in address_plan.conflicts(ranges, layer2) if address_plan.POOL in p]
    return problems


def vips_needed(profile: Profile) -> dict[str, int]:
    """What the VIP range must hold: the ingress, per seed its node-port proxy (or one per user cluster under
    LoadBalancer), and the addresses reserved for user-cluster workloads."""
    needed = {"ingress": 1}
    for seed in profile.seeds:
        if seed.expose_strategy == "LoadBalancer":
            needed[f"seed {seed.name}: one per user cluster"] = profile.load_balancer.user_clusters
        else:
            needed[f"seed {seed.name}: node-port proxy"] = 1
    needed["user-cluster workloads"] = profile.load_balancer.workload_addresses
    return needed


def vip_capacity(profile: Profile) -> int:
    return count_addresses(parse_ranges(profile.load_balancer.address_pools))


def static_capacity(cidr: str) -> int:
    """Addresses machines can hold statically in ``cidr`` (IPv4: all but network, gateway and broadcast)."""
    network = ipaddress.ip_network(cidr, strict=False) if "/" in cidr else None
    if network is None:
        return count_addresses([parse_range(cidr)])
    return max(network.num_addresses - (RESERVED_IPV4 if network.version == 4 else 2), 0)
