"""The site's address plan as named ranges, and which of them collide (NET-003). Pure.

Why a module of its own: the plan is spread over ``network`` (node networks, DHCP ranges, pod and
service CIDR) and ``load_balancer`` (address pools) in the profile, and only some overlaps are
mistakes. A DHCP range lies inside a node network by design; a load-balancer pool may share the
node network only under Layer 2 announcement (then ARP/NDP answers for it on that segment), and
never a DHCP range. Every other pair must be disjoint: a pod, service, node, DHCP or pool address
used twice is routed to the wrong place.

>>> plan = address_plan(NetworkSpec(node_cidrs=["192.0.2.0/24"], pod_cidr="192.0.2.128/25"), LoadBalancerSpec())
>>> conflicts(plan, layer2=False)
['pod CIDR 192.0.2.128/25 overlaps node network 192.0.2.0/24 in 192.0.2.128-192.0.2.255']
"""

from __future__ import annotations

from dataclasses import dataclass

from kkp_readiness.addressing import AddressRange, parse_range
from kkp_readiness.profile_model import LoadBalancerSpec, NetworkSpec

NODE, DHCP, POD, SERVICE, POOL = "node network", "DHCP range", "pod CIDR", "service CIDR", "load-balancer pool"


@dataclass(frozen=True)
class PlannedRange:
    """One entry of the plan: its role (``NODE``, ``DHCP``, ...) and its text as the profile writes it."""

    role: str
    text: str

    def __str__(self) -> str:
        return f"{self.role} {self.text}"


def address_plan(network: NetworkSpec, load_balancer: LoadBalancerSpec) -> list[PlannedRange]:
    """Every range the profile plans, in the order the profile lists them."""
    return [
        *(PlannedRange(NODE, text) for text in network.node_cidrs),
        *(PlannedRange(DHCP, text) for text in network.dhcp_ranges),
        *([PlannedRange(POD, network.pod_cidr)] if network.pod_cidr else []),
        *([PlannedRange(SERVICE, network.service_cidr)] if network.service_cidr else []),
        *(PlannedRange(POOL, text) for text in load_balancer.address_pools),
    ]


def may_overlap(first: str, second: str, layer2: bool) -> bool:
    """Whether ranges of these two roles may share addresses (see the module docstring)."""
    pair = {first, second}
    return pair == {NODE, DHCP} or (layer2 and pair == {NODE, POOL})


def conflicts(plan: list[PlannedRange], layer2: bool) -> list[str]:
    """Each invalid range, and each pair of ranges that must be disjoint but share addresses, as one sentence.

    ``layer2``: load-balancer addresses are announced by Layer 2 (``load_balancer.mode`` ``*-l2``).
    """
    problems: list[str] = []
    parsed: list[tuple[PlannedRange, AddressRange]] = []
    for entry in plan:
        try:
            parsed.append((entry, parse_range(entry.text)))
        except ValueError as exc:
            problems.append(f"{entry} is not valid: {exc}")
    for index, (entry, span) in enumerate(parsed):
        for other, other_span in parsed[index + 1:]:
            common = span.intersection(other_span)
            if common is None or may_overlap(entry.role, other.role, layer2):
                continue
            problems.append(f"{other} overlaps {entry} in {common}")
    return problems
