"""find_zone's walk up to the zone apex, against scripted replies (no sockets: _ask is replaced)."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest

from kkp_readiness.probes import dns_zone
from kkp_readiness.probes.dns import DnsServer
from kkp_readiness.probes.dns_zone import find_zone

SERVER = DnsServer("127.0.0.1", 5353)
SOA = "ns1.example.com. hostmaster.example.com. 1 3600 600 604800 60"


def _reply(rcode: int = dns.rcode.NOERROR, answer: tuple[str, str, str] | None = None,
           authority: tuple[str, str, str] | None = None) -> dns.message.Message:
    message = dns.message.make_response(dns.message.make_query("x.", "SOA"))
    message.set_rcode(rcode)
    for section, record in ((message.answer, answer), (message.authority, authority)):
        if record:
            owner, kind, *data = record
            section.append(dns.rrset.from_text(owner, 60, "IN", kind, *data))
    return message


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[tuple[str, str], dns.message.Message], list[str]]:
    """Replies by (name, type); names asked that have no scripted reply get an empty NOERROR."""
    replies: dict[tuple[str, str], dns.message.Message] = {}
    asked: list[str] = []

    def ask(name: dns.name.Name, rdtype: str, server: DnsServer, timeout: float) -> dns.message.Message:
        key = (name.to_text(omit_final_dot=True), rdtype)
        asked.append(f"{key[1]} {key[0]}")
        return replies.get(key, _reply())

    monkeypatch.setattr(dns_zone, "_ask", ask)
    return replies, asked


def test_nodata_names_the_parent_zone_in_its_authority_section(script) -> None:
    replies, asked = script
    replies["kkp.example.com", "SOA"] = _reply(authority=("example.com.", "SOA", SOA))
    replies["example.com", "NS"] = _reply(answer=("example.com.", "NS", "ns2.example.com.", "ns1.example.com."))
    zone = find_zone("kkp.example.com", SERVER)
    assert (zone.apex, zone.soa, zone.nameservers) == ("example.com", SOA, ("ns1.example.com", "ns2.example.com"))
    assert asked == ["SOA kkp.example.com", "NS example.com"]


def test_soa_in_the_answer_is_the_apex_itself(script) -> None:
    replies, _ = script
    replies["kkp.example.com", "SOA"] = _reply(answer=("kkp.example.com.", "SOA", SOA))
    zone = find_zone("kkp.example.com", SERVER)
    assert (zone.apex, zone.nameservers) == ("kkp.example.com", ())  # a zone without NS: the check fails it


def test_without_any_soa_the_walk_stops_below_the_root(script) -> None:
    _, asked = script
    zone = find_zone("kkp.example.com", SERVER)
    assert (zone.status, zone.apex, zone.soa) == ("NOERROR", None, None)
    assert asked == ["SOA kkp.example.com", "SOA example.com", "SOA com"]
    assert len(zone.steps) == 3


def test_only_the_root_zone_holding_the_name_is_no_zone(script) -> None:
    replies, _ = script
    replies["kkp.example.com", "SOA"] = _reply(dns.rcode.NXDOMAIN, authority=(".", "SOA", "a.root-servers.net. "
                                               "nstld.verisign-grs.com. 1 1800 900 604800 86400"))
    assert find_zone("kkp.example.com", SERVER).apex is None


def test_refused_ends_the_walk(script) -> None:
    replies, asked = script
    replies["kkp.example.com", "SOA"] = _reply(dns.rcode.REFUSED)
    assert find_zone("kkp.example.com", SERVER).status == "REFUSED"
    assert asked == ["SOA kkp.example.com"]


def test_silent_server_is_a_probe_error() -> None:
    from kkp_readiness.errors import DnsProbeError

    with pytest.raises(DnsProbeError, match=r"DNS server 127\.0\.0\.1:9"):
        find_zone("kkp.example.com", DnsServer("127.0.0.1", 9), timeout=0.3)
