"""DNS probe: ask one named DNS server one question and record its answer as data.

Why a probe of its own instead of ``socket.getaddrinfo``: the readiness checks must know *which*
server said *what* (the one the profile names, e.g. the site resolver the seed will use), and must
tell "the name does not exist" (NXDOMAIN, a finding) apart from "the server did not answer" (the
probe could not look). The system resolver hides both. So this module talks to exactly one server
with dnspython, never recurses to other servers itself and never consults ``/etc/resolv.conf``.

A negative answer is data: NXDOMAIN, NODATA, SERVFAIL and REFUSED come back as
:attr:`DnsAnswer.status`. Only when no usable answer arrives at all (timeout, refused socket,
malformed reply) does :func:`resolve` raise :class:`~kkp_readiness.errors.DnsProbeError`.

>>> server = DnsServer.parse("192.0.2.53")
>>> answer = resolve("grafana.kkp.example.com", server, timeout=2.0)
>>> answer.status, answer.addresses
('NOERROR', ('192.0.2.80',))
>>> answer.resolves_to(["192.0.2.80"])
True
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from kkp_readiness.errors import DnsProbeError

__all__ = [
    "ADDRESS_TYPES",
    "DnsAnswer",
    "DnsServer",
    "random_label",
    "resolve",
    "resolve_addresses",
]

#: The record types this probe resolves; both carry addresses.
ADDRESS_TYPES: tuple[str, ...] = ("A", "AAAA")

# A CNAME chain longer than this inside one answer is treated as a loop (BIND stops at 16 too).
_MAX_CNAME_CHAIN = 16

_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


@dataclass(frozen=True)
class DnsServer:
    """One DNS server, addressed by IP literal and port.

    Only IP literals are accepted: naming the server by host name would need another resolver
    to find it, which is exactly the hidden dependency this probe avoids.

    >>> DnsServer.parse("[::1]:5353")
    DnsServer(host='::1', port=5353)
    >>> str(DnsServer("127.0.0.1", 5353))
    '127.0.0.1:5353'
    """

    host: str
    port: int = 53

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            raise ValueError(
                f"DNS server host must be an IP address, got {self.host!r}; "
                "name the server by its address (e.g. 192.0.2.53 or [2001:db8::53]:53)"
            ) from None
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError(f"DNS server port must be an integer in 1..65535, got {self.port!r}")

    @classmethod
    def parse(cls, text: str) -> DnsServer:
        """Parse ``"ip"``, ``"ip:port"``, ``"[ipv6]:port"``, ``"[ipv6]"`` or a bare IPv6 literal.

        Why: profiles write servers the way people do; one parser keeps every check consistent.

        >>> DnsServer.parse("127.0.0.1:5353")
        DnsServer(host='127.0.0.1', port=5353)
        >>> DnsServer.parse("::1")
        DnsServer(host='::1', port=53)
        """
        if not isinstance(text, str):
            raise TypeError(f"DNS server must be a string like '192.0.2.53:53', got {text!r}")
        raw = text.strip()
        if not raw:
            raise ValueError("DNS server is empty; expected an address like '192.0.2.53' or '[::1]:5353'")
        host: str
        port_text: str | None = None
        if raw.startswith("["):
            end = raw.find("]")
            if end < 0:
                raise ValueError(f"DNS server {text!r}: missing ']' after the IPv6 address")
            host = raw[1:end]
            rest = raw[end + 1 :]
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"DNS server {text!r}: expected ':port' after ']'")
                port_text = rest[1:]
        elif raw.count(":") == 1:
            host, port_text = raw.split(":")
        else:
            host = raw  # IPv4 without port, or a bare IPv6 literal (several colons)
        port = 53
        if port_text is not None:
            if not port_text.isdigit():
                raise ValueError(f"DNS server {text!r}: port {port_text!r} is not a number")
            port = int(port_text)
        try:
            return cls(host=str(ipaddress.ip_address(host)), port=port)
        except ValueError as exc:
            raise ValueError(f"DNS server {text!r}: {exc}") from None

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class DnsAnswer:
    """What one server answered for one name and record type, as plain data.

    ``status`` is the response code, except that a NOERROR reply with no address for the name
    (after following the CNAMEs inside the answer) is reported as ``"NODATA"``.
    ``addresses`` are sorted numerically (IPv4 before IPv6); ``cname_chain`` lists the CNAME
    targets followed, in order; ``ttl`` is that of the address record set, None without one.

    >>> answer = resolve("api.kkp.example.com", DnsServer.parse("192.0.2.53"))
    >>> answer.to_dict()["status"]
    'NOERROR'
    """

    name: str
    server: str
    rdtype: str
    status: str
    addresses: tuple[str, ...]
    ttl: int | None
    elapsed_ms: float
    cname_chain: tuple[str, ...] = ()

    def resolves_to(self, expected: Iterable[str]) -> bool:
        """True when the answer holds exactly the expected addresses (set equality, order ignored).

        Why set equality: an extra stale address breaks clients as surely as a missing one.
        Addresses are compared as IPs, so ``"::0001"`` equals ``"::1"``.

        >>> answer.resolves_to(["192.0.2.80"])
        True
        """
        wanted = {_normalise_ip(a) for a in expected}
        if not wanted:
            raise ValueError(
                "resolves_to() needs at least one expected address; to test for no answer, read .status"
            )
        return {_normalise_ip(a) for a in self.addresses} == wanted

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for evidence files.

        >>> json.dumps(answer.to_dict())  # doctest: +SKIP
        """
        data = asdict(self)
        data["addresses"] = list(self.addresses)
        data["cname_chain"] = list(self.cname_chain)
        return data


