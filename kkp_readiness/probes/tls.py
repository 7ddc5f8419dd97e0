"""TLS probe: record what an endpoint presents in its handshake, as data.

Why an *inspecting* handshake: a verifying client only says "failed" and stops at the first
problem, so it cannot tell an untrusted issuer from an expired leaf, a missing name or a missing
intermediate. :func:`fetch_presented_chain` therefore makes no trust decision: it records the
certificate chain exactly as the server sends it, and the judgement is made afterwards, on that
data, by the pure functions in :mod:`kkp_readiness.certs`. :func:`client_accepts` is the
complement: one ordinary verifying handshake, as evidence of what a real client sees.

>>> obs = fetch_presented_chain("192.0.2.80", 443, "kkp.example.com", timeout=3.0)
>>> obs.leaf.sans_dns
('*.kkp.example.com', 'kkp.example.com')
>>> [c.subject for c in obs.chain]
['CN=kkp.example.com', 'CN=Example Intermediate CA,O=Example']
"""

from __future__ import annotations

import _ssl
import contextlib
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from kkp_readiness.addressing import is_ip
from kkp_readiness.errors import TlsProbeError

__all__ = [
    "CertificateInfo",
    "TlsObservation",
    "client_accepts",
    "fetch_presented_chain",
]


@dataclass(frozen=True)
class CertificateInfo:
    """The facts of one X.509 certificate that readiness checks judge, as plain data.

    Names are RFC 4514 strings, datetimes are timezone-aware UTC, the fingerprint is SHA-256 in
    ``AB:CD:...`` form. ``self_signed`` means subject equals issuer *and* the signature verifies
    with the certificate's own key. ``pem`` keeps the certificate itself for the evidence file.

    >>> info = CertificateInfo.from_x509(x509.load_pem_x509_certificate(pem_bytes))
    >>> info.key_type, info.key_bits, info.not_after.isoformat()
    ('EC', 256, '2031-01-01T00:00:00+00:00')
    """

    subject: str
    issuer: str
    serial: str
    sans_dns: tuple[str, ...]
    sans_ip: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    sha256_fingerprint: str
    key_type: str
    key_bits: int
    curve: str | None
    signature_algorithm: str
    is_ca: bool
    self_signed: bool
    pem: str

    @classmethod
    def from_x509(cls, cert: x509.Certificate) -> CertificateInfo:
        """Extract the facts from a parsed certificate.

        Why tolerant: an endpoint may present a malformed extension; the probe records what it can
        (the extension then reads as absent) and leaves judging to the checks.

        >>> CertificateInfo.from_x509(cert).subject
        'CN=kkp.example.com'
        """
        key_type, key_bits, curve = _key_facts(cert)
        return cls(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            serial=format(cert.serial_number, "X"),
            sans_dns=_sans(cert, x509.DNSName),
            sans_ip=_sans(cert, x509.IPAddress),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            sha256_fingerprint=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
            key_type=key_type,
            key_bits=key_bits,
            curve=curve,
            signature_algorithm=_signature_algorithm(cert),
            is_ca=_is_ca(cert),
            self_signed=_self_signed(cert),
            pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: datetimes as ISO 8601 strings, tuples as lists, PEM included.

        >>> CertificateInfo.from_x509(cert).to_dict()["not_after"]
        '2031-01-01T00:00:00+00:00'
        """
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "sans_dns": list(self.sans_dns),
            "sans_ip": list(self.sans_ip),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "sha256_fingerprint": self.sha256_fingerprint,
            "key_type": self.key_type,
            "key_bits": self.key_bits,
            "curve": self.curve,
            "signature_algorithm": self.signature_algorithm,
            "is_ca": self.is_ca,
            "self_signed": self.self_signed,
            "pem": self.pem,
        }


@dataclass(frozen=True)
class TlsObservation:
    """One handshake as observed: negotiated protocol and cipher, and the chain as presented.

    ``chain`` is in the server's order, leaf first, including any certificate the server should
    not send; ``chain_der`` holds the same certificates as DER for the verifier in
    :mod:`kkp_readiness.certs` and is left out of :meth:`to_dict` (``pem`` is there instead).

    >>> obs.protocol, obs.leaf.subject
    ('TLSv1.3', 'CN=kkp.example.com')
    """

    address: str
    port: int
    server_name: str
    protocol: str
    cipher: str
    elapsed_ms: float
    chain: tuple[CertificateInfo, ...]
    chain_der: tuple[bytes, ...]

    @property
    def leaf(self) -> CertificateInfo:
        """The server's own certificate (the first one presented).

        >>> obs.leaf.sans_dns
        ('kkp.example.com',)
        """
        if not self.chain:
            raise ValueError(f"{self.address}:{self.port} presented no certificate")
        return self.chain[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for evidence files (without the DER bytes).

        >>> obs.to_dict()["chain"][0]["subject"]
        'CN=kkp.example.com'
        """
        return {
            "address": self.address,
            "port": self.port,
            "server_name": self.server_name,
            "protocol": self.protocol,
            "cipher": self.cipher,
            "elapsed_ms": self.elapsed_ms,
            "chain": [cert.to_dict() for cert in self.chain],
        }


def _sans(cert: x509.Certificate, kind: type[x509.DNSName | x509.IPAddress]) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):
        return ()
    return tuple(str(value) for value in ext.value.get_values_for_type(kind))


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):  # does not verify itself
        return False
    return True


