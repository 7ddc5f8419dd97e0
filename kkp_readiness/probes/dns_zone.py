"""DNS zone probe: which zone holds a name, asked of one named DNS server, with its SOA and NS records.

Why a probe of its own: INFRA-008 asks whether the base domain lives in a zone somebody can edit,
that is whether a DNS server the profile lists serves the zone's SOA (and NS) records. Address
records alone (what :mod:`kkp_readiness.probes.dns` asks for) can come from static overrides of a
forwarder that holds no zone at all.

The zone apex is found the way ``dig +trace``-free tools do it: ask ``SOA`` for the name; an SOA
in the answer names the apex itself, an SOA in the authority section of a NODATA or NXDOMAIN
answer names the zone that holds the name; without either, ask the parent, up to the top-level
label (the root is never asked: the root zone is nobody's to edit). Then ask ``NS`` at the apex.
Like the address probe, it talks to exactly one server and never recurses itself.

>>> zone = find_zone("kkp.example.com", DnsServer.parse("192.0.2.53"), timeout=2.0)
>>> zone.apex, zone.nameservers
('example.com', ('ns1.example.com', 'ns2.example.com'))
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from kkp_readiness.probes.dns import DnsServer, checked_question, exchange

__all__ = ["ZoneAnswer", "find_zone"]


@dataclass(frozen=True)
class ZoneAnswer:
    """What one server told about the zone holding ``name``, as plain data.

    ``apex`` is the zone's name (None when no SOA was found below the root), ``soa`` the SOA
    record's data as text, ``nameservers`` the NS targets at the apex; ``steps`` lists each
    question asked (``"SOA kkp.example.com: NOERROR, SOA of example.com in authority"``).
    ``status`` is REFUSED or SERVFAIL when the server gave that instead of an answer, else NOERROR.
    """

    name: str
    server: str
    status: str
    apex: str | None
    soa: str | None
    nameservers: tuple[str, ...]
    steps: tuple[str, ...] = field(default=())
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["nameservers"] = list(self.nameservers)
        data["steps"] = list(self.steps)
        return data


def _ask(name: dns.name.Name, rdtype: str, server: DnsServer, timeout: float) -> dns.message.Message:
    """One question, bounded by ``timeout`` (``dns.exchange``: UDP, once more if lost, TCP when truncated)."""
    return exchange(dns.message.make_query(name, rdtype), server, timeout)


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True) or "."


def _soa_in(response: dns.message.Message) -> tuple[dns.name.Name, str] | None:
    """(owner, data) of the SOA in the answer, else in the authority section, else None."""
    for section in (response.answer, response.authority):
        for rrset in section:
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset.name, next(iter(rrset)).to_text()
    return None


def find_zone(name: str, server: DnsServer, timeout: float = 3.0) -> ZoneAnswer:
    """Walk up from ``name`` asking ``server`` for SOA until a zone names itself; then ask its NS.

    ``timeout`` bounds each question (at most one per label of ``name``, plus the NS question).
    REFUSED and SERVFAIL end the walk and come back as ``status``; no reply at all raises
    DnsProbeError, as :func:`kkp_readiness.probes.dns.resolve` does.
    """
    current = checked_question(name, timeout)
    start = time.monotonic()
    steps: list[str] = []

    def answer(status: str, apex: str | None = None, soa: str | None = None,
               nameservers: tuple[str, ...] = ()) -> ZoneAnswer:
        return ZoneAnswer(name, str(server), status, apex, soa, nameservers, tuple(steps),
                          round((time.monotonic() - start) * 1000.0, 3))

    while len(current) > 1:  # "kkp.example.com." has 4 labels with the root; stop before the root
        response = _ask(current, "SOA", server, timeout)
        rcode = dns.rcode.to_text(response.rcode())
        found = _soa_in(response)
        steps.append(f"SOA {_text(current)}: {rcode}"
                     + (f", SOA of {_text(found[0])}" if found else ", no SOA"))
        if rcode in ("REFUSED", "SERVFAIL"):
            return answer(rcode)
        if found is not None:
            owner, soa = found
            if len(owner) <= 1:  # only the root zone answers for it: no zone of the site holds the name
                return answer("NOERROR")
            ns = _ask(owner, "NS", server, timeout)
            names = sorted({_text(rd.target) for rrset in ns.answer if rrset.name == owner
                            and rrset.rdtype == dns.rdatatype.NS for rd in rrset})
            steps.append(f"NS {_text(owner)}: {dns.rcode.to_text(ns.rcode())}, {len(names)} record(s)")
            return answer("NOERROR", _text(owner), soa, tuple(names))
        current = current.parent()
    return answer("NOERROR")
