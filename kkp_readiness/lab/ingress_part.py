"""The lab's ingress: NGINX terminating TLS for the KKP ingress names on 127.0.0.10.

KKP publishes its dashboard and MLA services through an NGINX ingress controller, so the
certificate checks are pointed at a real NGINX: what a client sees (SNI handling, the chain the
server sends, the key it signs with) comes from the same TLS stack as on a site, not from a
Python server that might behave differently.

Healthy: one certificate for ``kkp.lab`` and ``*.kkp.lab`` issued by the lab intermediate, served
with that intermediate (full chain, without the root) for every SNI name. Faults edit the
``TlsPlan`` (names, validity, key size, issuing CA, chain, extra server blocks) before anything is
issued or written.

NGINX also serves the OpenID Connect documents the AUTH checks read, as static JSON files: Dex's
discovery document under ``kkp.lab/dex`` (KKP's Dex ingress), and an own provider (a Keycloak
stand-in) on ``sso.kkp.lab`` with its own certificate: discovery document and a JWK set with real
RSA public keys (the private halves are never kept; nothing is signed). Faults edit the
``IdentityPlan`` (declared issuers, published keys).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from kkp_readiness.lab.ca import LabCA, LeafFiles, utcnow
from kkp_readiness.lab.part import LabContext, Part
from kkp_readiness.lab.process import Daemon, free_port
from kkp_readiness.lab.topology import (
    BASE_DOMAIN,
    INGRESS_ADDRESS,
    NODEPORT_PROXY_ADDRESS,
    OIDC_PROVIDER_NAME,
    OIDC_REALM_PATH,
    require_loopback,
)
from kkp_readiness.oidc import DEX_PATH, WELL_KNOWN
from kkp_readiness.probes.tls import fetch_presented_chain

NGINX = "/usr/sbin/nginx"
#: Lets OpenSSL load and use keys below its default security level (RSA 1024, for cert-weak-key).
WEAK_CIPHERS = "DEFAULT:@SECLEVEL=0"


@dataclass
class LeafSpec:
    """A server certificate to issue; validity is relative to the moment the lab starts."""

    names: tuple[str, ...] = (BASE_DOMAIN, f"*.{BASE_DOMAIN}")
    valid_from: dt.timedelta = dt.timedelta(days=-1)
    valid_until: dt.timedelta = dt.timedelta(days=365)
    key_size: int = 2048
    #: "lab" = the lab intermediate (in the CA bundle); "unrelated" = a CA not in the bundle.
    issuer: str = "lab"


@dataclass
class ServerBlock:
    """One NGINX ``server``: which SNI names it answers (``_`` = default) and what it sends."""

    server_name: str = "_"
    leaf: LeafSpec = field(default_factory=LeafSpec)
    #: Send the issuing intermediate after the leaf (correct); False sends the leaf alone.
    full_chain: bool = True


#: Keycloak's paths below a realm, for the own provider's documents.
OIDC_PROTOCOL_PATH = "/protocol/openid-connect"


@dataclass
class IdentityPlan:
    """The OpenID Connect documents NGINX serves; faults edit them before they are written.

    Issuers are templates: ``{port}`` becomes the HTTPS port NGINX listens on, known only at launch
    (the lab's port is not 443, so it is part of every issuer, as on a site whose ingress uses another
    port). Healthy, each document declares exactly the URL it is served under.
    """

    dex_issuer: str = f"https://{BASE_DOMAIN}:{{port}}{DEX_PATH}"
    provider_issuer: str = f"https://{OIDC_PROVIDER_NAME}:{{port}}{OIDC_REALM_PATH}"
    #: The ``use`` of each key in the provider's JWK set: like Keycloak's default realm keys, one
    #: signing key (RS256) and one encryption key (RSA-OAEP).
    provider_key_uses: tuple[str, ...] = ("sig", "enc")


@dataclass
class TlsPlan:
    """Everything the ingress serves; faults edit it before certificates are issued."""

    default: ServerBlock = field(default_factory=ServerBlock)
    extra: list[ServerBlock] = field(default_factory=list)
    #: Lower OpenSSL's security level so that NGINX accepts weak keys (cert-weak-key).
    allow_weak_keys: bool = False
    #: The own OIDC provider's server: its own certificate, so that the ingress certificate faults do not
    #: reach it (an own provider is rarely served with KKP's certificate).
    provider: ServerBlock = field(
        default_factory=lambda: ServerBlock(OIDC_PROVIDER_NAME, LeafSpec(names=(OIDC_PROVIDER_NAME,)))
    )
    identity: IdentityPlan = field(default_factory=IdentityPlan)
    #: Whether NGINX listens for plain HTTP on its published ``http_port`` (it redirects to HTTPS, as
    #: KKP's ingress does); False: the port is published but closed (ACCESS-007's fault).
    http_listener: bool = True

    def blocks(self) -> list[ServerBlock]:
        return [self.default, *self.extra, self.provider]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def rsa_jwk(key: rsa.RSAPublicKey, use: str) -> dict[str, str]:
    """The public JWK of ``key`` (RFC 7517/7518), its ``kid`` the RFC 7638 thumbprint as providers use."""
    numbers = key.public_numbers()
    members = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    thumbprint = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    alg = "RS256" if use == "sig" else "RSA-OAEP"
    return {"kid": _b64url(thumbprint), "kty": "RSA", "alg": alg, "use": use, **members}


def new_jwks(uses: tuple[str, ...]) -> dict[str, list[dict[str, str]]]:
    """A JWK set with one fresh 2048-bit RSA public key per ``use``; the private keys are dropped at once."""
    return {"keys": [rsa_jwk(rsa.generate_private_key(65537, 2048).public_key(), use) for use in uses]}


def _discovery(issuer: str, base: str, authorization: str, token: str, jwks: str, userinfo: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": base + authorization,
        "token_endpoint": base + token,
        "jwks_uri": base + jwks,
        "userinfo_endpoint": base + userinfo,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "groups", "profile", "offline_access"],
    }


def oidc_documents(
    plan: IdentityPlan, port: int, dex_jwks: dict[str, Any], provider_jwks: dict[str, Any]
) -> dict[str, dict[str, dict[str, Any]]]:
    """server name (``_`` = the default server, which answers ``kkp.lab``) -> {exact path: JSON document}.

    Endpoints are always the URLs the documents are really served under; only the declared issuers
    come from the plan, so that an issuer fault breaks the issuer and nothing else.
    """
    dex_base = f"https://{BASE_DOMAIN}:{port}{DEX_PATH}"
    realm = f"https://{OIDC_PROVIDER_NAME}:{port}{OIDC_REALM_PATH}"
    protocol = f"{OIDC_REALM_PATH}{OIDC_PROTOCOL_PATH}"
    return {
        "_": {
            f"{DEX_PATH}{WELL_KNOWN}": _discovery(plan.dex_issuer.format(port=port), dex_base,
                                                  "/auth", "/token", "/keys", "/userinfo"),
            f"{DEX_PATH}/keys": dex_jwks,
        },
        OIDC_PROVIDER_NAME: {
            f"{OIDC_REALM_PATH}{WELL_KNOWN}": _discovery(plan.provider_issuer.format(port=port), realm,
                                                         f"{OIDC_PROTOCOL_PATH}/auth", f"{OIDC_PROTOCOL_PATH}/token",
                                                         f"{OIDC_PROTOCOL_PATH}/certs",
                                                         f"{OIDC_PROTOCOL_PATH}/userinfo"),
            f"{protocol}/certs": provider_jwks,
        },
    }


def handshake(port: int, server_name: str = BASE_DOMAIN, timeout: float = 1.0) -> bool:
    """Complete a TLS handshake with the ingress; raises TlsProbeError when NGINX does not answer.

    The readiness probe must work under every fault (expired, untrusted, weak key), so it uses the
    suite's own inspection handshake, which records what is presented and trusts nothing.
    """
    observation = fetch_presented_chain(require_loopback(INGRESS_ADDRESS), port, server_name, timeout=timeout)
    return bool(observation.chain)


def render_nginx_conf(
    directory: Path,
    port: int,
    blocks: list[tuple[ServerBlock, LeafFiles]],
    allow_weak: bool,
    as_root: bool,
    documents: dict[str, dict[str, Path]] | None = None,
    http_port: int | None = None,
    nodeport_port: int | None = None,
) -> str:
    """nginx.conf listening only on ``INGRESS_ADDRESS:port`` with every path inside ``directory``.

    ``documents`` maps a server name to {exact request path: JSON file} that server answers with.
    ``http_port``: also plain HTTP on ``INGRESS_ADDRESS`` (a redirect to HTTPS). ``nodeport_port``: also a
    listener on ``NODEPORT_PROXY_ADDRESS`` standing for the seed's nodeport-proxy load balancer, so that
    ACCESS-007 dials a real open port there (the lab runs no user cluster whose node ports it would expose).
    """
    documents = documents or {}
    address = require_loopback(INGRESS_ADDRESS)
    tmp = directory / "tmp"
    logs = directory / "logs"
    lines = ["# kkp_readiness lab ingress (generated, do not edit)"]
    if as_root:
        # Without it NGINX running as root would switch its workers to "nobody".
        lines.append("user root;")
    lines += [
        "worker_processes 1;",
        f"pid {directory / 'nginx.pid'};",
        f"error_log {logs / 'error.log'} notice;",
        "events { worker_connections 128; }",
        "http {",
        f"    access_log {logs / 'access.log'};",
        f"    client_body_temp_path {tmp / 'client_body'};",
        f"    proxy_temp_path {tmp / 'proxy'};",
        f"    fastcgi_temp_path {tmp / 'fastcgi'};",
        f"    uwsgi_temp_path {tmp / 'uwsgi'};",
        f"    scgi_temp_path {tmp / 'scgi'};",
        "    default_type text/plain;",
        "    ssl_protocols TLSv1.2 TLSv1.3;",
        "    ssl_session_cache off;",
    ]
    if allow_weak:
        lines.append(f"    ssl_ciphers {WEAK_CIPHERS};")
    for block, files in blocks:
        default = " default_server" if block.server_name == "_" else ""
        certificate = files.fullchain if block.full_chain else files.cert
        lines += [
            "    server {",
            f"        listen {address}:{port} ssl{default};",
            f"        server_name {block.server_name};",
            f"        ssl_certificate {certificate};",
            f"        ssl_certificate_key {files.key};",
            '        location / { return 200 "kkp lab ingress: $host\\n"; }',
        ]
        for path, file in sorted(documents.get(block.server_name, {}).items()):
            lines.append(f"        location = {path} {{ default_type application/json; alias {file}; }}")
        lines.append("    }")
    if http_port is not None:
        lines.append(f"    server {{ listen {address}:{http_port}; return 308 https://$host:{port}$request_uri; }}")
    if nodeport_port is not None:
        proxy = require_loopback(NODEPORT_PROXY_ADDRESS)
        lines.append(f'    server {{ listen {proxy}:{nodeport_port}; return 200 "kkp lab nodeport-proxy\\n"; }}')
    lines.append("}")
    return "\n".join(lines) + "\n"


class IngressPart(Part):
    """NGINX on ``INGRESS_ADDRESS`` and a free port, serving the certificates of the plan."""

    name = "ingress"

    def start(self, ctx: LabContext) -> dict[str, Any]:
        plan = TlsPlan()
        for fault in ctx.faults_for(self.name):
            fault.apply(plan)
        directory = ctx.directory("nginx")
        for sub in ("logs", "tmp", "certs"):
            (directory / sub).mkdir(exist_ok=True)
        issued = self._issue(ctx, directory / "certs", plan)
        keys = (new_jwks(("sig",)), new_jwks(plan.identity.provider_key_uses))
        daemon = self.launch(lambda: self._nginx(ctx, directory, plan, issued, keys))
        self.state = {
            "address": INGRESS_ADDRESS,
            "https_port": daemon.port,
            "http_port": self._http_port,
            "nodeport_proxy_address": NODEPORT_PROXY_ADDRESS,
            "nodeport_proxy_port": self._nodeport_port,
            "pid": daemon.pid,
            "certificates": {block.server_name: str(files.cert) for block, files in issued},
        }
        return self.state

    def _issue(self, ctx: LabContext, directory: Path, plan: TlsPlan) -> list[tuple[ServerBlock, LeafFiles]]:
        now = utcnow()
        unrelated: LabCA | None = None
        issued = []
        for index, block in enumerate(plan.blocks()):
            leaf = block.leaf
            ca = ctx.ca
            if leaf.issuer == "unrelated":
                unrelated = unrelated or LabCA(directory / "unrelated-ca", label="Unrelated")
                ca = unrelated
            stem = "server" if block.server_name == "_" else f"server-{index}-{block.server_name}"
            files = ca.issue_leaf(
                leaf.names,
                now + leaf.valid_from,
                now + leaf.valid_until,
                key_size=leaf.key_size,
                stem=stem,
                directory=directory,
            )
            issued.append((block, files))
        return issued

    def _nginx(
        self,
        ctx: LabContext,
        directory: Path,
        plan: TlsPlan,
        issued: list[tuple[ServerBlock, LeafFiles]],
        keys: tuple[dict[str, Any], dict[str, Any]],
    ) -> tuple[Daemon, Callable[[], bool]]:
        port = free_port(INGRESS_ADDRESS, udp=False)
        self._http_port = free_port(INGRESS_ADDRESS, udp=False)
        self._nodeport_port = free_port(NODEPORT_PROXY_ADDRESS, udp=False)
        documents = self._write_documents(directory / "oidc", oidc_documents(plan.identity, port, *keys))
        conf = directory / "nginx.conf"
        conf.write_text(render_nginx_conf(directory, port, issued, plan.allow_weak_keys, ctx.as_root, documents,
                                          http_port=self._http_port if plan.http_listener else None,
                                          nodeport_port=self._nodeport_port))
        error_log = directory / "logs" / "error.log"
        argv = [NGINX, "-p", f"{directory}/", "-c", str(conf), "-e", str(error_log), "-g", "daemon off;"]
        daemon = Daemon(
            "ingress-nginx",
            argv,
            directory / "logs" / "nginx.out",
            marker=str(conf),
            extra_logs=[error_log],
            port=port,
        )
        return daemon, lambda: handshake(port)

    @staticmethod
    def _write_documents(
        directory: Path, documents: dict[str, dict[str, dict[str, Any]]]
    ) -> dict[str, dict[str, Path]]:
        """Write each document as a JSON file (the issuers carry the port, so once per launch attempt)."""
        directory.mkdir(exist_ok=True)
        files: dict[str, dict[str, Path]] = {}
        for server, by_path in documents.items():
            for path, document in by_path.items():
                stem = ("default" if server == "_" else server) + path.replace("/", "_").replace(".", "-")
                file = directory / f"{stem}.json"
                file.write_text(json.dumps(document, indent=2) + "\n")
                files.setdefault(server, {})[path] = file
        return files

    def answering(self) -> bool:
        return handshake(int(self.state["https_port"]), timeout=0.5)
