"""DNS from the bastion (ACCESS-008): one query per server over TCP and over UDP, both sent BY the bastion.

TCP goes through a ``direct-tcpip`` channel (``ssh.open_tunnel``), so dnspython talks to the server
over a connection the bastion made. UDP cannot travel through an SSH channel, so the bastion sends it
itself with POSIX tools and bash's ``/dev/udp``: the query's bytes (made here by dnspython) are written
with ``printf`` octal escapes, one datagram is read back with ``dd`` under ``timeout`` and printed as
hex by ``od``; the answer is parsed here. Nothing is installed on the bastion. Without bash the UDP
half could not be checked (``BastionDnsError``), which is not a finding about the DNS server.

Reaching a server means it sent a DNS response to our query (same id, any rcode); the rcode is
reported, since judging the zone's content is what the DNS checks do from the suite's host.
"""

from __future__ import annotations

import shlex
import socket
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode

from kkp_readiness.errors import ProbeError

#: Exit status of the UDP script when the bastion has no bash (``/dev/udp`` is a bash feature).
NO_BASH = 3
#: What ``timeout`` exits with when the command ran out of time (no datagram came back).
TIMED_OUT = 124


class BastionDnsError(ProbeError):
    """The bastion could not run the query at all (no bash, no ``timeout``/``dd``/``od``)."""


@dataclass(frozen=True)
class DnsReach:
    """One server over one transport as seen from the bastion: answered or not, and what came back."""

    server: str
    transport: str
    answered: bool
    detail: str
    rcode: str | None = None

    @property
    def evidence(self) -> dict[str, Any]:
        return {"server": self.server, "transport": self.transport, "answered": self.answered,
                "rcode": self.rcode, "detail": self.detail}


def make_query(name: str) -> dns.message.Message:
    """An ``A`` query for ``name`` with recursion desired (what the installation's tools send)."""
    return dns.message.make_query(name, "A")


def udp_script(wire: bytes, host: str, port: int, timeout: float) -> str:
    """The ``sh`` command that sends ``wire`` over UDP from the bastion and prints the answer as hex.

    Exits ``NO_BASH`` without bash; otherwise with ``dd``'s (``timeout``'s) status: ``TIMED_OUT``
    when no datagram came back. Only IP literals and a port go into it (``DnsServer`` validated them).
    """
    escaped = "".join(f"\\{byte:03o}" for byte in wire)
    seconds = max(1, round(timeout))
    # One datagram must carry the whole query: bash's printf may write around NUL bytes in pieces (each
    # piece its own datagram on a UDP socket), so dd gathers the bytes (fullblock) and writes them once.
    inner = (f"exec 3<>/dev/udp/{host}/{int(port)} || exit 2; "
             f"printf '{escaped}' | dd bs=4096 count=1 iflag=fullblock status=none >&3 || exit 2; "
             f"timeout {seconds} dd bs=4096 count=1 status=none <&3 | od -An -v -tx1; exit \"${{PIPESTATUS[0]}}\"")
    return (f"command -v bash >/dev/null 2>&1 || {{ echo 'no bash on the bastion' >&2; exit {NO_BASH}; }}; "
            f"exec bash -c {shlex.quote(inner)}")


def parse_od(text: str) -> bytes:
    """The bytes of ``od -An -v -tx1`` output (hex pairs separated by blanks and newlines)."""
    return bytes.fromhex("".join(text.split()))


def judge_reply(query: dns.message.Message, wire: bytes, server: str, transport: str) -> DnsReach:
    """A reply's bytes -> answered (a response to ``query``) or why not."""
    if not wire:
        return DnsReach(server, transport, False, "no reply")
    try:
        response = dns.message.from_wire(wire)
    except dns.exception.DNSException as exc:
        return DnsReach(server, transport, False, f"a reply that is not DNS ({type(exc).__name__})")
    if not query.is_response(response):
        return DnsReach(server, transport, False, f"a DNS message that does not answer our query (id {response.id})")
    rcode = dns.rcode.to_text(response.rcode())
    return DnsReach(server, transport, True, f"answered ({rcode})", rcode)


def judge_udp(query: dns.message.Message, server: str, exit_status: int, stdout: str, stderr: str,
              timeout: float) -> DnsReach:
    """The UDP script's result -> a finding, or ``BastionDnsError`` when the bastion could not run it."""
    if exit_status == NO_BASH or (exit_status == 127 and not stdout.strip()):
        raise BastionDnsError(f"could not query {server} over UDP from the bastion: {stderr.strip()[:200]} "
                              "(the UDP query needs bash's /dev/udp, timeout, dd and od on the bastion)")
    if exit_status == TIMED_OUT and not stdout.strip():
        return DnsReach(server, "udp", False, f"no UDP reply within {timeout:g} s")
    if exit_status != 0 and not stdout.strip():
        return DnsReach(server, "udp", False, f"the bastion's UDP query failed: {stderr.strip()[:200] or exit_status}")
    return judge_reply(query, parse_od(stdout), server, "udp")


def query_tcp(sock: socket.socket, query: dns.message.Message, server: str, timeout: float) -> DnsReach:
    """Send ``query`` over ``sock`` (a tunnel the bastion opened to the server) and judge the reply."""
    sock.setblocking(False)  # dnspython requires a non-blocking connected socket
    try:
        response = dns.query.tcp(query, where="", timeout=timeout, sock=sock)
    except dns.exception.Timeout:
        return DnsReach(server, "tcp", False, f"no TCP reply within {timeout:g} s")
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        return DnsReach(server, "tcp", False, f"the TCP exchange failed: {exc or type(exc).__name__}")
    finally:
        sock.close()
    return judge_reply(query, response.to_wire(), server, "tcp")
