"""Property-based tests of the address arithmetic: the NET-003 plan, range parsing, counting, containment.

The example tables live in test_address_plan.py and test_addressing.py; here hypothesis generates
plans and ranges (IPv4 and IPv6, CIDRs, a-b ranges, single addresses) and every expectation is
computed independently: from how the input was constructed, or with Python's :mod:`ipaddress`.
Runs are deterministic (``derandomize``, no example database), so CI sees the same examples each time.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kkp_readiness.address_plan import (
    DHCP,
    NODE,
    POD,
    POOL,
    SERVICE,
    PlannedRange,
    address_plan,
    conflicts,
    may_overlap,
)
from kkp_readiness.addressing import (
    count_addresses,
    outside,
    parse_range,
    parse_ranges,
    pool_from_object,
)
from kkp_readiness.profile_model import LoadBalancerSpec, NetworkSpec

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

ROLES = (NODE, DHCP, POD, SERVICE, POOL)
NETWORK = {4: ipaddress.IPv4Network, 6: ipaddress.IPv6Network}
ADDRESS = {4: ipaddress.IPv4Address, 6: ipaddress.IPv6Address}
EVERYTHING = {4: ipaddress.IPv4Network("0.0.0.0/0"), 6: ipaddress.IPv6Network("::/0")}
# Small universes, so that random ranges collide often. ::a00:0/118 is ::10.0.0.0/118: the same integers
# as 10.0.0.0/22, which only the IP family tells apart.
CROWDED = (ipaddress.IPv4Network("10.0.0.0/22"), ipaddress.IPv6Network("2001:db8::/118"),
           ipaddress.IPv6Network("::a00:0/118"))


def allowed(first: str, second: str, layer2: bool) -> bool:
    """The module docstring of address_plan, restated: DHCP in a node network; a pool there only under Layer 2."""
    return {first, second} == {DHCP, NODE} or (layer2 and {first, second} == {POOL, NODE})


@dataclass(frozen=True)
class Span:
    """A range as generated: its text and the bounds it was built from (not parsed from the text)."""

    text: str
    version: int
    low: int
    high: int

    def address(self, value: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ADDRESS[self.version](value)


def _span_text(version: int, low: int, high: int) -> str:
    """How AddressRange names a span: one address, or first-last."""
    first, last = ADDRESS[version](low), ADDRESS[version](high)
    return str(first) if low == high else f"{first}-{last}"


def _net_bounds(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int]:
    return int(net.network_address), int(net.broadcast_address)


@st.composite
def spans_in(draw: st.DrawFn, universe: ipaddress.IPv4Network | ipaddress.IPv6Network,
             kinds: tuple[str, ...] = ("cidr", "range", "address"), host_bits: bool = False,
             containing: int | None = None) -> Span:
    """A CIDR, a-b range or address inside ``universe`` (containing the address ``containing`` if given)."""
    version, (low, high) = universe.version, _net_bounds(universe)
    kind = draw(st.sampled_from(kinds))
    pivot = draw(st.integers(low, high)) if containing is None else containing
    if kind == "cidr":
        prefix = draw(st.integers(universe.prefixlen, universe.max_prefixlen))
        net = NETWORK[version]((pivot, prefix), strict=False)
        text = f"{ADDRESS[version](pivot)}/{prefix}" if host_bits and draw(st.booleans()) else str(net)
        return Span(text, version, *_net_bounds(net))
    if kind == "range":
        first, last = draw(st.integers(low, pivot)), draw(st.integers(pivot, high))
        dash = draw(st.sampled_from(["-", " - "]))
        return Span(f"{ADDRESS[version](first)}{dash}{ADDRESS[version](last)}", version, first, last)
    return Span(str(ADDRESS[version](pivot)), version, pivot, pivot)


families = st.sampled_from([4, 6])
anywhere = families.flatmap(lambda version: spans_in(EVERYTHING[version], host_bits=True))
crowded = st.sampled_from(CROWDED).flatmap(spans_in)
INVALID = ["10.0.0.0/33", "2001:db8::/129", "10.0.0.9-10.0.0.1", "10.0.0.1-2001:db8::1", "lab-pool", "",
           "10.0.0.300", "10.0.0.0/24-10.0.1.0"]


# ------------------------------------------------------------------ parse_range


@PROPERTY
@given(anywhere)
def test_parse_range_gives_the_bounds_it_was_built_from_and_round_trips(span: Span) -> None:
    parsed = parse_range(span.text)
    assert (parsed.version, parsed.low, parsed.high) == (span.version, span.low, span.high)
    assert parsed.size == span.high - span.low + 1
    assert parsed.source == span.text.strip()
    assert str(parsed) == _span_text(span.version, span.low, span.high)
    assert parse_range(str(parsed)) == parsed
    assert parse_range(f"  {span.text}\t") == parsed


@PROPERTY
@given(families.flatmap(lambda v: st.tuples(st.just(v), st.integers(*_net_bounds(EVERYTHING[v])),
                                            st.integers(*_net_bounds(EVERYTHING[v])))))
def test_a_range_that_ends_before_it_starts_is_refused(case: tuple[int, int, int]) -> None:
    version, first, last = case
    first, last = min(first, last), max(first, last)
    text = f"{ADDRESS[version](last)}-{ADDRESS[version](first)}"
    if first == last:
        assert parse_range(text).size == 1
        return
    try:
        parse_range(text)
    except ValueError:
        return
    raise AssertionError(f"{text!r} was accepted although it starts after its end")


@PROPERTY
@given(spans_in(EVERYTHING[4], kinds=("address",)), spans_in(EVERYTHING[6], kinds=("address",)), st.booleans())
def test_a_range_of_two_families_is_refused(v4: Span, v6: Span, v4_first: bool) -> None:
    text = f"{v4.text}-{v6.text}" if v4_first else f"{v6.text}-{v4.text}"
    try:
        parse_range(text)
    except ValueError:
        return
    raise AssertionError(f"{text!r} was accepted although it mixes IPv4 and IPv6")


# ------------------------------------------------------------------ counting and containment


def _networks(spans: list[Span], version: int) -> list:
    """The spans of one family as CIDRs, merged by ipaddress (not by the code under test)."""
    pieces = [net for s in spans if s.version == version
              for net in ipaddress.summarize_address_range(s.address(s.low), s.address(s.high))]
    return list(ipaddress.collapse_addresses(pieces))


def _ipaddress_count(spans: list[Span]) -> int:
    return sum(net.num_addresses for version in (4, 6) for net in _networks(spans, version))


@PROPERTY
@given(st.lists(anywhere | crowded, max_size=6))
def test_count_addresses_equals_the_size_ipaddress_computes(spans: list[Span]) -> None:
    assert count_addresses(parse_ranges([s.text for s in spans])) == _ipaddress_count(spans)


@PROPERTY
@given(st.lists(crowded, max_size=5), st.lists(st.sampled_from(CROWDED).flatmap(
    lambda u: spans_in(u, kinds=("cidr",))), max_size=4))
def test_outside_is_exactly_what_no_cidr_covers(pools: list[Span], cidrs: list[Span]) -> None:
    """LB-003's rule 'a Layer 2 pool lies inside the node networks', against ipaddress."""
    parts = outside(parse_ranges([p.text for p in pools]), parse_ranges([c.text for c in cidrs]))
    # |P \ N| = |P ∪ N| - |N|
    assert count_addresses(parts) == _ipaddress_count(pools + cidrs) - _ipaddress_count(cidrs)
    covered = {v: _networks(cidrs, v) for v in (4, 6)}
    for part in parts:
        for net in ipaddress.summarize_address_range(part.first, part.last):
            assert not any(net.overlaps(c) for c in covered[part.version]), f"{part} is covered by {cidrs}"
    inside = all(any(net.subnet_of(c) for c in covered[p.version])
                 for p in pools for net in ipaddress.summarize_address_range(p.address(p.low), p.address(p.high)))
    assert (parts == []) == inside


