"""Address ranges and load-balancer pools: parsing, counting, overlap (tables, and a brute-force cross-check)."""

from __future__ import annotations

import ipaddress
import random

import pytest

from kkp_readiness.addressing import (
    AddressRange,
    addresses_in,
    buggy_addresses,
    count_addresses,
    count_usable,
    merge,
    outside,
    overlaps,
    parse_range,
    parse_ranges,
    pool_from_object,
    subtract,
)


@pytest.mark.parametrize(("text", "first", "last", "size"), [
    ("192.0.2.0/28", "192.0.2.0", "192.0.2.15", 16),
    ("192.0.2.10-192.0.2.20", "192.0.2.10", "192.0.2.20", 11),
    (" 192.0.2.10 - 192.0.2.10 ", "192.0.2.10", "192.0.2.10", 1),
    ("192.0.2.7", "192.0.2.7", "192.0.2.7", 1),
    ("192.0.2.7/32", "192.0.2.7", "192.0.2.7", 1),
    ("192.0.2.5/30", "192.0.2.4", "192.0.2.7", 4),  # host bits set: the whole network, as MetalLB reads it
    ("10.0.0.0/8", "10.0.0.0", "10.255.255.255", 2**24),
    ("2001:db8::/126", "2001:db8::", "2001:db8::3", 4),
    ("2001:db8::10-2001:db8::1f", "2001:db8::10", "2001:db8::1f", 16),
])
def test_parse_range(text: str, first: str, last: str, size: int) -> None:
    span = parse_range(text)
    assert (str(span.first), str(span.last), span.size) == (first, last, size)
    assert span.source == text.strip()


@pytest.mark.parametrize("text", [
    "192.0.2.20-192.0.2.10",  # reversed
    "192.0.2.1-2001:db8::1",  # two families
    "192.0.2.0/33",
    "lab-pool",
    "",
    "192.0.2.300",
])
def test_bad_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_range(text)


def test_str_of_a_range() -> None:
    assert str(parse_range("192.0.2.0/31")) == "192.0.2.0-192.0.2.1"
    assert str(parse_range("192.0.2.9/32")) == "192.0.2.9"


@pytest.mark.parametrize(("texts", "count"), [
    ([], 0),
    (["192.0.2.10-192.0.2.20"], 11),
    (["192.0.2.10-192.0.2.20", "192.0.2.16/30"], 11),  # inside: counted once
    (["192.0.2.10-192.0.2.20", "192.0.2.21-192.0.2.22"], 13),  # adjacent
    (["192.0.2.0/24", "192.0.3.0/24"], 512),
    (["192.0.2.1", "192.0.2.1", "192.0.2.1/32"], 1),
    (["192.0.2.0/30", "2001:db8::/126"], 8),  # families never overlap
])
def test_count_addresses(texts: list[str], count: int) -> None:
    assert count_addresses(parse_ranges(texts)) == count


@pytest.mark.parametrize(("texts", "buggy"), [
    (["192.0.2.0/24"], 2),
    (["192.0.2.1-192.0.2.254"], 0),
    (["192.0.2.255-192.0.3.0"], 2),
    (["192.0.0.0/22"], 8),
    (["2001:db8::/120"], 0),  # an IPv4 notion only
])
def test_buggy_addresses(texts: list[str], buggy: int) -> None:
    assert buggy_addresses(parse_ranges(texts)) == buggy


def test_overlaps_outside_and_membership() -> None:
    pools = parse_ranges(["192.0.2.10-192.0.2.20", "198.51.100.0/30"])
    nodes = parse_ranges(["192.0.2.0/28"])
    found = overlaps(pools, nodes)
    assert [(a.source, b.source, str(common)) for a, b, common in found] == [
        ("192.0.2.10-192.0.2.20", "192.0.2.0/28", "192.0.2.10-192.0.2.15")]
    assert [str(part) for part in outside(pools, nodes)] == ["192.0.2.16-192.0.2.20", "198.51.100.0-198.51.100.3"]
    assert outside(parse_ranges(["192.0.2.4-192.0.2.6"]), nodes) == []
    assert addresses_in(pools, ["192.0.2.9", "192.0.2.10", "198.51.100.3", "2001:db8::1", "not-an-ip"]) == [
        "192.0.2.10", "198.51.100.3"]
    assert overlaps(parse_ranges(["2001:db8::/64"]), nodes) == []


# ------------------------------------------------------------------ pools


def _metallb(addresses: list[str], avoid: bool = False, name: str = "kkp") -> dict:
    return {"kind": "IPAddressPool", "metadata": {"name": name, "namespace": "metallb-system"},
            "spec": {"addresses": addresses, "avoidBuggyIPs": avoid}}


