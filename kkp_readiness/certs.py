"""Certificate judgement: pure functions on data the TLS probe recorded. No network here.

Why separate from the probe: one verifying handshake stops at the first problem and says only
"failed". Here each property is judged on its own (trusted, complete chain, name covered, valid
now, key strong enough), so a check can say exactly which requirement is not met and how to fix
it. Trust is judged with cryptography's X.509 path builder (:mod:`cryptography.x509.verification`,
web PKI rules), at a moment inside the leaf's validity so that expiry does not mask trust.

>>> obs = fetch_presented_chain("192.0.2.80", 443, "kkp.example.com", timeout=3.0)
>>> anchors = load_trust_anchors("/etc/kkp/ca.pem")
>>> verify_trust(obs.chain_der, anchors).ok, name_covered("kkp.example.com", obs.leaf.sans_dns)
(True, 'kkp.example.com')
>>> verify_complete_chain(obs.chain_der, anchors).reason
"complete: the server presents every intermediate (path: CN=kkp.example.com -> CN=Example Root)"
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    ServerVerifier,
    Store,
    Subject,
    VerificationError,
)

from kkp_readiness.probes.tls import CertificateInfo

__all__ = [
    "ChainVerdict",
    "key_strength",
    "load_trust_anchors",
    "name_covered",
    "validity",
    "verify_complete_chain",
    "verify_trust",
]

_FALLBACK_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_PEM_CERT_RE = re.compile(rb"-----BEGIN CERTIFICATE-----\s.+?\s-----END CERTIFICATE-----", re.DOTALL)
_BUNDLE_SUFFIXES = (".pem", ".crt", ".cer")
# A made-up name under the reserved .invalid TLD, used when the leaf offers no name we can use.
_NO_NAME = "kkp-readiness.invalid"
_WILDCARD_STAND_IN = "kkp-readiness-wildcard"
_PROCESSING_RE = re.compile(r"\s*\(encountered processing <Certificate\(subject=<Name\((.*?)\)>, \.\.\.\)>\)")


# --------------------------------------------------------------------------------------------------
# Trust anchors


def load_trust_anchors(ca_bundle: str | Path | None) -> tuple[x509.Certificate, ...]:
    """Load the certificates a client would trust: a PEM bundle, a DER file, or a directory of them.

    Why: trust is always relative to a store; the profile names the site CA bundle, or None for
    the system store (``ssl.get_default_verify_paths().cafile``, else
    ``/etc/ssl/certs/ca-certificates.crt``). Certificates cryptography cannot parse are skipped;
    FileNotFoundError when the path does not exist, ValueError when it holds no certificate.

    >>> anchors = load_trust_anchors("/etc/kkp/ca.pem")
    >>> [a.subject.rfc4514_string() for a in anchors]
    ['CN=Example Root CA,O=Example']
    """
    if ca_bundle is None:
        cafile = ssl.get_default_verify_paths().cafile or _FALLBACK_BUNDLE
        path = Path(cafile)
        if not path.exists():
            raise FileNotFoundError(
                f"no system CA bundle found (looked for {cafile}); install ca-certificates or name "
                "the CA bundle in the profile"
            )
    else:
        path = Path(ca_bundle)
        if not path.exists():
            raise FileNotFoundError(f"CA bundle {path} does not exist; check the path in the profile")
    files = sorted(p for p in path.iterdir() if p.suffix in _BUNDLE_SUFFIXES) if path.is_dir() else [path]
    certs: list[x509.Certificate] = []
    seen: set[bytes] = set()
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise ValueError(f"CA bundle {file} cannot be read: {exc.strerror or exc}") from exc
        for cert in _parse_certificates(data):
            fingerprint = cert.fingerprint(hashes.SHA256())
            if fingerprint not in seen:
                seen.add(fingerprint)
                certs.append(cert)
    if not certs:
        raise ValueError(
            f"CA bundle {path} holds no X.509 certificate; expected PEM blocks "
            "'-----BEGIN CERTIFICATE-----' or one DER certificate"
        )
    return tuple(certs)


def certificates_in(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (or one DER certificate) held in memory, e.g. a ConfigMap's."""
    return _parse_certificates(data)


def _parse_certificates(data: bytes) -> list[x509.Certificate]:
    blocks = _PEM_CERT_RE.findall(data)
    if not blocks:
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:
            return []
    certs: list[x509.Certificate] = []
    for block in blocks:
        try:
            with warnings.catch_warnings():
                # System bundles hold a few legacy roots (e.g. serial 0) that cryptography warns about.
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                certs.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            continue  # one odd certificate in a system bundle must not hide all the others
    return certs


# --------------------------------------------------------------------------------------------------
# Names


def _normalise_dns(name: str) -> str | None:
    text = str(name).strip().rstrip(".").lower()
    if not text:
        return None
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return text