@st.composite
def carved(draw: st.DrawFn, base: ipaddress.IPv4Network | ipaddress.IPv6Network, splits: int = 8,
           deepest: int | None = None) -> list:
    """Disjoint CIDRs covering ``base``: split a random block in halves, ``splits`` times at most."""
    deepest = base.max_prefixlen if deepest is None else deepest
    blocks = [base]
    for _ in range(draw(st.integers(0, splits))):
        divisible = [i for i, b in enumerate(blocks) if b.prefixlen < deepest]
        if not divisible:
            break
        index = draw(st.sampled_from(divisible))
        blocks[index:index + 1] = list(blocks[index].subnets())
    return blocks


@st.composite
def base_networks(draw: st.DrawFn, version: int | None = None) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    version = draw(families) if version is None else version
    low, high = _net_bounds(EVERYTHING[version])
    prefix = draw(st.integers(8, 30) if version == 4 else st.integers(16, 126))
    return NETWORK[version]((draw(st.integers(low, high)), prefix), strict=False)


@PROPERTY
@given(base_networks().flatmap(carved), st.data())
def test_cilium_pool_size_with_and_without_first_and_last(blocks: list, data: st.DataObject) -> None:
    chosen = data.draw(st.lists(st.sampled_from(blocks), min_size=1, unique=True))
    spec = {"blocks": [{"cidr": str(b)} for b in chosen]}
    obj = {"kind": "CiliumLoadBalancerIPPool", "metadata": {"name": "p"}, "spec": spec}
    assert pool_from_object(obj).size() == sum(b.num_addresses for b in chosen)
    obj["spec"] = {**spec, "allowFirstLastIPs": "No"}
    assert pool_from_object(obj).size() == sum(b.num_addresses - 2 if b.num_addresses > 2 else b.num_addresses
                                               for b in chosen)


