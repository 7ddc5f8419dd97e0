"""Unit tests for kkp_readiness.probes.tls against real TLS servers on 127.0.0.1 (no other address)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kkp_readiness.certs import key_strength, verify_complete_chain, verify_trust
from kkp_readiness.errors import ProbeError, TlsProbeError
from kkp_readiness.probes.tls import CertificateInfo, TlsObservation, client_accepts, fetch_presented_chain

LOOPBACK = "127.0.0.1"
NOW = datetime.now(UTC)
PEM = serialization.Encoding.PEM


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    cn: str,
    key: object,
    issuer: x509.Certificate | None = None,
    issuer_key: object | None = None,
    *,
    ca: bool = False,
    sans: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
) -> x509.Certificate:
    public_key = key.public_key()  # type: ignore[attr-defined]
    signer = issuer_key or key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.subject if issuer is not None else _name(cn))
        .public_key(public_key)
        .serial_number(0xC0FFEE if ca and issuer is None else x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),  # type: ignore[attr-defined]
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        names: list[x509.GeneralName] = [x509.DNSName(s) for s in sans]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]


@dataclass
class _Files:
    root: x509.Certificate
    inter: x509.Certificate
    leaf: x509.Certificate
    weak: x509.Certificate
    root_pem: Path
    other_root_pem: Path
    chain_pem: Path  # leaf + intermediate
    leaf_only_pem: Path
    weak_chain_pem: Path
    key_pem: Path
    weak_key_pem: Path


def _key_pem(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def probe_tls_files(tmp_path_factory: pytest.TempPathFactory) -> _Files:
    d = tmp_path_factory.mktemp("tls")
    root_key = ec.generate_private_key(ec.SECP256R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    weak_key = rsa.generate_private_key(65537, 1024)
    root = _cert("Probe Root", root_key, ca=True)
    inter = _cert("Probe Intermediate", inter_key, root, root_key, ca=True)
    leaf = _cert("kkp.lab", leaf_key, inter, inter_key, sans=("kkp.lab", "*.kkp.lab"), ips=(LOOPBACK,))
    weak = _cert("weak.kkp.lab", weak_key, inter, inter_key, sans=("weak.kkp.lab",))
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_root = _cert("Other Root", other_key, ca=True)
    files = _Files(
        root=root,
        inter=inter,
        leaf=leaf,
        weak=weak,
        root_pem=d / "root.pem",
        other_root_pem=d / "other-root.pem",
        chain_pem=d / "chain.pem",
        leaf_only_pem=d / "leaf.pem",
        weak_chain_pem=d / "weak-chain.pem",
        key_pem=d / "key.pem",
        weak_key_pem=d / "weak-key.pem",
    )
    files.root_pem.write_bytes(root.public_bytes(PEM))
    files.other_root_pem.write_bytes(other_root.public_bytes(PEM))
    files.chain_pem.write_bytes(leaf.public_bytes(PEM) + inter.public_bytes(PEM))
    files.leaf_only_pem.write_bytes(leaf.public_bytes(PEM))
    files.weak_chain_pem.write_bytes(weak.public_bytes(PEM) + inter.public_bytes(PEM))
    files.key_pem.write_bytes(_key_pem(leaf_key))
    files.weak_key_pem.write_bytes(_key_pem(weak_key))
    return files


@dataclass
class _TlsServer:
    """A TLS server on 127.0.0.1 that completes handshakes and records the SNI it was sent."""

    certfile: Path
    keyfile: Path
    weak_ok: bool = False
    port: int = 0
    snis: list[str | None] = field(default_factory=list)
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> _TlsServer:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if self.weak_ok:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.load_cert_chain(str(self.certfile), str(self.keyfile))
        ctx.sni_callback = lambda _sock, name, _ctx: self.snis.append(name)  # type: ignore[assignment]
        self._ctx = ctx
        self._sock = socket.create_server((LOOPBACK, 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        with contextlib.suppress(OSError), self._ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)  # wait until the client closes
        conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2)


@pytest.fixture(scope="module")
def probe_tls_server(probe_tls_files: _Files) -> Iterator[_TlsServer]:
    server = _TlsServer(probe_tls_files.chain_pem, probe_tls_files.key_pem).start()
    yield server
    server.stop()


@pytest.fixture
def probe_server_factory() -> Iterator[list[_TlsServer]]:
    servers: list[_TlsServer] = []
    yield servers
    for server in servers:
        server.stop()


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------- fetch


def test_fetch_returns_leaf_then_intermediate(probe_tls_server: _TlsServer, probe_tls_files: _Files) -> None:
    obs = fetch_presented_chain(LOOPBACK, probe_tls_server.port, "kkp.lab", timeout=3.0)
    assert isinstance(obs, TlsObservation)
    assert [c.subject for c in obs.chain] == ["CN=kkp.lab", "CN=Probe Intermediate"]
    assert obs.chain_der == (
        probe_tls_files.leaf.public_bytes(serialization.Encoding.DER),
        probe_tls_files.inter.public_bytes(serialization.Encoding.DER),
    )
    assert obs.leaf == obs.chain[0]
    assert obs.leaf.sans_dns == ("kkp.lab", "*.kkp.lab")
    assert obs.leaf.sans_ip == (LOOPBACK,)
    assert obs.leaf.issuer == "CN=Probe Intermediate"
    assert obs.protocol.startswith("TLSv1")
    assert obs.cipher
    assert 0 < obs.elapsed_ms < 3000
    assert (obs.address, obs.port, obs.server_name) == (LOOPBACK, probe_tls_server.port, "kkp.lab")
    assert "kkp.lab" in probe_tls_server.snis


def test_fetch_to_dict_is_json_and_has_no_der(probe_tls_server: _TlsServer) -> None:
    obs = fetch_presented_chain(LOOPBACK, probe_tls_server.port, "kkp.lab", timeout=3.0)
    data = obs.to_dict()
    assert "chain_der" not in data
    text = json.dumps(data)
    assert "BEGIN CERTIFICATE" in text
    leaf = data["chain"][0]
    assert leaf["not_after"] == obs.leaf.not_after.isoformat()
    assert leaf["sans_dns"] == ["kkp.lab", "*.kkp.lab"]


def test_fetch_sends_no_sni_for_ip_server_name(probe_tls_server: _TlsServer) -> None:
    before = len(probe_tls_server.snis)
    obs = fetch_presented_chain(LOOPBACK, probe_tls_server.port, LOOPBACK, timeout=3.0)
    assert obs.server_name == LOOPBACK
    deadline = time.monotonic() + 2
    while len(probe_tls_server.snis) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert probe_tls_server.snis[before:] == [None]


def test_fetch_makes_no_trust_decision_and_certs_judge(
    probe_tls_server: _TlsServer, probe_tls_files: _Files
) -> None:
    obs = fetch_presented_chain(LOOPBACK, probe_tls_server.port, "not-in-the-cert.example", timeout=3.0)
    assert obs.leaf.subject == "CN=kkp.lab"  # observed although the name and the issuer are unknown
    assert verify_trust(obs.chain_der, [probe_tls_files.root]).ok
    assert verify_complete_chain(obs.chain_der, [probe_tls_files.root]).ok


def test_fetch_leaf_only_server_is_observed_as_incomplete(
    probe_tls_files: _Files, probe_server_factory: list[_TlsServer]
) -> None:
    server = _TlsServer(probe_tls_files.leaf_only_pem, probe_tls_files.key_pem).start()
    probe_server_factory.append(server)
    obs = fetch_presented_chain(LOOPBACK, server.port, "kkp.lab", timeout=3.0)
    assert len(obs.chain) == 1
    verdict = verify_complete_chain(obs.chain_der, [probe_tls_files.root, probe_tls_files.inter])
    assert not verdict.ok
    assert verdict.missing == ("CN=Probe Intermediate",)


def test_fetch_observes_weak_key(probe_tls_files: _Files, probe_server_factory: list[_TlsServer]) -> None:
    server = _TlsServer(probe_tls_files.weak_chain_pem, probe_tls_files.weak_key_pem, weak_ok=True).start()
    probe_server_factory.append(server)
    obs = fetch_presented_chain(LOOPBACK, server.port, "weak.kkp.lab", timeout=3.0)
    assert (obs.leaf.key_type, obs.leaf.key_bits, obs.leaf.curve) == ("RSA", 1024, None)
    assert key_strength(obs.leaf) == (False, "RSA 1024 bits, below the minimum of 2048")


def test_fetch_refused_port_raises_tls_probe_error() -> None:
    port = _closed_port()
    with pytest.raises(TlsProbeError) as info:
        fetch_presented_chain(LOOPBACK, port, "kkp.lab", timeout=1.0)
    message = str(info.value)
    assert f"{LOOPBACK}:{port}" in message
    assert "SNI kkp.lab" in message
    assert "refused" in message.lower()
    assert isinstance(info.value, ProbeError)


def test_fetch_handshake_timeout_is_quick() -> None:
    # A listener that never accepts: the TCP connect succeeds (backlog), the handshake never does.
    with socket.create_server((LOOPBACK, 0)) as silent:
        port = silent.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(TlsProbeError, match="timed out"):
            fetch_presented_chain(LOOPBACK, port, "kkp.lab", timeout=0.3)
        assert time.monotonic() - start < 2.0


def test_fetch_non_tls_server_is_a_handshake_failure() -> None:
    with socket.create_server((LOOPBACK, 0)) as plain:
        plain.settimeout(2.0)
        port = plain.getsockname()[1]

        def answer() -> None:
            with contextlib.suppress(OSError):
                conn, _ = plain.accept()
                with conn:
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(TlsProbeError, match="handshake failed"):
            fetch_presented_chain(LOOPBACK, port, "kkp.lab", timeout=2.0)
        thread.join(timeout=2)


def test_fetch_rejects_non_positive_timeout() -> None:
    with pytest.raises(ValueError, match="timeout"):
        fetch_presented_chain(LOOPBACK, 443, "kkp.lab", timeout=0)


# ---------------------------------------------------------------------------------------------- client


def test_client_accepts_with_private_ca(probe_tls_server: _TlsServer, probe_tls_files: _Files) -> None:
    assert client_accepts(LOOPBACK, probe_tls_server.port, "kkp.lab", str(probe_tls_files.root_pem), 3.0) == (
        True,
        "ok",
    )
    assert client_accepts(LOOPBACK, probe_tls_server.port, "a.kkp.lab", str(probe_tls_files.root_pem), 3.0)[0]


def test_client_rejects_unknown_issuer(probe_tls_server: _TlsServer, probe_tls_files: _Files) -> None:
    ok, reason = client_accepts(
        LOOPBACK, probe_tls_server.port, "kkp.lab", str(probe_tls_files.other_root_pem), 3.0
    )
    assert not ok
    assert "local issuer" in reason


def test_client_rejects_with_system_store(probe_tls_server: _TlsServer) -> None:
    ok, reason = client_accepts(LOOPBACK, probe_tls_server.port, "kkp.lab", None, 3.0)
    assert not ok
    assert reason


def test_client_rejects_wrong_name(probe_tls_server: _TlsServer, probe_tls_files: _Files) -> None:
    ok, reason = client_accepts(
        LOOPBACK, probe_tls_server.port, "a.b.kkp.lab", str(probe_tls_files.root_pem), 3.0
    )
    assert not ok
    assert re.search(r"[Hh]ostname mismatch", reason)


def test_client_refused_raises() -> None:
    with pytest.raises(TlsProbeError, match="refused"):
        client_accepts(LOOPBACK, _closed_port(), "kkp.lab", None, timeout=1.0)


# ------------------------------------------------------------------------------------- CertificateInfo


def test_certificate_info_fields(probe_tls_files: _Files) -> None:
    root = CertificateInfo.from_x509(probe_tls_files.root)
    assert root.subject == root.issuer == "CN=Probe Root"
    assert root.serial == "C0FFEE"
    assert root.is_ca
    assert root.self_signed
    assert (root.key_type, root.key_bits, root.curve) == ("EC", 256, "secp256r1")
    assert root.signature_algorithm == "ecdsa-with-SHA256"
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", root.sha256_fingerprint)
    assert root.not_before.tzinfo is not None
    assert root.not_after.utcoffset() == timedelta(0)
    assert root.pem.startswith("-----BEGIN CERTIFICATE-----")
    inter = CertificateInfo.from_x509(probe_tls_files.inter)
    assert inter.is_ca
    assert not inter.self_signed
    assert inter.sans_dns == ()
    weak = CertificateInfo.from_x509(probe_tls_files.weak)
    assert weak.signature_algorithm == "ecdsa-with-SHA256"
    assert weak.key_type == "RSA"
    json.dumps(weak.to_dict())


def test_self_signed_needs_own_signature() -> None:
    # Subject equals issuer, but signed by another key: not self-signed.
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Impostor"))
        .issuer_name(_name("Impostor"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(other, hashes.SHA256())
    )
    info = CertificateInfo.from_x509(cert)
    assert info.subject == info.issuer
    assert not info.self_signed