def name_covered(name: str, sans_dns: Iterable[str]) -> str | None:
    """Return the DNS SAN that covers ``name``, or None: RFC 6125 host name matching.

    Why return the SAN, not a bool: the evidence should say *which* entry matched. Rules:
    case-insensitive, trailing dot ignored, internationalised names compared as A-labels. A
    wildcard counts only as the whole left-most label and stands for exactly one non-empty label:
    ``*.kkp.lab`` covers ``a.kkp.lab`` but neither ``kkp.lab`` nor ``a.b.kkp.lab``. Partial
    wildcards (``f*.kkp.lab``) and wildcards with fewer than two labels after them (``*.lab``)
    cover nothing, as in OpenSSL. IP addresses are never covered by DNS SANs (see ``sans_ip``).

    >>> name_covered("grafana.kkp.example.com", ["kkp.example.com", "*.KKP.example.com"])
    '*.KKP.example.com'
    >>> name_covered("a.b.kkp.example.com", ["*.kkp.example.com"]) is None
    True
    """
    host = _normalise_dns(name)
    if host is None:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    labels = host.split(".")
    if any(not label for label in labels):
        return None
    for san in sans_dns:
        pattern = _normalise_dns(san)
        if pattern is None:
            continue
        if pattern == host:
            return san
        pattern_labels = pattern.split(".")
        if (
            pattern_labels[0] == "*"
            and "*" not in pattern[1:]
            and len(pattern_labels) >= 3
            and len(pattern_labels) == len(labels)
            and labels[0] != "*"
            and pattern_labels[1:] == labels[1:]
        ):
            return san
    return None


# --------------------------------------------------------------------------------------------------
# Chains


