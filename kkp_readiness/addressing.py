"""Address ranges of the site's plan and of load-balancer pools: parse, count, overlap. Pure.

One representation for everything the LB and NET checks compare: an :class:`AddressRange` is an
inclusive first-last span of one IP family, parsed from a CIDR (``192.0.2.0/28``), a range
(``192.0.2.10-192.0.2.20``) or one address. A :class:`Pool` is what a MetalLB ``IPAddressPool``
or a Cilium ``CiliumLoadBalancerIPPool`` object offers, read with :func:`pool_from_object`.

>>> count_addresses([parse_range("192.0.2.10-192.0.2.20"), parse_range("192.0.2.16/30")])
11
>>> [str(part) for _, _, part in overlaps(parse_ranges(["192.0.2.0/28"]), parse_ranges(["192.0.2.10-192.0.2.40"]))]
['192.0.2.10-192.0.2.15']
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, order=True)
class AddressRange:
    """The inclusive span ``first``-``last`` of one IP family (``source``: the text it came from)."""

    version: int
    low: int
    high: int
    source: str = field(default="", compare=False)

    @classmethod
    def of(cls, first: IPAddress, last: IPAddress, source: str = "") -> AddressRange:
        if first.version != last.version:
            raise ValueError(f"{source or f'{first}-{last}'}: mixes IPv4 and IPv6")
        if int(first) > int(last):
            raise ValueError(f"{source or f'{first}-{last}'}: the range starts after its end")
        return cls(first.version, int(first), int(last), source or f"{first}-{last}")

    @property
    def first(self) -> IPAddress:
        return ipaddress.ip_address(self.low) if self.version == 4 else ipaddress.IPv6Address(self.low)

    @property
    def last(self) -> IPAddress:
        return ipaddress.ip_address(self.high) if self.version == 4 else ipaddress.IPv6Address(self.high)

    @property
    def size(self) -> int:
        return self.high - self.low + 1

    def __str__(self) -> str:
        return str(self.first) if self.size == 1 else f"{self.first}-{self.last}"

    def contains(self, address: str | IPAddress) -> bool:
        ip = ipaddress.ip_address(address)
        return ip.version == self.version and self.low <= int(ip) <= self.high

    def intersection(self, other: AddressRange) -> AddressRange | None:
        if other.version != self.version:
            return None
        low, high = max(self.low, other.low), min(self.high, other.high)
        return AddressRange(self.version, low, high) if low <= high else None


def parse_range(text: str) -> AddressRange:
    """A CIDR, an inclusive ``first-last`` range or one address; ValueError when it is none of them.

    A CIDR with host bits set (``192.0.2.5/24``) means its whole network, as MetalLB reads it.

    >>> str(parse_range("192.0.2.0/30")), parse_range("192.0.2.0/30").size
    ('192.0.2.0-192.0.2.3', 4)
    """
    value = str(text).strip()
    try:
        if "-" in value:
            first, last = (ipaddress.ip_address(part.strip()) for part in value.split("-", 1))
            return AddressRange.of(first, last, value)
        if "/" in value:
            network = ipaddress.ip_network(value, strict=False)
            return AddressRange.of(network.network_address, network.broadcast_address, value)
        address = ipaddress.ip_address(value)
        return AddressRange.of(address, address, value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR, an address range or an address ({exc})") from None


def parse_ranges(texts: Iterable[str]) -> list[AddressRange]:
    return [parse_range(text) for text in texts]


# ------------------------------------------------------------------ interval arithmetic


def merge(ranges: Iterable[AddressRange]) -> list[AddressRange]:
    """The union of ``ranges`` as sorted, disjoint, non-adjacent spans."""
    merged: list[AddressRange] = []
    for item in sorted(AddressRange(r.version, r.low, r.high) for r in ranges):
        if merged and merged[-1].version == item.version and item.low <= merged[-1].high + 1:
            last = merged[-1]
            merged[-1] = AddressRange(last.version, last.low, max(last.high, item.high))
        else:
            merged.append(item)
    return merged


def subtract(ranges: Iterable[AddressRange], remove: Iterable[AddressRange]) -> list[AddressRange]:
    """The addresses of ``ranges`` that are not in ``remove``, as disjoint spans."""
    holes = merge(remove)
    result: list[AddressRange] = []
    for span in merge(ranges):
        pieces = [span]
        for hole in holes:
            if hole.version != span.version:
                continue
            next_pieces = []
            for piece in pieces:
                if hole.high < piece.low or hole.low > piece.high:
                    next_pieces.append(piece)
                    continue
                if piece.low < hole.low:
                    next_pieces.append(AddressRange(piece.version, piece.low, hole.low - 1))
                if hole.high < piece.high:
                    next_pieces.append(AddressRange(piece.version, hole.high + 1, piece.high))
            pieces = next_pieces
        result.extend(pieces)
    return result


def count_addresses(ranges: Iterable[AddressRange]) -> int:
    """How many distinct addresses ``ranges`` hold together (overlaps counted once)."""
    return sum(span.size for span in merge(ranges))


def _count_congruent(low: int, high: int, residue: int, modulus: int = 256) -> int:
    """How many integers in [low, high] are ``residue`` modulo ``modulus``."""
    return (high - residue) // modulus - (low - 1 - residue) // modulus


def buggy_addresses(ranges: Iterable[AddressRange]) -> int:
    """IPv4 addresses ending in .0 or .255 in ``ranges`` (what MetalLB's ``avoidBuggyIPs`` skips)."""
    return sum(_count_congruent(s.low, s.high, 0) + _count_congruent(s.low, s.high, 255)
               for s in merge(ranges) if s.version == 4)


def overlaps(ranges: Sequence[AddressRange], others: Sequence[AddressRange]
             ) -> list[tuple[AddressRange, AddressRange, AddressRange]]:
    """Every (range, other, common part) where a range of ``ranges`` meets one of ``others``."""
    found = []
    for item in ranges:
        for other in others:
            common = item.intersection(other)
            if common is not None:
                found.append((item, other, common))
    return found


def addresses_in(ranges: Sequence[AddressRange], addresses: Iterable[str]) -> list[str]:
    """Those of ``addresses`` that lie in one of ``ranges`` (unparsable ones are ignored)."""
    inside = []
    for address in addresses:
        try:
            if any(r.contains(address) for r in ranges):
                inside.append(address)
        except ValueError:
            continue
    return inside


def outside(ranges: Iterable[AddressRange], containers: Iterable[AddressRange]) -> list[AddressRange]:
    """The parts of ``ranges`` that no range of ``containers`` covers."""
    return subtract(ranges, containers)


# ------------------------------------------------------------------ load-balancer pools


@dataclass(frozen=True)
class Pool:
    """The addresses one pool object offers for Services of type LoadBalancer."""

    kind: str
    name: str
    namespace: str | None
    ranges: tuple[AddressRange, ...]
    #: MetalLB ``avoidBuggyIPs``: addresses ending in .0 and .255 are never handed out.
    avoid_buggy: bool = False
    #: Cilium ``disabled``: the pool hands out nothing.
    disabled: bool = False
    #: Entries that are no address, range or CIDR (the controller rejects or ignores them).
    invalid: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def usable(self) -> tuple[AddressRange, ...]:
        return () if self.disabled else self.ranges

    def size(self) -> int:
        return count_usable([self])

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "pool": str(self),
            "ranges": [str(r) for r in self.ranges],
            "addresses": self.size(),
            **({"avoidBuggyIPs": True} if self.avoid_buggy else {}),
            **({"disabled": True} if self.disabled else {}),
            **({"invalid": list(self.invalid)} if self.invalid else {}),
        }


