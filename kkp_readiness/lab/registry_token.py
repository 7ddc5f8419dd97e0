"""The lab's registry token service: the stand-in for quay.io's ``/v2/auth``, for a real registry.

Why a token service: the Enterprise Edition images live on quay.io, which authenticates pulls with
the Docker Registry token flow (a 401 challenge naming a realm; the realm trades credentials for a
bearer token listing the repositories and actions granted). The lab runs Debian's docker-registry
(the CNCF distribution registry) configured for token auth; it verifies every token's ES256
signature against the certificate the lab gives it. This module is the other half: it checks the
credentials of the lab's accounts and signs tokens that grant exactly what each account may pull.

Run as ``python -m kkp_readiness.lab.registry_token CONFIG.json``; the configuration holds the
listen address, the accounts (name -> password), each account's grants (repository names, ``*`` for
all) and whether it may push, and the paths of the signing key and its certificate.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

#: How long a token is valid, as quay.io's (seconds).
TOKEN_LIFETIME = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def write_signing_key(key_path: Path, cert_path: Path, issuer: str) -> None:
    """A new P-256 key and its self-signed certificate (the registry's ``rootcertbundle``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def mint(key_path: Path, cert_path: Path, issuer: str, service: str, subject: str,
         access: list[dict[str, Any]]) -> str:
    """A registry bearer token (JWS, ES256, the certificate in ``x5c``) granting ``access``."""
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    now = int(dt.datetime.now(dt.UTC).timestamp())
    header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER))
                                                    .decode()]}
    claims = {"iss": issuer, "sub": subject, "aud": service, "iat": now, "nbf": now - 10,
              "exp": now + TOKEN_LIFETIME, "jti": secrets.token_hex(8), "access": access}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def granted(config: dict[str, Any], user: str | None, scopes: list[str]) -> list[dict[str, Any]]:
    """The requested repository scopes the account may have: pull where granted, push if allowed."""
    access = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind != "repository" or not name:
            continue
        grants = config["grants"].get(user or "", [])
        if "*" not in grants and name not in grants:
            continue
        allowed = {"pull"} | ({"push"} if user in config.get("pushers", []) else set())
        wanted = [a for a in actions.split(",") if a in allowed]
        if wanted:
            access.append({"type": "repository", "name": name, "actions": wanted})
    return access


class TokenHandler(BaseHTTPRequestHandler):
    config: ClassVar[dict[str, Any]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _reply(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/v2/auth":
            self._reply(404, {"errors": [{"code": "NOT_FOUND"}]})
            return
        user = None
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            if self.config["users"].get(user) != password:
                self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]})
                return
        query = parse_qs(parts.query)
        service = (query.get("service") or [self.config["service"]])[0]
        token = mint(Path(self.config["key"]), Path(self.config["cert"]), self.config["issuer"], service,
                     user or "", granted(self.config, user, query.get("scope", [])))
        self._reply(200, {"token": token, "access_token": token, "expires_in": TOKEN_LIFETIME,
                          "issued_at": dt.datetime.now(dt.UTC).isoformat()})


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[0]).read_text())
    TokenHandler.config = config
    server = ThreadingHTTPServer((config["address"], config["port"]), TokenHandler)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