def _signature_algorithm(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    name = getattr(oid, "_name", None)  # cryptography's readable name, e.g. "sha256WithRSAEncryption"
    if not name or name == "Unknown OID":
        return oid.dotted_string
    return str(name)


def _key_facts(cert: x509.Certificate) -> tuple[str, int, str | None]:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):  # unsupported or malformed key: record, do not fail
        return ("unknown", 0, None)
    if isinstance(key, rsa.RSAPublicKey):
        return ("RSA", key.key_size, None)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ("EC", key.key_size, key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ("Ed25519", 256, None)
    if isinstance(key, ed448.Ed448PublicKey):
        return ("Ed448", 456, None)
    if isinstance(key, dsa.DSAPublicKey):
        return ("DSA", key.key_size, None)
    return (type(key).__name__, 0, None)


def _connect(address: str, port: int, timeout: float, what: str) -> socket.socket:
    try:
        return socket.create_connection((address, port), timeout=timeout)
    except TimeoutError as exc:
        raise TlsProbeError(
            f"{what}: TCP connect timed out after {timeout} s; check routing and firewall"
        ) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise TlsProbeError(
            f"{what}: TCP connect failed: {reason}; check address, port and firewall"
        ) from exc


def _remaining(deadline: float) -> float:
    # Never 0: settimeout(0) would make the socket non-blocking instead of timing out at once.
    return max(deadline - time.monotonic(), 0.001)


def _presented_der(sslsock: ssl.SSLSocket) -> list[bytes]:
    getter = getattr(sslsock, "get_unverified_chain", None)  # public from Python 3.13, returns DER
    if getter is None:
        getter = sslsock._sslobj.get_unverified_chain  # type: ignore[union-attr]  # CPython 3.10-3.12
    chain = getter() or []
    result: list[bytes] = []
    for item in chain:
        if isinstance(item, (bytes, bytearray)):
            result.append(bytes(item))
        else:  # _ssl.Certificate on 3.10-3.12
            result.append(item.public_bytes(_ssl.ENCODING_DER))
    if not result:
        leaf = sslsock.getpeercert(binary_form=True)
        if leaf:
            result.append(leaf)
    return result


def _inspection_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # weak keys and old suites must still be *observed*
    # A system policy may forbid old protocol versions; then observe what is allowed.
    with contextlib.suppress(ValueError, ssl.SSLError):
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    return ctx


def fetch_presented_chain(address: str, port: int, server_name: str, timeout: float = 5.0) -> TlsObservation:
    """Handshake with ``address:port`` using SNI ``server_name`` and record what the server presents.

    This function makes NO trust decision. It is an inspection handshake: certificate
    verification and host name checking are switched off, weak keys are allowed
    (``@SECLEVEL=0``), no application data is sent, and the connection is closed right after the
    handshake. Whether the chain is trusted, complete, valid now, strong enough and covers the
    name is judged afterwards from the returned data by :mod:`kkp_readiness.certs`, which can tell
    those failures apart where one verifying handshake cannot. For the verdict of an ordinary
    client, see :func:`client_accepts`.

    ``timeout`` bounds connect and handshake together. ``address`` should be an IP address (the
    load balancer's, from the profile); a host name is looked up with the system resolver first.
    ``server_name`` is sent as SNI unless it is empty or an IP address (TLS forbids IPs in SNI).
    Raises TlsProbeError when no handshake could be completed (refused, timeout, handshake
    failure, no certificate).

    >>> obs = fetch_presented_chain("192.0.2.80", 443, "kkp.example.com", timeout=3.0)
    >>> len(obs.chain), obs.protocol
    (2, 'TLSv1.3')
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    what = f"TLS endpoint {address}:{port} (SNI {server_name or '-'})"
    start = time.monotonic()
    deadline = start + timeout
    sni = server_name if server_name and not is_ip(server_name) else None
    raw = _connect(address, port, timeout, what)
    try:
        raw.settimeout(_remaining(deadline))
        try:
            sslsock = _inspection_context().wrap_socket(raw, server_hostname=sni)
        except TimeoutError as exc:
            raise TlsProbeError(f"{what}: TLS handshake timed out after {timeout} s") from exc
        except ssl.SSLError as exc:
            raise TlsProbeError(
                f"{what}: TLS handshake failed: {exc.reason or exc}; is this port speaking TLS?"
            ) from exc
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise TlsProbeError(f"{what}: TLS handshake failed: connection lost ({reason})") from exc
        with sslsock:
            elapsed_ms = (time.monotonic() - start) * 1000.0
            der_chain = _presented_der(sslsock)
            cipher = sslsock.cipher()
            protocol = sslsock.version() or ""
    finally:
        raw.close()
    if not der_chain:
        raise TlsProbeError(f"{what}: the server presented no certificate")
    infos: list[CertificateInfo] = []
    for index, der in enumerate(der_chain):
        try:
            infos.append(CertificateInfo.from_x509(x509.load_der_x509_certificate(der)))
        except ValueError as exc:
            raise TlsProbeError(f"{what}: presented certificate #{index} cannot be parsed: {exc}") from exc
    return TlsObservation(
        address=address,
        port=port,
        server_name=server_name,
        protocol=protocol,
        cipher=cipher[0] if cipher else "",
        elapsed_ms=round(elapsed_ms, 3),
        chain=tuple(infos),
        chain_der=tuple(der_chain),
    )


def client_accepts(
    address: str, port: int, server_name: str, cafile: str | None, timeout: float = 5.0
) -> tuple[bool, str]:
    """Make one ordinary *verifying* handshake, as a real client would; return (accepted, reason).

    Why: evidence that matches what curl, kubectl or a browser would see, next to the finer
    diagnosis from :mod:`kkp_readiness.certs`. Uses Python's default client context (certificate
    verification and host name check on) with the system trust store when ``cafile`` is None,
    otherwise only ``cafile``. ``reason`` is OpenSSL's verification message when rejected, e.g.
    ``"unable to get local issuer certificate"`` or ``"Hostname mismatch, certificate is not valid
    for 'x'."``, and ``"ok"`` when accepted.

    Raises TlsProbeError when no verdict could be reached: refused, timeout, or a handshake that
    failed for a reason other than certificate verification.

    >>> client_accepts("192.0.2.80", 443, "kkp.example.com", cafile="/etc/kkp/ca.pem", timeout=3.0)
    (True, 'ok')
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    what = f"TLS endpoint {address}:{port} (SNI {server_name or '-'})"
    try:
        ctx = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load CA file {cafile!r}: {exc}") from exc
    deadline = time.monotonic() + timeout
    raw = _connect(address, port, timeout, what)
    try:
        raw.settimeout(_remaining(deadline))
        try:
            with ctx.wrap_socket(raw, server_hostname=server_name or None):
                return (True, "ok")
        except ssl.SSLCertVerificationError as exc:
            return (False, str(exc.verify_message or exc.reason or exc))
        except TimeoutError as exc:
            raise TlsProbeError(f"{what}: TLS handshake timed out after {timeout} s") from exc
        except ssl.SSLError as exc:
            raise TlsProbeError(f"{what}: TLS handshake failed: {exc.reason or exc}") from exc
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise TlsProbeError(f"{what}: TLS handshake failed: connection lost ({reason})") from exc
    finally:
        raw.close()