def count_usable(pools: Iterable[Pool]) -> int:
    """Distinct addresses the pools can hand out together (overlapping pools counted once).

    An address counts when some pool offers it; under ``avoidBuggyIPs`` a .0/.255 address
    counts only when another pool without that setting also offers it.
    """
    pools = list(pools)
    plain = [r for p in pools if not p.avoid_buggy for r in p.usable]
    careful = [r for p in pools if p.avoid_buggy for r in p.usable]
    return count_addresses(plain + careful) - buggy_addresses(subtract(careful, plain))


def _metallb_ranges(spec: dict[str, Any]) -> tuple[list[AddressRange], list[str]]:
    ranges, invalid = [], []
    for entry in spec.get("addresses") or []:
        try:
            ranges.append(parse_range(entry))
        except ValueError:
            invalid.append(str(entry))
    return ranges, invalid


def _cilium_ranges(spec: dict[str, Any]) -> tuple[list[AddressRange], list[str]]:
    """``spec.blocks`` (and the older ``spec.cidrs``): ``{cidr}`` or ``{start, stop}`` entries.

    ``allowFirstLastIPs: "No"`` keeps the first and last address of each CIDR block out (not of
    /31, /32, /127, /128 blocks, as Cilium does); unset, they are counted.
    """
    ranges, invalid = [], []
    trim = str(spec.get("allowFirstLastIPs", "")).lower() == "no"
    for entry in [*(spec.get("blocks") or []), *(spec.get("cidrs") or [])]:
        entry = entry if isinstance(entry, dict) else {"cidr": entry}
        try:
            if entry.get("cidr"):
                span = parse_range(entry["cidr"])
                if trim and span.size > 2:
                    span = AddressRange(span.version, span.low + 1, span.high - 1, span.source)
            elif entry.get("start"):
                text = f"{entry['start']}-{entry.get('stop') or entry['start']}"
                span = parse_range(text)
            else:
                raise ValueError(entry)
        except (ValueError, TypeError):
            invalid.append(str(entry.get("cidr") or entry))
            continue
        ranges.append(span)
    return ranges, invalid


def pool_from_object(obj: dict[str, Any]) -> Pool:
    """A MetalLB ``IPAddressPool`` or a Cilium ``CiliumLoadBalancerIPPool`` object as a Pool.

    >>> pool_from_object({"kind": "IPAddressPool", "metadata": {"name": "kkp", "namespace": "metallb-system"},
    ...                   "spec": {"addresses": ["192.0.2.0/30", "192.0.2.10-192.0.2.11"]}}).size()
    6
    """
    kind = str(obj.get("kind") or "")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    if kind == "CiliumLoadBalancerIPPool":
        ranges, invalid = _cilium_ranges(spec)
        return Pool(kind, meta.get("name", "?"), meta.get("namespace"), tuple(ranges),
                    disabled=bool(spec.get("disabled")), invalid=tuple(invalid), labels=meta.get("labels") or {})
    if kind == "IPAddressPool":
        ranges, invalid = _metallb_ranges(spec)
        return Pool(kind, meta.get("name", "?"), meta.get("namespace"), tuple(ranges),
                    avoid_buggy=bool(spec.get("avoidBuggyIPs")), invalid=tuple(invalid),
                    labels=meta.get("labels") or {})
    raise ValueError(f"{kind or 'an object without kind'} is no load-balancer pool kind this suite reads")


def is_ip(text: str) -> bool:
    """True for an IPv4 or IPv6 address literal (not a host name)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