@PROPERTY
@given(st.lists(spans_in(EVERYTHING[6]), min_size=1, max_size=4))
def test_avoid_buggy_ips_leaves_ipv6_pools_whole(spans: list[Span]) -> None:
    obj = {"kind": "IPAddressPool", "metadata": {"name": "p"},
           "spec": {"addresses": [s.text for s in spans], "avoidBuggyIPs": True}}
    assert pool_from_object(obj).size() == _ipaddress_count(spans)


# ------------------------------------------------------------------ NET-003: the plan and its conflicts


@PROPERTY
@given(st.sampled_from(ROLES), st.sampled_from(ROLES), st.booleans())
def test_may_overlap_is_the_documented_table(first: str, second: str, layer2: bool) -> None:
    assert may_overlap(first, second, layer2) == may_overlap(second, first, layer2) == allowed(first, second, layer2)


@st.composite
def overlapping_pairs(draw: st.DrawFn) -> tuple[Span, Span, int]:
    """Two ranges built around one address they both hold (anywhere in IPv4 or IPv6), and that address."""
    universe = EVERYTHING[draw(families)] if draw(st.booleans()) else draw(st.sampled_from(CROWDED))
    shared = draw(st.integers(*_net_bounds(universe)))
    return draw(spans_in(universe, containing=shared)), draw(spans_in(universe, containing=shared)), shared


def _common_by_ipaddress(one: Span, two: Span) -> str:
    """The addresses two spans share, as ipaddress finds them: the smaller of each overlapping pair of CIDRs."""
    common = [x if x.subnet_of(y) else y
              for x in ipaddress.summarize_address_range(one.address(one.low), one.address(one.high))
              for y in ipaddress.summarize_address_range(two.address(two.low), two.address(two.high))
              if x.overlaps(y)]
    merged = list(ipaddress.collapse_addresses(common))
    first, last = merged[0].network_address, merged[-1].broadcast_address
    return str(first) if first == last else f"{first}-{last}"


