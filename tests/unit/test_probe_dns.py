"""Unit tests for kkp_readiness.probes.dns against a tiny dnspython server on 127.0.0.1.

The records hold documentation addresses (192.0.2.0/24, 2001:db8::/32) as data only; nothing
ever connects to them. The only address the tests talk to is 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from kkp_readiness.errors import DnsProbeError, ProbeError
from kkp_readiness.probes.dns import DnsAnswer, DnsServer, random_label, resolve, resolve_addresses

LOOPBACK = "127.0.0.1"
BIG = [f"192.0.2.{i}" for i in range(1, 61)]  # 60 A records: too big for 512-byte UDP

RECORDS: dict[tuple[str, str], list[str]] = {
    ("kkp.lab.", "A"): ["192.0.2.10"],
    ("api.kkp.lab.", "A"): ["192.0.2.20", "192.0.2.3"],
    ("api.kkp.lab.", "AAAA"): ["2001:db8::20"],
    ("lb.kkp.lab.", "A"): ["192.0.2.80"],
    ("big.kkp.lab.", "A"): BIG,
    ("v6only.kkp.lab.", "AAAA"): ["2001:db8::6"],
}
CNAMES = {
    "www.kkp.lab.": "web.kkp.lab.",
    "web.kkp.lab.": "lb.kkp.lab.",
    "dangling.kkp.lab.": "elsewhere.example.",
    "loop1.kkp.lab.": "loop2.kkp.lab.",
    "loop2.kkp.lab.": "loop1.kkp.lab.",
}
RCODES = {"servfail.kkp.lab.": dns.rcode.SERVFAIL, "refused.kkp.lab.": dns.rcode.REFUSED}


def _respond(query: dns.message.Message) -> dns.message.Message:
    """Answer like a recursive server that knows only the tables above."""
    response = dns.message.make_response(query)
    question = query.question[0]
    name = question.name.to_text().lower()
    rdtype = dns.rdatatype.to_text(question.rdtype)
    if name in RCODES:
        response.set_rcode(RCODES[name])
        return response
    if name.startswith("wild-") or ".wild." in name:  # behaves like *.wild.kkp.lab
        response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "192.0.2.99"))
        return response
    seen: set[str] = set()
    while name in CNAMES and name not in seen and len(seen) < 20:
        seen.add(name)
        response.answer.append(dns.rrset.from_text(name, 300, "IN", "CNAME", CNAMES[name]))
        name = CNAMES[name]
    if (name, rdtype) in RECORDS:
        response.answer.append(dns.rrset.from_text(name, 120, "IN", rdtype, *RECORDS[(name, rdtype)]))
    elif not any(owner == name for owner, _ in RECORDS) and name not in CNAMES and not response.answer:
        response.set_rcode(dns.rcode.NXDOMAIN)
    return response


class _TinyDns:
    """UDP and TCP DNS on one 127.0.0.1 port; truncates UDP replies over 512 bytes."""

    def __init__(self, garbage: bool = False) -> None:
        self.garbage = garbage
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((LOOPBACK, 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((LOOPBACK, self.port))
        self.tcp.listen(8)
        self.udp.settimeout(0.1)
        self.tcp.settimeout(0.1)
        self.tcp_queries = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._serve_udp, daemon=True),
            threading.Thread(target=self._serve_tcp, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def server(self) -> DnsServer:
        return DnsServer(LOOPBACK, self.port)

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.udp.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if self.garbage:
                self.udp.sendto(b"\xde\xad\xbe", peer)
                continue
            query = dns.message.from_wire(wire)
            reply = _respond(query).to_wire()
            if len(reply) > 512:
                truncated = dns.message.make_response(query)
                truncated.flags |= dns.flags.TC
                reply = truncated.to_wire()
            self.udp.sendto(reply, peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2.0)
                try:
                    size = struct.unpack("!H", _recv_exactly(conn, 2))[0]
                    query = dns.message.from_wire(_recv_exactly(conn, size))
                except (OSError, ValueError):
                    continue
                self.tcp_queries += 1
                reply = _respond(query).to_wire()
                conn.sendall(struct.pack("!H", len(reply)) + reply)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self.udp.close()
        self.tcp.close()


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


@pytest.fixture(scope="module")
def probe_dns() -> Iterator[_TinyDns]:
    server = _TinyDns()
    yield server
    server.close()


# ---------------------------------------------------------------------------------------------- DnsServer

PARSE_OK = [
    ("127.0.0.1", "127.0.0.1", 53, "127.0.0.1:53"),
    ("127.0.0.1:5353", "127.0.0.1", 5353, "127.0.0.1:5353"),
    ("  127.0.0.1:5353 ", "127.0.0.1", 5353, "127.0.0.1:5353"),
    ("[::1]:5353", "::1", 5353, "[::1]:5353"),
    ("[::1]", "::1", 53, "[::1]:53"),
    ("::1", "::1", 53, "[::1]:53"),
    ("fd00:0:0::53", "fd00::53", 53, "[fd00::53]:53"),
]


@pytest.mark.parametrize(("text", "host", "port", "shown"), PARSE_OK, ids=[p[0].strip() for p in PARSE_OK])
def test_dns_server_parse(text: str, host: str, port: int, shown: str) -> None:
    server = DnsServer.parse(text)
    assert (server.host, server.port) == (host, port)
    assert str(server) == shown


PARSE_BAD = [
    "",
    "   ",
    "dns.example.com",
    "dns.example.com:53",
    "127.0.0.1:",
    "127.0.0.1:abc",
    "127.0.0.1:0",
    "127.0.0.1:65536",
    "127.0.0.1:-1",
    "[::1",
    "[::1]5353",
    "[127.0.0.1.5]:53",
    "300.1.1.1",
    "1.2.3.4:53:53",
]


@pytest.mark.parametrize("text", PARSE_BAD, ids=[repr(t) for t in PARSE_BAD])
def test_dns_server_parse_rejects_junk(text: str) -> None:
    with pytest.raises(ValueError, match="DNS server"):
        DnsServer.parse(text)


def test_dns_server_constructor_validates() -> None:
    with pytest.raises(ValueError, match="IP address"):
        DnsServer("resolver.example")
    with pytest.raises(ValueError, match="port"):
        DnsServer("127.0.0.1", 70000)
    with pytest.raises(TypeError):
        DnsServer.parse(5353)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- resolve


def test_resolve_noerror(probe_dns: _TinyDns) -> None:
    answer = resolve("api.kkp.lab", probe_dns.server, timeout=2.0)
    assert isinstance(answer, DnsAnswer)
    assert answer.status == "NOERROR"
    assert answer.addresses == ("192.0.2.3", "192.0.2.20")  # numeric order, not text order
    assert answer.ttl == 120
    assert answer.rdtype == "A"
    assert answer.server == f"127.0.0.1:{probe_dns.port}"
    assert answer.name == "api.kkp.lab"
    assert answer.cname_chain == ()
    assert 0 < answer.elapsed_ms < 2000
    assert answer.resolves_to(["192.0.2.20", "192.0.2.3"])
    assert not answer.resolves_to(["192.0.2.20"])
    assert not answer.resolves_to(["192.0.2.20", "192.0.2.3", "192.0.2.4"])


def test_resolve_aaaa(probe_dns: _TinyDns) -> None:
    answer = resolve("api.kkp.lab.", probe_dns.server, "aaaa", timeout=2.0)
    assert (answer.status, answer.rdtype, answer.addresses) == ("NOERROR", "AAAA", ("2001:db8::20",))
    assert answer.resolves_to(["2001:0db8:0:0::20"])


def test_resolve_nxdomain_is_data(probe_dns: _TinyDns) -> None:
    answer = resolve("missing.kkp.lab", probe_dns.server, timeout=2.0)
    assert (answer.status, answer.addresses, answer.ttl) == ("NXDOMAIN", (), None)
    assert not answer.resolves_to(["192.0.2.10"])


def test_resolve_nodata(probe_dns: _TinyDns) -> None:
    answer = resolve("kkp.lab", probe_dns.server, "AAAA", timeout=2.0)
    assert (answer.status, answer.addresses) == ("NODATA", ())
    assert resolve("v6only.kkp.lab", probe_dns.server, "A", timeout=2.0).status == "NODATA"


@pytest.mark.parametrize(
    ("name", "status"), [("servfail.kkp.lab", "SERVFAIL"), ("refused.kkp.lab", "REFUSED")]
)
def test_resolve_server_failures_are_data(probe_dns: _TinyDns, name: str, status: str) -> None:
    assert resolve(name, probe_dns.server, timeout=2.0).status == status


def test_resolve_follows_cname_chain_in_answer(probe_dns: _TinyDns) -> None:
    answer = resolve("www.kkp.lab", probe_dns.server, timeout=2.0)
    assert answer.status == "NOERROR"
    assert answer.cname_chain == ("web.kkp.lab", "lb.kkp.lab")
    assert answer.addresses == ("192.0.2.80",)
    assert answer.resolves_to({"192.0.2.80"})


def test_resolve_dangling_cname_is_nodata_with_chain(probe_dns: _TinyDns) -> None:
    answer = resolve("dangling.kkp.lab", probe_dns.server, timeout=2.0)
    assert (answer.status, answer.cname_chain, answer.addresses) == ("NODATA", ("elsewhere.example",), ())


def test_resolve_cname_loop_terminates(probe_dns: _TinyDns) -> None:
    answer = resolve("loop1.kkp.lab", probe_dns.server, timeout=2.0)
    assert answer.status == "NODATA"
    assert answer.cname_chain[:2] == ("loop2.kkp.lab", "loop1.kkp.lab")


def test_resolve_falls_back_to_tcp_on_truncation(probe_dns: _TinyDns) -> None:
    before = probe_dns.tcp_queries
    answer = resolve("big.kkp.lab", probe_dns.server, timeout=2.0)
    assert answer.status == "NOERROR"
    assert len(answer.addresses) == len(BIG)
    assert answer.resolves_to(BIG)
    assert probe_dns.tcp_queries == before + 1


def test_resolve_wildcard_with_random_label(probe_dns: _TinyDns) -> None:
    answer = resolve(f"{random_label()}.wild.kkp.lab", probe_dns.server, timeout=2.0)
    assert answer.resolves_to(["192.0.2.99"])


def test_resolve_timeout_raises_quickly() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LOOPBACK, 0))
        server = DnsServer(LOOPBACK, silent.getsockname()[1])
        start = time.monotonic()
        with pytest.raises(DnsProbeError) as info:
            resolve("kkp.lab", server, timeout=0.3)
        assert time.monotonic() - start < 1.5
    message = str(info.value)
    assert f"DNS server {server} did not answer A query for kkp.lab within 0.3 s" in message
    assert isinstance(info.value, ProbeError)


def test_resolve_garbage_reply_raises() -> None:
    bad = _TinyDns(garbage=True)
    try:
        with pytest.raises(DnsProbeError, match="no usable answer"):
            resolve("kkp.lab", bad.server, timeout=1.0)
    finally:
        bad.close()


def test_resolve_argument_errors(probe_dns: _TinyDns) -> None:
    with pytest.raises(ValueError, match="rdtype"):
        resolve("kkp.lab", probe_dns.server, "MX")
    with pytest.raises(ValueError, match="timeout"):
        resolve("kkp.lab", probe_dns.server, timeout=0)
    with pytest.raises(ValueError, match="not a valid DNS name"):
        resolve("a" * 64 + ".kkp.lab", probe_dns.server)
    answer = resolve("kkp.lab", probe_dns.server, timeout=2.0)
    with pytest.raises(ValueError, match="at least one"):
        answer.resolves_to([])
    with pytest.raises(ValueError, match="not an IP address"):
        answer.resolves_to(["kkp.lab"])


def test_answer_to_dict_is_json(probe_dns: _TinyDns) -> None:
    data = resolve("www.kkp.lab", probe_dns.server, timeout=2.0).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["addresses"] == ["192.0.2.80"]
    assert data["cname_chain"] == ["web.kkp.lab", "lb.kkp.lab"]
    assert set(data) == {
        "name",
        "server",
        "rdtype",
        "status",
        "addresses",
        "ttl",
        "elapsed_ms",
        "cname_chain",
    }


# ---------------------------------------------------------------------------------------------- helpers


def test_resolve_addresses_merges_families(probe_dns: _TinyDns) -> None:
    both = resolve_addresses("api.kkp.lab", probe_dns.server, timeout=2.0, families=("A", "AAAA"))
    assert both.rdtype == "A+AAAA"
    assert both.status == "NOERROR"
    assert both.addresses == ("192.0.2.3", "192.0.2.20", "2001:db8::20")
    assert both.ttl == 120
    assert resolve_addresses("v6only.kkp.lab", probe_dns.server, 2.0, ("A", "AAAA")).status == "NOERROR"
    assert resolve_addresses("missing.kkp.lab", probe_dns.server, 2.0, ("A", "AAAA")).status == "NXDOMAIN"
    assert resolve_addresses("kkp.lab", probe_dns.server, 2.0, ("AAAA",)).status == "NODATA"
    single = resolve_addresses("kkp.lab", probe_dns.server, 2.0)
    assert (single.rdtype, single.addresses) == ("A", ("192.0.2.10",))
    with pytest.raises(ValueError, match="families"):
        resolve_addresses("kkp.lab", probe_dns.server, 2.0, ())


def test_random_label() -> None:
    labels = {random_label() for _ in range(50)}
    assert len(labels) == 50
    for label in labels:
        assert re.fullmatch(r"kkp-readiness-[0-9a-f]{8}", label)
    assert re.fullmatch(r"probe-[0-9a-f]{8}", random_label("Probe-"))
    with pytest.raises(ValueError, match="prefix"):
        random_label("bad_prefix.")
    with pytest.raises(ValueError, match="prefix"):
        random_label("x" * 60)
