"""ACCESS-008's UDP query as the bastion runs it (POSIX sh, bash's /dev/udp, dd, od), run here on loopback."""

from __future__ import annotations

import socket
import subprocess
import threading

import dns.message
import pytest

from kkp_readiness.probes.bastion_dns import (
    NO_BASH,
    BastionDnsError,
    judge_reply,
    judge_udp,
    make_query,
    parse_od,
    udp_script,
)


def _udp_server(answer: bool) -> tuple[socket.socket, int]:
    """A one-shot UDP DNS server on 127.0.0.1 that answers (or swallows) one query."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)

    def serve() -> None:
        try:
            data, peer = sock.recvfrom(4096)
        except OSError:
            return
        if answer:
            sock.sendto(dns.message.make_response(dns.message.from_wire(data)).to_wire(), peer)

    threading.Thread(target=serve, daemon=True).start()
    return sock, sock.getsockname()[1]


def _run(script: str, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, env={"PATH": path},
                          timeout=10, check=False)


@pytest.mark.parametrize("query_id", [None, 0x0A0A, 0x000A, 0x2500],
                         ids=["random", "newlines", "nul-newline", "percent"])
def test_udp_script_gets_the_answer_as_the_bastion_would(query_id: int | None) -> None:
    """Also for ids with a newline byte, where bash's printf would write the query in pieces (one datagram each)."""
    server, port = _udp_server(answer=True)
    query = make_query("kkp.lab")
    if query_id is not None:
        query.id = query_id
    done = _run(udp_script(query.to_wire(), "127.0.0.1", port, 2))
    server.close()
    reach = judge_udp(query, f"127.0.0.1:{port}", done.returncode, done.stdout, done.stderr, 2)
    assert reach.answered, (done, reach)
    assert reach.rcode == "NOERROR"


def test_udp_script_reports_silence_as_no_reply() -> None:
    server, port = _udp_server(answer=False)
    query = make_query("kkp.lab")
    done = _run(udp_script(query.to_wire(), "127.0.0.1", port, 1))
    server.close()
    reach = judge_udp(query, f"127.0.0.1:{port}", done.returncode, done.stdout, done.stderr, 1)
    assert not reach.answered
    assert reach.detail == "no UDP reply within 1 s"


def test_without_bash_the_udp_half_could_not_be_checked() -> None:
    query = make_query("kkp.lab")
    done = _run(udp_script(query.to_wire(), "127.0.0.1", 53, 1), path="/nonexistent")
    assert done.returncode == NO_BASH
    with pytest.raises(BastionDnsError, match="bash"):
        judge_udp(query, "127.0.0.1:53", done.returncode, done.stdout, done.stderr, 1)


def test_a_reply_to_another_query_or_garbage_is_not_an_answer() -> None:
    query = make_query("kkp.lab")
    other = dns.message.make_response(make_query("kkp.lab"))
    other.id = (query.id + 1) % 65536
    assert not judge_reply(query, other.to_wire(), "s", "udp").answered
    assert not judge_reply(query, b"\x01\x02", "s", "udp").answered
    assert parse_od(" 0a 0b\n ff\n") == b"\x0a\x0b\xff"