ROLE_PAIRS = [(a, b, layer2) for a in ROLES for b in ROLES for layer2 in (False, True)]


@PROPERTY
@given(overlapping_pairs(), st.sampled_from([p for p in ROLE_PAIRS if not allowed(*p)]))
def test_an_overlap_of_roles_that_must_be_disjoint_is_named_with_its_span(
        pair: tuple[Span, Span, int], roles: tuple[str, str, bool]) -> None:
    (one, two, shared), (first_role, second_role, layer2) = pair, roles
    first, second = PlannedRange(first_role, one.text), PlannedRange(second_role, two.text)
    low, high = max(one.low, two.low), min(one.high, two.high)
    assert low <= shared <= high
    assert conflicts([first, second], layer2) == [f"{second} overlaps {first} in {_common_by_ipaddress(one, two)}"]
    assert conflicts([second, first], layer2) == [f"{first} overlaps {second} in {_common_by_ipaddress(one, two)}"]


@PROPERTY
@given(overlapping_pairs(), st.sampled_from([p for p in ROLE_PAIRS if allowed(*p)]))
def test_an_allowed_overlap_is_no_conflict(pair: tuple[Span, Span, int], roles: tuple[str, str, bool]) -> None:
    (one, two, _), (first_role, second_role, layer2) = pair, roles
    assert conflicts([PlannedRange(first_role, one.text), PlannedRange(second_role, two.text)], layer2) == []


def _render(draw: st.DrawFn, block: ipaddress.IPv4Network | ipaddress.IPv6Network, cidr_only: bool = False) -> str:
    """A text naming ``block`` or a part of it: its CIDR, an a-b range inside it, or one address in it."""
    return draw(spans_in(block, kinds=("cidr",) if cidr_only else ("cidr", "range", "address"))).text


@st.composite
def disjoint_plans(draw: st.DrawFn) -> tuple[NetworkSpec, LoadBalancerSpec, bool]:
    """A plan carved from an IPv4 and an IPv6 base: disjoint blocks, plus only the nestings the docstring allows."""
    layer2 = draw(st.booleans())
    blocks = draw(base_networks(4).flatmap(lambda b: carved(b, deepest=32))) + \
        draw(base_networks(6).flatmap(lambda b: carved(b, deepest=128)))
    blocks = draw(st.permutations(blocks))
    plan: dict[str, list[str]] = {NODE: [], DHCP: [], POD: [], SERVICE: [], POOL: []}
    for block in blocks:
        role = draw(st.sampled_from([NODE, NODE, DHCP, POOL, POD, SERVICE, None]))
        if role in (POD, SERVICE) and plan[role]:
            role = NODE
        if role is None:
            continue
        if role != NODE:
            plan[role].append(_render(draw, block, cidr_only=role in (POD, SERVICE)))
            continue
        plan[NODE].append(str(block))
        # Inside a node network: DHCP ranges, and under Layer 2 pools, in disjoint parts of it.
        for part in draw(carved(block, splits=4)):
            inner = draw(st.sampled_from([None, DHCP, POOL] if layer2 else [None, DHCP]))
            if inner is not None:
                plan[inner].append(_render(draw, part))
    network = NetworkSpec(node_cidrs=plan[NODE], dhcp_ranges=plan[DHCP], pod_cidr=next(iter(plan[POD]), None),
                          service_cidr=next(iter(plan[SERVICE]), None))
    return network, LoadBalancerSpec(address_pools=plan[POOL]), layer2


@PROPERTY
@given(disjoint_plans())
def test_a_plan_disjoint_by_construction_has_no_conflict(case: tuple[NetworkSpec, LoadBalancerSpec, bool]) -> None:
    network, load_balancer, layer2 = case
    plan = address_plan(network, load_balancer)
    assert [(entry.role, entry.text) for entry in plan] == [
        *((NODE, t) for t in network.node_cidrs), *((DHCP, t) for t in network.dhcp_ranges),
        *((POD, t) for t in [network.pod_cidr] if t), *((SERVICE, t) for t in [network.service_cidr] if t),
        *((POOL, t) for t in load_balancer.address_pools)]
    assert conflicts(plan, layer2) == []


