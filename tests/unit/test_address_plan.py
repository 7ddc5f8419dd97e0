"""address_plan: which ranges of a site's plan may share addresses, and how a collision is named."""

from __future__ import annotations

import pytest

from kkp_readiness.address_plan import PlannedRange, address_plan, conflicts
from kkp_readiness.profile_model import LoadBalancerSpec, NetworkSpec

NODES = "192.0.2.0/25"
DHCP = "192.0.2.100-192.0.2.119"


def _conflicts(layer2: bool = False, pools: tuple[str, ...] = (), **network: object) -> list[str]:
    spec = NetworkSpec(**{"node_cidrs": [NODES], "dhcp_ranges": [DHCP], **network})
    return conflicts(address_plan(spec, LoadBalancerSpec(address_pools=list(pools))), layer2)


def test_a_disjoint_plan_has_no_conflict() -> None:
    assert _conflicts(pools=("198.51.100.0/28",), pod_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12") == []


def test_dhcp_inside_the_node_network_is_the_design() -> None:
    assert _conflicts() == []


@pytest.mark.parametrize(("layer2", "pools", "expected"), [
    (True, ("192.0.2.10-192.0.2.20",), []),
    (False, ("192.0.2.10-192.0.2.20",),
     ["load-balancer pool 192.0.2.10-192.0.2.20 overlaps node network 192.0.2.0/25 in 192.0.2.10-192.0.2.20"]),
    (True, ("192.0.2.115-192.0.2.125",),
     ["load-balancer pool 192.0.2.115-192.0.2.125 overlaps DHCP range 192.0.2.100-192.0.2.119 "
      "in 192.0.2.115-192.0.2.119"]),
], ids=["l2-pool-in-node-network", "bgp-pool-in-node-network", "l2-pool-in-dhcp"])
def test_pools_share_the_node_network_only_under_layer2(layer2: bool, pools: tuple[str, ...],
                                                         expected: list[str]) -> None:
    assert _conflicts(layer2, pools) == expected


def test_each_overlapping_pair_is_named() -> None:
    found = _conflicts(pod_cidr="192.0.2.64/26", service_cidr="192.0.2.0/24")
    assert sorted(found) == sorted([
        "pod CIDR 192.0.2.64/26 overlaps node network 192.0.2.0/25 in 192.0.2.64-192.0.2.127",
        "pod CIDR 192.0.2.64/26 overlaps DHCP range 192.0.2.100-192.0.2.119 in 192.0.2.100-192.0.2.119",
        "service CIDR 192.0.2.0/24 overlaps node network 192.0.2.0/25 in 192.0.2.0-192.0.2.127",
        "service CIDR 192.0.2.0/24 overlaps DHCP range 192.0.2.100-192.0.2.119 in 192.0.2.100-192.0.2.119",
        "service CIDR 192.0.2.0/24 overlaps pod CIDR 192.0.2.64/26 in 192.0.2.64-192.0.2.127",
    ])


def test_two_node_networks_must_not_overlap() -> None:
    assert _conflicts(node_cidrs=[NODES, "192.0.2.0/24"], dhcp_ranges=[]) == [
        "node network 192.0.2.0/24 overlaps node network 192.0.2.0/25 in 192.0.2.0-192.0.2.127"]


def test_an_invalid_range_is_named() -> None:
    found = conflicts([PlannedRange("pod CIDR", "10.0.0.0/33")], layer2=False)
    assert len(found) == 1
    assert found[0].startswith("pod CIDR 10.0.0.0/33 is not valid")


def test_ipv4_and_ipv6_never_collide() -> None:
    assert _conflicts(pod_cidr="fd00:10:244::/56", service_cidr="fd00:10:96::/108") == []


@pytest.mark.parametrize("name", ["lab", "vsphere", "azure", "openstack", "onprem-metallb"])
def test_shipped_profiles_plan_disjoint_ranges(name: str) -> None:
    import yaml

    from tests.conftest import PROJECT_ROOT

    document = yaml.safe_load((PROJECT_ROOT / "profiles" / f"{name}.yaml").read_text())
    network = NetworkSpec(**document.get("network", {}))
    load_balancer = LoadBalancerSpec(**document.get("load_balancer", {}))
    layer2 = load_balancer.mode.endswith("-l2")
    assert conflicts(address_plan(network, load_balancer), layer2) == []
