"""The lab's own certificate authority.

A customer site usually has a private PKI: a root CA, one or more intermediates, and server
certificates issued by an intermediate. The certificate checks must be exercised against that
shape (chain building, "CA bundle with all intermediates", missing intermediate), so the lab
builds the same three levels with ``cryptography`` instead of using a self-signed certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kkp_readiness.errors import LabError


def utcnow() -> dt.datetime:
    """Current time, timezone-aware UTC (what ``cryptography`` expects for validity bounds)."""
    return dt.datetime.now(dt.UTC)


def _new_key(key_size: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "KKP readiness lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, private: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if private:
        os.chmod(path, 0o600)
    return path


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as lowercase hex, the form tests compare served certificates with."""
    return cert.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class Authority:
    """One CA certificate with its key, able to sign certificates below it."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    cert_path: Path

    @property
    def name(self) -> x509.Name:
        return self.cert.subject


@dataclass(frozen=True)
class LeafFiles:
    """A server or client certificate as written to disk.

    ``cert`` is the leaf alone, ``fullchain`` the leaf followed by its issuing intermediate (what
    a correctly configured server, or client, sends), ``key`` the unencrypted private key.
    """

    cert: Path
    key: Path
    fullchain: Path
    certificate: x509.Certificate

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)


def _ca_certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: Authority | None,
    path_length: int | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """Build a CA certificate; ``issuer=None`` makes it a self-signed root."""
    public = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.name if issuer else _name(subject))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    signer = issuer.key if issuer else key
    return builder.sign(signer, hashes.SHA256())


class LabCA:
    """A root CA and an intermediate CA under it, written to ``directory``.

    Files: ``root-ca.pem``, ``root-ca.key``, ``intermediate-ca.pem``, ``intermediate-ca.key`` and
    ``ca-bundle.pem`` (root then intermediate: what a customer hands over as "the CA bundle with
    all intermediates"). Several independent instances can exist in one lab (the
    ``cert-untrusted-ca`` fault uses a second, unrelated one).
    """

    def __init__(self, directory: Path, label: str = "KKP Lab", key_size: int = 2048) -> None:
        self.directory = Path(directory)
        self.label = label
        now = utcnow()
        # Long-lived, as real CAs are: an expired leaf (cert-expired) still chains to a CA that was
        # valid during the leaf's whole lifetime, so only the validity requirement fails.
        not_before = now - dt.timedelta(days=3 * 365)
        root_key = _new_key(key_size)
        root_cert = _ca_certificate(
            f"{label} Root CA", root_key, None, 1, not_before, now + dt.timedelta(days=3650)
        )
        self.root = Authority(
            root_cert, root_key, _write(self.directory / "root-ca.pem", cert_pem(root_cert))
        )
        _write(self.directory / "root-ca.key", key_pem(root_key), private=True)
        inter_key = _new_key(key_size)
        inter_cert = _ca_certificate(
            f"{label} Intermediate CA", inter_key, self.root, 0, not_before, now + dt.timedelta(days=1825)
        )
        self.intermediate = Authority(
            inter_cert, inter_key, _write(self.directory / "intermediate-ca.pem", cert_pem(inter_cert))
        )
        _write(self.directory / "intermediate-ca.key", key_pem(inter_key), private=True)
        self.bundle_path = _write(
            self.directory / "ca-bundle.pem", cert_pem(root_cert) + cert_pem(inter_cert)
        )

    def issue_leaf(
        self,
        names: Sequence[str],
        not_before: dt.datetime,
        not_after: dt.datetime,
        key_size: int = 2048,
        issuer: Authority | None = None,
        stem: str = "server",
        directory: Path | None = None,
        ip_addresses: Sequence[str] = (),
    ) -> LeafFiles:
        """Issue a TLS server certificate for DNS ``names`` and write it as ``<stem>.{crt,key}``.

        ``ip_addresses`` become IP SANs as well (the lab's Kubernetes API is reached by address).

        ``issuer`` defaults to this CA's intermediate; passing the root (or another CA's
        intermediate) lets faults build chains that are wrong on purpose. The first name is also
        the subject CN, as many real certificates do, but only the SANs matter to clients.
        """
        if not names:
            raise LabError("a leaf certificate needs at least one DNS name")
        sans = x509.SubjectAlternativeName(
            [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        )
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        return self._issue(
            subject, ExtendedKeyUsageOID.SERVER_AUTH, sans, not_before, not_after, key_size, issuer, stem, directory
        )

    def issue_client(
        self,
        user: str,
        groups: Sequence[str],
        not_before: dt.datetime,
        not_after: dt.datetime,
        key_size: int = 2048,
        issuer: Authority | None = None,
        stem: str = "client",
        directory: Path | None = None,
    ) -> LeafFiles:
        """Issue a TLS client certificate for a Kubernetes user and write it as ``<stem>.{crt,key}``.

        kube-apiserver takes the user name from the subject CN and the groups from its O values,
        and accepts only certificates for client authentication (extendedKeyUsage clientAuth), so
        the certificate is built exactly that way. ``issuer`` defaults to this CA's intermediate.
        """
        if not user:
            raise LabError("a client certificate needs a user name (its CN)")
        subject = x509.Name(
            [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
            + [x509.NameAttribute(NameOID.COMMON_NAME, user)]
        )
        return self._issue(
            subject, ExtendedKeyUsageOID.CLIENT_AUTH, None, not_before, not_after, key_size, issuer, stem, directory
        )

    def _issue(
        self,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        sans: x509.SubjectAlternativeName | None,
        not_before: dt.datetime,
        not_after: dt.datetime,
        key_size: int,
        issuer: Authority | None,
        stem: str,
        directory: Path | None,
    ) -> LeafFiles:
        """Sign an end-entity certificate for ``usage`` and write it (server and client leaves share this)."""
        issuer = issuer or self.intermediate
        directory = Path(directory) if directory is not None else self.directory
        key = _new_key(key_size)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
            )
        )
        if sans is not None:
            builder = builder.add_extension(sans, critical=False)
        cert = builder.sign(issuer.key, hashes.SHA256())
        leaf = cert_pem(cert)
        chain = leaf if issuer.cert.subject == issuer.cert.issuer else leaf + cert_pem(issuer.cert)
        return LeafFiles(
            cert=_write(directory / f"{stem}.crt", leaf),
            key=_write(directory / f"{stem}.key", key_pem(key), private=True),
            fullchain=_write(directory / f"{stem}-fullchain.crt", chain),
            certificate=cert,
        )