def _normalise_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(str(text).strip()))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def _ip_sort_key(text: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(text)
    return (ip.version, int(ip))


def _check_rdtype(rdtype: str) -> str:
    value = str(rdtype).upper()
    if value not in ADDRESS_TYPES:
        raise ValueError(f"rdtype must be one of {', '.join(ADDRESS_TYPES)}, got {rdtype!r}")
    return value


_UDP_TRIES = 2


def resolve(name: str, server: DnsServer, rdtype: str = "A", timeout: float = 3.0) -> DnsAnswer:
    """Ask ``server`` for the ``rdtype`` ("A" or "AAAA") records of ``name``; return its answer.

    Why this shape: the check needs the exact reply of the server the profile names. The query
    goes over UDP and is retried over TCP when the reply is truncated; CNAMEs are followed only
    inside the answer section (a recursive server puts the whole chain there), never by asking
    anyone else. SERVFAIL and REFUSED are data (``status``). ``timeout`` bounds the whole call,
    UDP and TCP together.

    Raises DnsProbeError when no usable reply arrives: timeout, refused or failed socket,
    malformed or mismatched reply.

    >>> resolve("kkp.example.com", DnsServer.parse("192.0.2.53"), "AAAA", timeout=2.0).status
    'NODATA'
    """
    kind = _check_rdtype(rdtype)
    qname = checked_question(name, timeout)
    query = dns.message.make_query(qname, kind)
    start = time.monotonic()
    response = exchange(query, server, timeout)
    elapsed_ms = (time.monotonic() - start) * 1000.0
    return _answer_from_response(name, server, kind, response, elapsed_ms)


def checked_question(name: str, timeout: float) -> dns.name.Name:
    """``name`` as a DNS name; ValueError for an invalid name or a timeout that is not positive."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    try:
        return dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise ValueError(f"{name!r} is not a valid DNS name: {exc}") from None


def exchange(query: dns.message.Message, server: DnsServer, timeout: float) -> dns.message.Message:
    """Send ``query`` over UDP (once more if lost, TCP if truncated) within ``timeout``; the reply.

    Raises DnsProbeError when no usable reply arrives, naming the server, the question and what to check.
    """
    deadline = time.monotonic() + timeout
    question = query.question[0]
    name, kind = question.name.to_text(omit_final_dot=True), dns.rdatatype.to_text(question.rdtype)
    try:
        try:
            response = _udp_with_retry(query, server, deadline)
        except dns.message.Truncated:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise dns.exception.Timeout(timeout=timeout) from None
            response = dns.query.tcp(query, server.host, timeout=remaining, port=server.port)
    except dns.exception.Timeout as exc:
        raise DnsProbeError(
            f"DNS server {server} did not answer {kind} query for {name} within {timeout} s; "
            f"check that it runs and that UDP/TCP port {server.port} is reachable from here"
        ) from exc
    except (dns.exception.DNSException, OSError, EOFError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise DnsProbeError(
            f"DNS server {server} gave no usable answer to {kind} query for {name}: {reason}; "
            "check the server address and port"
        ) from exc
    return response


def _udp_with_retry(query: dns.message.Message, server: DnsServer, deadline: float) -> dns.message.Message:
    """UDP may lose a datagram: send once more, as dig does, within the same overall deadline."""
    for attempt in range(_UDP_TRIES):
        remaining = deadline - time.monotonic()
        share = remaining / (_UDP_TRIES - attempt)
        try:
            return dns.query.udp(query, server.host, timeout=max(share, 0.001), port=server.port,
                                 ignore_unexpected=True, raise_on_truncation=True)
        except dns.exception.Timeout:
            if attempt == _UDP_TRIES - 1:
                raise
    raise AssertionError("unreachable")


def _answer_from_response(
    name: str, server: DnsServer, kind: str, response: dns.message.Message, elapsed_ms: float
) -> DnsAnswer:
    wanted = dns.rdatatype.from_text(kind)
    rcode = response.rcode()
    status = dns.rcode.to_text(rcode)
    current = response.question[0].name if response.question else dns.name.from_text(name)
    chain: list[str] = []
    addresses: list[str] = []
    ttl: int | None = None
    if rcode == dns.rcode.NOERROR:
        seen = {current}
        while True:
            rrset = _find(response, current, wanted)
            if rrset is not None:
                addresses = sorted({rd.address for rd in rrset}, key=_ip_sort_key)
                ttl = int(rrset.ttl)
                break
            cname = _find(response, current, dns.rdatatype.CNAME)
            if cname is None or len(chain) >= _MAX_CNAME_CHAIN:
                break
            current = next(iter(cname)).target
            chain.append(current.to_text(omit_final_dot=True))
            if current in seen:  # CNAME loop inside the answer: stop, report what was seen
                break
            seen.add(current)
        if not addresses:
            status = "NODATA"
    return DnsAnswer(
        name=name,
        server=str(server),
        rdtype=kind,
        status=status,
        addresses=tuple(addresses),
        ttl=ttl,
        elapsed_ms=round(elapsed_ms, 3),
        cname_chain=tuple(chain),
    )


def _find(response: dns.message.Message, owner: dns.name.Name, rdtype: Any) -> Any:
    for rrset in response.answer:
        if rrset.name == owner and rrset.rdtype == rdtype:
            return rrset
    return None


def resolve_addresses(
    name: str, server: DnsServer, timeout: float = 3.0, families: Sequence[str] = ("A",)
) -> DnsAnswer:
    """Resolve ``name`` for each record type in ``families`` and merge the answers into one.

    Why: a dual-stack requirement asks "which addresses does this name have", not "which A
    records". ``timeout`` applies to each query. The merged ``rdtype`` reads like ``"A+AAAA"``;
    ``status`` is NOERROR when any family has addresses, otherwise the most telling status
    (NXDOMAIN, then SERVFAIL/REFUSED/..., then NODATA). Raises DnsProbeError like resolve().

    >>> resolve_addresses("api.kkp.example.com", DnsServer.parse("192.0.2.53"), 2.0, ("A", "AAAA")).addresses
    ('192.0.2.80', '2001:db8::80')
    """
    kinds = [_check_rdtype(kind) for kind in families]
    if not kinds:
        raise ValueError("families must name at least one of A, AAAA")
    kinds = list(dict.fromkeys(kinds))
    answers = [resolve(name, server, kind, timeout) for kind in kinds]
    if len(answers) == 1:
        return answers[0]
    addresses = sorted({a for ans in answers for a in ans.addresses}, key=_ip_sort_key)
    statuses = [ans.status for ans in answers]
    if addresses:
        status = "NOERROR"
    elif "NXDOMAIN" in statuses:
        status = "NXDOMAIN"
    else:
        status = next((s for s in statuses if s != "NODATA"), "NODATA")
    ttls = [ans.ttl for ans in answers if ans.ttl is not None]
    chain = next((ans.cname_chain for ans in answers if ans.cname_chain), ())
    return DnsAnswer(
        name=name,
        server=str(server),
        rdtype="+".join(kinds),
        status=status,
        addresses=tuple(addresses),
        ttl=min(ttls) if ttls else None,
        elapsed_ms=round(sum(ans.elapsed_ms for ans in answers), 3),
        cname_chain=chain,
    )


def random_label(prefix: str = "kkp-readiness-") -> str:
    """A fresh, lowercase, DNS-safe label such as ``"kkp-readiness-7f3a9c1e"``.

    Why: a wildcard record is proven only by a name nobody created; a random label from
    ``secrets`` cannot collide with a real record.

    >>> label = random_label()
    >>> resolve(f"{label}.kkp.example.com", DnsServer.parse("192.0.2.53")).status
    'NOERROR'
    """
    label = f"{prefix}{secrets.token_hex(4)}".lower()
    if len(label) > 63 or not _LABEL_RE.match(label):
        raise ValueError(
            f"prefix {prefix!r} does not make a DNS label: use letters, digits and '-', at most 55 characters"
        )
    return label
