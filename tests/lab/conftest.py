"""Helpers for the lab's own tests: query the lab's DNS, fetch the chain NGINX serves.

They are fixtures (returning functions) rather than an importable module because ``tests/lab``
has no ``__init__.py`` and must not depend on the import mode pytest is configured with.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest
from cryptography import x509

from kkp_readiness.lab import Lab
from kkp_readiness.lab.topology import INGRESS_ADDRESS

NXDOMAIN = "NXDOMAIN"


def _resolve(server: str, name: str, tcp: bool = False) -> list[str] | str:
    """A records of ``name`` from ``server`` ("127.0.0.1:PORT"), or "NXDOMAIN"."""
    host, port = server.rsplit(":", 1)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)
    resolver.lifetime = 3.0
    try:
        answer = resolver.resolve(name, "A", tcp=tcp)
    except dns.resolver.NXDOMAIN:
        return NXDOMAIN
    return sorted(record.address for record in answer)


def _rcode(server: str, name: str, rdtype: str = "A") -> str:
    host, port = server.rsplit(":", 1)
    response = dns.query.udp(dns.message.make_query(name, rdtype), host, port=int(port), timeout=3)
    return dns.rcode.to_text(response.rcode())


def _chain(
    port: int, server_name: str, cafile: Path | None = None, weak: bool = False
) -> list[x509.Certificate]:
    """Certificates the ingress sends for ``server_name`` (leaf first), verified if ``cafile``."""
    if cafile is not None:
        context = ssl.create_default_context(cafile=str(cafile))
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if weak:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with (
        socket.create_connection((INGRESS_ADDRESS, port), timeout=3) as sock,
        context.wrap_socket(sock, server_hostname=server_name) as tls,
    ):
        chain = tls._sslobj.get_unverified_chain()  # type: ignore[attr-defined]
        return [x509.load_pem_x509_certificate(c.public_bytes().encode()) for c in chain]


@pytest.fixture
def resolve() -> Callable[..., list[str] | str]:
    return _resolve


@pytest.fixture
def rcode() -> Callable[..., str]:
    return _rcode


@pytest.fixture
def served_chain() -> Callable[..., list[x509.Certificate]]:
    return _chain


@pytest.fixture(scope="module")
def healthy_lab() -> Iterator[Lab]:
    """One healthy lab shared by a test module (starting one takes a fraction of a second)."""
    lab = Lab()
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def start_lab() -> Iterator[Callable[..., dict[str, Any]]]:
    """``start_lab(*faults)`` starts a lab and returns its state; every lab a test started is
    stopped at the end, also when the test fails half-way."""
    labs: list[Lab] = []

    def start(*faults: str) -> dict[str, Any]:
        lab = Lab(faults=faults)
        labs.append(lab)
        return lab.start()

    yield start
    for lab in labs:
        lab.stop()
