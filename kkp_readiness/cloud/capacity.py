"""How many machines a cloud subnet must hold, and whether it does (AZURE-005, OPENSTACK-006). Pure.

The rule: the profile's ``cloud.planned_machines`` plus ``cloud.headroom_percent`` (rounded up)
must fit in the addresses the provider hands to machines: Azure reserves five addresses of every
subnet (network, gateway, two for DNS, broadcast), an OpenStack subnet hands out its allocation
pools. Without a planned count, the checklist's floor applies: at least a /24 (IPv4) or /64 (IPv6).

>>> needed_addresses(10, 25)
13
>>> SubnetCapacity("192.0.2.0/26", usable=59).problem(None, 25)
'a /26 (59 usable addresses), smaller than the /24 a small setup needs'
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

#: The checklist's minimum when the profile plans no machine count.
FLOOR_PREFIX = {4: 24, 6: 64}
#: Addresses Azure keeps in every subnet: .0, .1 (gateway), .2 and .3 (DNS), the last (broadcast).
AZURE_RESERVED = 5


def needed_addresses(planned: int, headroom_percent: int) -> int:
    return math.ceil(planned * (100 + headroom_percent) / 100)


@dataclass(frozen=True)
class SubnetCapacity:
    """A subnet as the provider reports it: its CIDR and how many addresses machines can get from it."""

    cidr: str
    usable: int

    def problem(self, planned: int | None, headroom_percent: int) -> str | None:
        """Why the subnet is too small, or None."""
        network = ipaddress.ip_network(self.cidr, strict=False)
        if planned is not None:
            needed = needed_addresses(planned, headroom_percent)
            if self.usable < needed:
                return (f"{self.usable} usable addresses in {self.cidr}, fewer than the {needed} needed "
                        f"({planned} planned machines + {headroom_percent} % headroom)")
            return None
        floor = FLOOR_PREFIX[network.version]
        if network.prefixlen > floor:
            return (f"a /{network.prefixlen} ({self.usable} usable addresses), smaller than the /{floor} "
                    "a small setup needs")
        return None


def azure_usable(cidr: str) -> int:
    """Addresses Azure can give to machines in ``cidr``."""
    return max(ipaddress.ip_network(cidr, strict=False).num_addresses - AZURE_RESERVED, 0)