@dataclass(frozen=True)
class ChainVerdict:
    """The outcome of one chain judgement, with a human-readable reason.

    ``path`` lists the subjects of the path that was built (leaf first) when ``ok``.
    ``judgeable`` is False when the question could not be answered from the data (e.g. the chain
    leads to no trusted certificate, so its completeness cannot be told); a check should then
    report the trust problem rather than this one. ``missing`` names intermediates the server
    should send but does not.

    >>> verify_trust(obs.chain_der, anchors)
    ChainVerdict(ok=True, reason='trusted: CN=kkp.example.com -> CN=Example Root', ...)
    """

    ok: bool
    reason: str
    path: tuple[str, ...] = ()
    judgeable: bool = True
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for evidence files.

        >>> verify_trust(obs.chain_der, anchors).to_dict()["ok"]
        True
        """
        return {
            "ok": self.ok,
            "reason": self.reason,
            "path": list(self.path),
            "judgeable": self.judgeable,
            "missing": list(self.missing),
        }


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _parse_chain(chain_der: Sequence[bytes]) -> tuple[list[x509.Certificate], str | None]:
    if not chain_der:
        return [], "no certificate was presented"
    certs: list[x509.Certificate] = []
    for index, der in enumerate(chain_der):
        try:
            certs.append(x509.load_der_x509_certificate(bytes(der)))
        except ValueError as exc:
            return [], f"presented certificate #{index} cannot be parsed: {exc}"
    return certs, None


def _subject_candidates(leaf: x509.Certificate) -> list[Subject]:
    # The server verifier insists on a name; names are judged by name_covered(), so take one the
    # leaf itself claims: plain DNS names first, then IPs, then wildcards with a stand-in label.
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = [str(v) for v in san.get_values_for_type(x509.DNSName)]
        ips = list(san.get_values_for_type(x509.IPAddress))
    except (x509.ExtensionNotFound, ValueError):
        dns_names, ips = [], []
    plain = [n for n in dns_names if not n.startswith("*.")]
    wild = [f"{_WILDCARD_STAND_IN}{n[1:]}" for n in dns_names if n.startswith("*.")]
    candidates: list[Subject] = [x509.DNSName(n) for n in plain]
    candidates += [x509.IPAddress(ip) for ip in ips]
    candidates += [x509.DNSName(n) for n in wild]
    candidates.append(x509.DNSName(_NO_NAME))
    return candidates


def _policy(anchors: Sequence[x509.Certificate], at: datetime) -> PolicyBuilder:
    # Web PKI defaults with one relaxation: a leaf without authorityKeyIdentifier is accepted,
    # as OpenSSL, Go and browsers do (self-made site certificates often lack it).
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.AuthorityKeyIdentifier, Criticality.NON_CRITICAL, None
    )
    return (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(at)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
    )


def _build_path(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime,
) -> tuple[list[x509.Certificate] | None, str]:
    """Return (path, "") when a path builds, else (None, raw verifier message)."""
    builder = _policy(anchors, at)
    # A presented self-signed root is never a useful intermediate (if trusted, it is in the store);
    # passing it makes cryptography loop on it until "chain construction exceeds max depth".
    intermediates = [c for c in intermediates if not _is_self_signed(c)]
    last_error = ""
    for subject in _subject_candidates(leaf):
        try:
            verifier: ServerVerifier = builder.build_server_verifier(subject)
        except ValueError:  # a SAN the verifier cannot take as a name (e.g. underscores)
            continue
        try:
            return list(verifier.verify(leaf, intermediates)), ""
        except VerificationError as exc:
            last_error = str(exc)
            if "no matching subjectAltName" not in last_error:
                return None, last_error
    return None, last_error or "the leaf offers no name a verifier can use"


def _explain(
    message: str,
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: Sequence[x509.Certificate],
) -> str:
    text = message.removeprefix("validation failed: ")
    text = _PROCESSING_RE.sub(lambda m: f" (at {m.group(1)})", text)
    if "no interior errors" in text:
        return _dead_end(leaf, intermediates, anchors)
    text = text.replace("candidates exhausted: ", "no acceptable path: ")
    return text


def _dead_end(
    leaf: x509.Certificate, intermediates: list[x509.Certificate], anchors: Sequence[x509.Certificate]
) -> str:
    # Follow issuer names through what was presented, to say where the path breaks.
    anchor_subjects = {a.subject for a in anchors}
    current = leaf
    for _ in range(len(intermediates) + 1):
        if _is_self_signed(current):
            return (
                f"untrusted: the chain ends at the self-signed certificate '{_subject(current)}', "
                "which is not among the trust anchors"
            )
        if current.issuer in anchor_subjects:
            return (
                f"no path: the issuer '{current.issuer.rfc4514_string()}' of '{_subject(current)}' is a "
                "trust anchor but does not verify it (different key or signature)"
            )
        parent = next((c for c in intermediates if c.subject == current.issuer and c is not current), None)
        if parent is None:
            break
        current = parent
    return (
        f"untrusted: the issuer '{current.issuer.rfc4514_string()}' of '{_subject(current)}' is neither "
        "presented by the server nor among the trust anchors"
    )


def _default_at(certs: Sequence[x509.Certificate], at: datetime | None) -> datetime:
    # The earliest moment at which every presented certificate is valid: one second after the
    # latest notBefore (usually the leaf's own), but never after the leaf's notAfter. Deterministic,
    # inside the leaf's validity, and fair to an intermediate re-issued after the leaf.
    if at is not None:
        return at
    leaf = certs[0]
    moment = max(c.not_valid_before_utc for c in certs) + timedelta(seconds=1)
    return min(moment, leaf.not_valid_after_utc)


def _require_anchors(anchors: Sequence[x509.Certificate]) -> None:
    if not anchors:
        raise ValueError("no trust anchors given; load them with load_trust_anchors()")


def _trust(
    chain_der: Sequence[bytes], anchors: Sequence[x509.Certificate], at: datetime | None
) -> tuple[ChainVerdict, list[x509.Certificate]]:
    _require_anchors(anchors)
    certs, problem = _parse_chain(chain_der)
    if problem:
        return ChainVerdict(ok=False, reason=f"cannot judge: {problem}", judgeable=False), []
    leaf, intermediates = certs[0], certs[1:]
    path, message = _build_path(leaf, intermediates, anchors, _default_at(certs, at))
    if path is None:
        return ChainVerdict(ok=False, reason=_explain(message, leaf, intermediates, anchors)), []
    subjects = tuple(_subject(c) for c in path)
    return ChainVerdict(ok=True, reason=f"trusted: {' -> '.join(subjects)}", path=subjects), path


def verify_trust(
    chain_der: Sequence[bytes], anchors: Sequence[x509.Certificate], at: datetime | None = None
) -> ChainVerdict:
    """Judge whether the presented chain leads to one of ``anchors`` (any certificate in them).

    Why independent of name and time: name coverage (:func:`name_covered`) and expiry
    (:func:`validity`) are requirements of their own. The chain is verified with web PKI rules as
    a server certificate for a name the leaf itself claims, at ``at`` (default: one second after
    the latest notBefore among the presented certificates, normally the leaf's, and never after the
    leaf's notAfter; so a moment inside the leaf's validity). Intermediates from the bundle count
    as anchors here, as in OpenSSL.
    ``reason`` is the verifier's message made readable, or the path when trusted.

    >>> verify_trust(obs.chain_der, load_trust_anchors(None)).reason
    "untrusted: the issuer 'CN=Example Root' of 'CN=Example Intermediate' is neither presented ..."
    """
    verdict, _ = _trust(chain_der, anchors, at)
    return verdict


def verify_complete_chain(
    chain_der: Sequence[bytes], anchors: Sequence[x509.Certificate], at: datetime | None = None
) -> ChainVerdict:
    """Judge whether the server presents every intermediate between its leaf and a root.

    Why: clients that only know the roots (most of them) fail when an intermediate is missing,
    even though a browser that cached it succeeds. The chain is verified with ONLY the
    self-signed anchors as the store and only the presented certificates as intermediates.
    When that fails but :func:`verify_trust` (all anchors) succeeds, the verdict names the
    missing intermediates (``missing``; the first is the issuer of the last presented
    certificate). When the chain leads to no trusted certificate at all, completeness cannot be
    judged: ``ok=False, judgeable=False``.

    >>> verify_complete_chain(leaf_only_der, anchors_with_intermediate).missing
    ('CN=Example Intermediate CA',)
    """
    _require_anchors(anchors)
    certs, problem = _parse_chain(chain_der)
    if problem:
        return ChainVerdict(ok=False, reason=f"cannot judge: {problem}", judgeable=False)
    leaf, presented = certs[0], certs[1:]
    at = _default_at(certs, at)
    roots = [a for a in anchors if _is_self_signed(a)]
    if roots:
        path, _message = _build_path(leaf, presented, roots, at)
        if path is not None:
            subjects = tuple(_subject(c) for c in path)
            return ChainVerdict(
                ok=True,
                reason=f"complete: the server presents every intermediate (path: {' -> '.join(subjects)})",
                path=subjects,
            )
    trust, trust_path = _trust(chain_der, anchors, at)
    if not trust.ok:
        return ChainVerdict(
            ok=False,
            reason=f"cannot judge: chain does not lead to any trusted certificate ({trust.reason})",
            judgeable=False,
        )
    presented_der = {c.tbs_certificate_bytes for c in certs}
    missing = tuple(
        _subject(c)
        for c in trust_path[1:]
        if c.tbs_certificate_bytes not in presented_der and not _is_self_signed(c)
    )
    if not missing:
        return ChainVerdict(
            ok=False,
            reason=(
                f"cannot judge: the chain ends at '{trust.path[-1]}', which is not a self-signed root, and "
                "no root in the trust anchors completes it; add the root CA to the bundle"
            ),
            path=trust.path,
            judgeable=False,
        )
    last = certs[-1]
    return ChainVerdict(
        ok=False,
        reason=(
            f"incomplete chain: the server does not send intermediate {', '.join(repr(m) for m in missing)} "
            f"(the first missing is the issuer of '{_subject(last)}', the last certificate it presents); "
            "serve the leaf followed by every intermediate"
        ),
        path=trust.path,
        missing=missing,
    )


# --------------------------------------------------------------------------------------------------
# Validity and key strength


def validity(cert: CertificateInfo, now: datetime) -> tuple[str, float]:
    """Return ("valid" | "expired" | "not-yet-valid", days until notAfter; negative once expired).

    Why days as a float: checks warn ahead of expiry (e.g. fewer than 30 days) and the evidence
    shows how close it is. Both bounds are inclusive (RFC 5280). ``now`` must be timezone-aware.

    >>> validity(obs.leaf, datetime.now(UTC))
    ('valid', 61.4)
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware, e.g. datetime.now(UTC)")
    days_left = (cert.not_after - now).total_seconds() / 86400.0
    if now < cert.not_before:
        return ("not-yet-valid", days_left)
    if now > cert.not_after:
        return ("expired", days_left)
    return ("valid", days_left)


