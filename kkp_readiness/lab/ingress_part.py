"""The lab's ingress: NGINX terminating TLS for the KKP ingress names on 127.0.0.10.

KKP publishes its dashboard and MLA services through an NGINX ingress controller, so the
certificate checks are pointed at a real NGINX: what a client sees (SNI handling, the chain the
server sends, the key it signs with) comes from the same TLS stack as on a site, not from a
Python server that might behave differently.

Healthy: one certificate for ``kkp.lab`` and ``*.kkp.lab`` issued by the lab intermediate, served
with that intermediate (full chain, without the root) for every SNI name. Faults edit the
``TlsPlan`` (names, validity, key size, issuing CA, chain, extra server blocks) before anything is
issued or written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kkp_readiness.lab.ca import LabCA, LeafFiles, utcnow
from kkp_readiness.lab.part import LabContext, Part
from kkp_readiness.lab.process import Daemon, free_port
from kkp_readiness.lab.topology import BASE_DOMAIN, INGRESS_ADDRESS, require_loopback
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


@dataclass
class TlsPlan:
    """Everything the ingress serves; faults edit it before certificates are issued."""

    default: ServerBlock = field(default_factory=ServerBlock)
    extra: list[ServerBlock] = field(default_factory=list)
    #: Lower OpenSSL's security level so that NGINX accepts weak keys (cert-weak-key).
    allow_weak_keys: bool = False

    def blocks(self) -> list[ServerBlock]:
        return [self.default, *self.extra]


def handshake(port: int, server_name: str = BASE_DOMAIN, timeout: float = 1.0) -> bool:
    """Complete a TLS handshake with the ingress; raises TlsProbeError when NGINX does not answer.

    The readiness probe must work under every fault (expired, untrusted, weak key), so it uses the
    suite's own inspection handshake, which records what is presented and trusts nothing.
    """
    observation = fetch_presented_chain(require_loopback(INGRESS_ADDRESS), port, server_name, timeout=timeout)
    return bool(observation.chain)


def render_nginx_conf(
    directory: Path, port: int, blocks: list[tuple[ServerBlock, LeafFiles]], allow_weak: bool, as_root: bool
) -> str:
    """nginx.conf listening only on ``INGRESS_ADDRESS:port`` with every path inside ``directory``."""
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
            "    }",
        ]
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
        daemon = self.launch(lambda: self._nginx(ctx, directory, plan, issued))
        self.state = {
            "address": INGRESS_ADDRESS,
            "https_port": daemon.port,
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
        self, ctx: LabContext, directory: Path, plan: TlsPlan, issued: list[tuple[ServerBlock, LeafFiles]]
    ) -> tuple[Daemon, Callable[[], bool]]:
        port = free_port(INGRESS_ADDRESS, udp=False)
        conf = directory / "nginx.conf"
        conf.write_text(render_nginx_conf(directory, port, issued, plan.allow_weak_keys, ctx.as_root))
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

    def answering(self) -> bool:
        return handshake(int(self.state["https_port"]), timeout=0.5)