@PROPERTY
@given(st.sampled_from(CROWDED), st.data())
def test_a_layer2_pool_may_share_the_node_network_but_never_a_dhcp_range(
        universe: ipaddress.IPv4Network | ipaddress.IPv6Network, data: st.DataObject) -> None:
    low, high = _net_bounds(universe)
    shared = data.draw(st.integers(low, high))
    dhcp, pool = (data.draw(spans_in(universe, kinds=("range", "address"), containing=shared)) for _ in "ab")
    nodes = PlannedRange(NODE, str(universe))
    plan = [nodes, PlannedRange(DHCP, dhcp.text), PlannedRange(POOL, pool.text)]
    common = _span_text(universe.version, max(dhcp.low, pool.low), min(dhcp.high, pool.high))
    assert conflicts(plan, layer2=True) == [f"{plan[2]} overlaps {plan[1]} in {common}"]
    in_nodes = _span_text(universe.version, pool.low, pool.high)
    assert conflicts(plan, layer2=False) == [f"{plan[2]} overlaps {nodes} in {in_nodes}",
                                             f"{plan[2]} overlaps {plan[1]} in {common}"]


planned = st.tuples(st.sampled_from(ROLES), crowded).map(lambda rs: (PlannedRange(rs[0], rs[1].text), rs[1]))


def _expected(entries: list[tuple[PlannedRange, Span]], layer2: bool) -> list[str]:
    """conflicts() by its definition: every later entry against every earlier one, spans from the construction."""
    found = []
    for index, (entry, span) in enumerate(entries):
        for other, other_span in entries[index + 1:]:
            low, high = max(span.low, other_span.low), min(span.high, other_span.high)
            if span.version == other_span.version and low <= high and not allowed(entry.role, other.role, layer2):
                found.append(f"{other} overlaps {entry} in {_span_text(span.version, low, high)}")
    return found


@PROPERTY
@given(st.lists(planned, max_size=7), st.booleans())
def test_conflicts_are_every_forbidden_overlapping_pair(entries: list[tuple[PlannedRange, Span]],
                                                        layer2: bool) -> None:
    assert conflicts([entry for entry, _ in entries], layer2) == _expected(entries, layer2)


def _unordered(problems: list[str]) -> Counter:
    """A conflict without the order of its two ranges (which follows the plan's order)."""
    keys = []
    for problem in problems:
        if " is not valid: " in problem:
            keys.append(problem)
            continue
        pair, _, span = problem.rpartition(" in ")
        later, _, earlier = pair.partition(" overlaps ")
        keys.append((frozenset([later, earlier]), span))
    return Counter(keys)


@PROPERTY
@given(st.lists(st.one_of(planned.map(lambda p: p[0]),
                          st.tuples(st.sampled_from(ROLES), st.sampled_from(INVALID)).map(
                              lambda rs: PlannedRange(*rs))), max_size=7),
       st.booleans(), st.data())
def test_conflicts_do_not_depend_on_the_order_of_the_plan(plan: list[PlannedRange], layer2: bool,
                                                          data: st.DataObject) -> None:
    found = conflicts(plan, layer2)
    assert _unordered(conflicts(data.draw(st.permutations(plan)), layer2)) == _unordered(found)
    invalid = [entry for entry in plan if entry.text in INVALID]
    assert sorted(p for p in found if " is not valid: " in p) == sorted(
        p for p in found if any(p.startswith(f"{entry} is not valid: ") for entry in invalid))
    assert sum(" is not valid: " in p for p in found) == len(invalid)
    valid = [entry for entry in plan if entry.text not in INVALID]
    assert [p for p in found if " is not valid: " not in p] == conflicts(valid, layer2)