def _cilium(spec: dict, name: str = "lb") -> dict:
    return {"kind": "CiliumLoadBalancerIPPool", "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize(("obj", "size"), [
    (_metallb(["192.0.2.10-192.0.2.20"]), 11),
    (_metallb(["192.0.2.0/24"]), 256),
    (_metallb(["192.0.2.0/24"], avoid=True), 254),
    (_metallb(["192.0.2.0/24", "192.0.2.0/25"], avoid=True), 254),
    (_metallb(["192.0.2.10/32", "not an address"]), 1),
    (_cilium({"blocks": [{"cidr": "192.0.2.0/28"}, {"start": "192.0.2.100", "stop": "192.0.2.109"}]}), 26),
    (_cilium({"blocks": [{"start": "192.0.2.100"}]}), 1),
    (_cilium({"cidrs": [{"cidr": "192.0.2.0/28"}]}), 16),  # the older field
    (_cilium({"blocks": [{"cidr": "192.0.2.0/28"}], "allowFirstLastIPs": "No"}), 14),
    (_cilium({"blocks": [{"cidr": "192.0.2.0/31"}, {"cidr": "192.0.2.9/32"}], "allowFirstLastIPs": "No"}), 3),
    (_cilium({"blocks": [{"cidr": "192.0.2.0/28"}], "disabled": True}), 0),
])
def test_pool_sizes(obj: dict, size: int) -> None:
    assert pool_from_object(obj).size() == size


def test_pool_keeps_what_it_could_not_read() -> None:
    pool = pool_from_object(_metallb(["192.0.2.10/32", "not an address"], avoid=True))
    assert pool.invalid == ("not an address",)
    assert str(pool) == "IPAddressPool metallb-system/kkp"
    assert pool.to_dict() == {"pool": "IPAddressPool metallb-system/kkp", "ranges": ["192.0.2.10"], "addresses": 1,
                              "avoidBuggyIPs": True, "invalid": ["not an address"]}
    assert str(pool_from_object(_cilium({"blocks": [{"foo": 1}]}))) == "CiliumLoadBalancerIPPool lb"
    assert pool_from_object(_cilium({"blocks": [{"foo": 1}]})).invalid == ("{'foo': 1}",)


def test_unknown_pool_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="no load-balancer pool kind"):
        pool_from_object({"kind": "ConfigMap", "metadata": {"name": "x"}})


def test_pools_together_count_each_address_once() -> None:
    careful = pool_from_object(_metallb(["192.0.2.0/24"], avoid=True, name="careful"))
    plain = pool_from_object(_metallb(["192.0.2.0/25"], name="plain"))
    # .0 is offered by the plain pool, .255 by nobody.
    assert count_usable([careful, plain]) == 255
    assert count_usable([careful, careful]) == 254
    assert count_usable([]) == 0


# ------------------------------------------------------------------ cross-check against brute force


def _random_ranges(rng: random.Random, count: int) -> list[AddressRange]:
    base = int(ipaddress.IPv4Address("192.0.2.0"))
    ranges = []
    for _ in range(count):
        low = base + rng.randrange(0, 1200)
        ranges.append(AddressRange(4, low, low + rng.randrange(0, 300)))
    return ranges


def _addresses(ranges: list[AddressRange]) -> set[int]:
    return {value for span in ranges for value in range(span.low, span.high + 1)}


@pytest.mark.parametrize("case", range(40))
def test_interval_arithmetic_matches_brute_force(case: int) -> None:
    rng = random.Random(case)
    a, b = _random_ranges(rng, rng.randrange(0, 6)), _random_ranges(rng, rng.randrange(0, 6))
    assert count_addresses(a) == len(_addresses(a))
    assert _addresses(merge(a)) == _addresses(a)
    assert all(x.high + 1 < y.low for x, y in zip(merge(a), merge(a)[1:], strict=False))
    assert _addresses(subtract(a, b)) == _addresses(a) - _addresses(b)
    common = {value for _, _, part in overlaps(a, b) for value in range(part.low, part.high + 1)}
    assert common == _addresses(a) & _addresses(b)
    assert buggy_addresses(a) == sum(1 for value in _addresses(a) if value % 256 in (0, 255))


@pytest.mark.parametrize("case", range(20))
def test_usable_count_matches_brute_force(case: int) -> None:
    rng = random.Random(1000 + case)
    pools, offered = [], set()
    for index in range(rng.randrange(1, 5)):
        ranges = _random_ranges(rng, rng.randrange(1, 4))
        avoid = rng.random() < 0.5
        texts = [f"{r.first}-{r.last}" for r in ranges]
        pools.append(pool_from_object(_metallb(texts, avoid=avoid, name=f"p{index}")))
        offered |= {v for v in _addresses(ranges) if not (avoid and v % 256 in (0, 255))}
    assert count_usable(pools) == len(offered)