def key_strength(cert: CertificateInfo, min_rsa_bits: int = 2048, min_ec_bits: int = 256) -> tuple[bool, str]:
    """Return (strong enough, description) for the certificate's public key.

    Why: the inspection handshake observes weak keys that modern clients refuse; this says so
    before a client does. RSA and EC are held to the minimums; Ed25519 and Ed448 are accepted;
    DSA and unknown key types are not (TLS 1.3 clients do not support them).

    >>> key_strength(obs.leaf)
    (False, 'RSA 1024 bits, below the minimum of 2048')
    """
    kind = cert.key_type
    if kind == "RSA":
        if cert.key_bits < min_rsa_bits:
            return (False, f"RSA {cert.key_bits} bits, below the minimum of {min_rsa_bits}")
        return (True, f"RSA {cert.key_bits} bits")
    if kind == "EC":
        curve = f" {cert.curve}" if cert.curve else ""
        if cert.key_bits < min_ec_bits:
            return (False, f"EC{curve} {cert.key_bits} bits, below the minimum of {min_ec_bits}")
        return (True, f"EC{curve} {cert.key_bits} bits")
    if kind in ("Ed25519", "Ed448"):
        return (True, kind)
    if kind == "DSA":
        return (False, f"DSA {cert.key_bits} bits: DSA keys are not supported by TLS 1.3 clients")
    return (False, f"unsupported key type {kind!r}")
