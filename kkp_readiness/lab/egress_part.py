"""The lab's "internet": the site's resolver and proxy, stand-ins for the allowlisted hosts, registries.

What the PROXY and INSTALLER checks need is the path out of a site: the bastion resolving a public
name through the site's DNS, asking the site's HTTP proxy (with credentials, behind an allowlist)
for a tunnel, and the far host answering over verified TLS. Every piece here is real:

* **resolver**: a dnsmasq on the lab's egress address, port 53, forwarding to the lab DNS. The bastion's
  sshd and the proxy run in a private mount namespace whose ``/etc/resolv.conf`` names it
  (:func:`in_site_namespace`), so *they* resolve quay.io to a stand-in, exactly as a site's resolver
  answers its bastion; nothing else on the machine is affected, and no name ever resolves to an
  address off loopback (the lab DNS forwards nothing).
* **internet**: NGINX on the egress address, ports 443 and 80, answering for every host of
  ``data/proxy_allowlist.yaml`` with a certificate of the lab CA (which stands for the public CAs, or
  a TLS-inspecting proxy's CA). github.com redirects release downloads to objects.githubusercontent.com,
  which serves the pinned KKP installer archive; quay.io's ``/v2/`` is a real registry behind it.
* **proxy**: tinyproxy with Basic authentication, a filter that allows exactly the allowlist, and
  CONNECT to port 443 only.
* **registries**: Debian's docker-registry twice: the offline mirror ``registry.kkp.lab`` (TLS, htpasswd
  Basic authentication) and the Enterprise Edition registry behind quay.io (token authentication,
  tokens from :mod:`registry_token`), both filled with small real images by :mod:`registry_push`.

It needs root: ports 53, 80 and 443 on its own loopback address, and ``unshare``/``mount`` for the
namespace. Addresses are chosen per lab (``LabContext.egress_address``), so labs run side by side.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import json
import secrets
import socket
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

import kkp_readiness
from kkp_readiness.allowlist import all_hosts
from kkp_readiness.errors import LabError
from kkp_readiness.kkp_release import installer_archive, release_images
from kkp_readiness.lab.ca import utcnow
from kkp_readiness.lab.config_repo_part import LAB_SECRET_MARKER
from kkp_readiness.lab.part import LabContext, Part
from kkp_readiness.lab.process import Daemon, free_port
from kkp_readiness.lab.registry_push import push
from kkp_readiness.lab.registry_token import mint, write_signing_key
from kkp_readiness.lab.topology import LAB_RELEASE, MIRROR_NAME, PROXY_NAME, require_loopback
from kkp_readiness.probes.registry import ImageRef

DNSMASQ = "/usr/sbin/dnsmasq"
NGINX = "/usr/sbin/nginx"
TINYPROXY = "/usr/bin/tinyproxy"
REGISTRY = "/usr/bin/docker-registry"
UNSHARE = "/usr/bin/unshare"

EE_SERVICE = "quay.io"
EE_ISSUER = "kkp-lab-quay-token-issuer"
#: The robot account behind the lab's EE pull secret (quay.io robot names contain a "+").
EE_ACCOUNT = "kubermatic+kkp-lab-customer"
#: The lab's own account that fills the EE registry (never handed to the suite).
EE_PUSHER = "kkp-lab-admin"
MIRROR_ACCOUNT = "mirror-pull"
PROXY_ACCOUNT = "kkp-proxy"
#: What the EE registry holds: the pinned release's EE images.
EE_IMAGES = release_images("ee", LAB_RELEASE)
#: What the offline mirror holds (source references; the mirror drops the source registry).
MIRROR_IMAGES = (*EE_IMAGES, "quay.io/kubermatic/machine-controller:v1.61.0", "registry.k8s.io/pause:3.10")
#: Where github.com redirects release downloads (a path on the lab's objects.githubusercontent.com).
ASSETS_PATH = "/kkp-lab-release-assets"


def _secret(purpose: str) -> str:
    return f"{LAB_SECRET_MARKER}-{purpose}-{secrets.token_hex(4)}"


def in_site_namespace(argv: list[str], resolv_conf: Path) -> list[str]:
    """``argv`` run in a private mount namespace whose /etc/resolv.conf is ``resolv_conf``.

    ``unshare`` makes the namespace (propagation private: nothing leaks back to the host's mounts),
    the shell bind-mounts the lab's resolv.conf and replaces itself with the daemon, so the daemon
    keeps the PID the lab records and stops.
    """
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    return [UNSHARE, "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, str(resolv_conf), *argv]


@dataclass
class EgressPlan:
    """What the site's way out looks like; faults edit it before anything is written or started."""

    #: Allowlisted hosts the proxy's filter leaves out (the proxy answers 403 for them).
    denied_hosts: set[str] = field(default_factory=set)
    #: Whether github.com has the pinned release's installer archive.
    release_published: bool = True
    #: What the offline mirror holds.
    mirror_images: list[str] = field(default_factory=lambda: list(MIRROR_IMAGES))
    #: Whether the EE pull secret the lab hands out holds the robot account's current password.
    pull_secret_valid: bool = True
    #: Whether the proxy credentials the lab hands out are the proxy's.
    proxy_credentials_valid: bool = True
    #: Repositories the EE robot account may pull.
    ee_grants: list[str] = field(default_factory=lambda: [ImageRef.parse(image).repository for image in EE_IMAGES])


def _bcrypt(password: str) -> str:
    import bcrypt  # the lab's extra: only needed to write the mirror's htpasswd

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


def _tcp_answers(address: str, port: int) -> bool:
    with socket.create_connection((require_loopback(address), port), timeout=1.0):
        return True


class EgressPart(Part):
    """Resolver, internet stand-ins, proxy and registries on the lab's egress address."""

    name = "egress"

    def start(self, ctx: LabContext) -> dict[str, Any]:
        if not ctx.as_root:
            raise LabError("the egress part needs root: it binds ports 53, 80 and 443 on its own loopback "
                           "address and gives the bastion and the proxy a private resolv.conf (unshare, mount)")
        plan = EgressPlan()
        for fault in ctx.faults_for(self.name):
            fault.apply(plan)
        self.plan = plan
        self.directory = directory = ctx.directory(self.name)
        self.address = address = ctx.egress_address()
        now = utcnow()
        names = (*all_hosts(), PROXY_NAME, MIRROR_NAME)
        self.leaf = ctx.ca.issue_leaf(names, now - dt.timedelta(days=1), now + dt.timedelta(days=90),
                                      stem="internet", directory=directory)
        resolv_conf = directory / "resolv.conf"
        resolv_conf.write_text(f"nameserver {address}\noptions timeout:1 attempts:2\n")
        self.passwords = {"mirror": _secret("mirror"), "ee": _secret("ee"), "proxy": _secret("proxy"),
                          "pusher": _secret("pusher")}
        self._resolver(ctx, directory)
        token_port = self.launch(self._token_server).port
        ee_port = self.launch(self._ee_registry).port
        mirror_port = self.launch(self._mirror_registry).port
        assert token_port
        assert ee_port
        assert mirror_port
        self._internet(directory, token_port, ee_port)
        proxy_port = self.launch(lambda: self._proxy(resolv_conf)).port
        self._fill_registries(ctx, ee_port, mirror_port)
        files = self._write_client_files(directory)
        self.state = {
            "address": address,
            "resolv_conf": str(resolv_conf),
            "proxy_url": f"http://{PROXY_NAME}:{proxy_port}",
            "proxy_credentials_file": str(files["proxy"]),
            "mirror_url": f"https://{MIRROR_NAME}:{mirror_port}",
            "mirror_user": MIRROR_ACCOUNT,
            "mirror_password_file": str(files["mirror"]),
            "pull_secret_file": str(files["pull_secret"]),
            "cloud_password_file": str(files["cloud"]),
            "release": LAB_RELEASE,
            "offline_archive": str(files["archive"]),
        }
        return self.state

    # -- daemons ---------------------------------------------------------------------------------

    def _resolver(self, ctx: LabContext, directory: Path) -> None:
        primary = ctx.states["dns"]["primary"]
        conf = directory / "resolver.conf"
        conf.write_text("\n".join([
            "# kkp_readiness lab: the site resolver of the bastion and the proxy (generated)",
            f"listen-address={self.address}", "port=53", "bind-interfaces", "no-resolv", "no-hosts",
            "cache-size=0", f"server={primary.replace(':', '#')}", f"pid-file={directory / 'resolver.pid'}",
            "user=root" if ctx.as_root else "", "keep-in-foreground", "log-facility=-",
        ]) + "\n")

        def make() -> tuple[Daemon, Callable[[], bool]]:
            daemon = Daemon("egress-resolver", [DNSMASQ, f"--conf-file={conf}"], directory / "resolver.log",
                            marker=str(conf), port=53)
            return daemon, lambda: _tcp_answers(self.address, 53)

        self.launch(make)

    def _token_server(self) -> tuple[Daemon, Callable[[], bool]]:
        directory = self.directory
        key, cert = directory / "token-signing.key", directory / "token-signing.crt"
        if not key.exists():
            write_signing_key(key, cert, EE_ISSUER)
        port = free_port(self.address, udp=False)
        config = directory / "token-server.json"
        config.write_text(json.dumps({
            "address": self.address, "port": port, "service": EE_SERVICE, "issuer": EE_ISSUER,
            "key": str(key), "cert": str(cert),
            "users": {EE_ACCOUNT: self.passwords["ee"], EE_PUSHER: self.passwords["pusher"]},
            "grants": {EE_ACCOUNT: self.plan.ee_grants, EE_PUSHER: ["*"]}, "pushers": [EE_PUSHER],
        }))
        config.chmod(0o600)
        cwd = Path(kkp_readiness.__file__).resolve().parents[1]
        daemon = Daemon("egress-token-server", [sys.executable, "-m", "kkp_readiness.lab.registry_token", str(config)],
                        directory / "token-server.log", marker=str(config), cwd=cwd, port=port)
        return daemon, lambda: _tcp_answers(self.address, port)

    def _registry(self, role: str, settings: dict[str, Any]) -> tuple[Daemon, Callable[[], bool]]:
        directory = self.directory
        port = free_port(self.address, udp=False)
        config = directory / f"registry-{role}.yaml"
        http: dict[str, Any] = {"addr": f"{self.address}:{port}", "secret": secrets.token_hex(16)}
        if settings.pop("tls", False):
            http["tls"] = {"certificate": str(self.leaf.fullchain), "key": str(self.leaf.key)}
        document = {"version": 0.1, "log": {"level": "warn", "accesslog": {"disabled": True}},
                    "storage": {"filesystem": {"rootdirectory": str(directory / f"registry-{role}-data")},
                                "delete": {"enabled": True}},
                    "http": http, **settings}
        config.write_text(json.dumps(document))
        daemon = Daemon(f"egress-registry-{role}", [REGISTRY, "serve", str(config)], directory / f"registry-{role}.log",
                        marker=str(config), port=port)
        return daemon, lambda: _tcp_answers(self.address, port)

    def _ee_registry(self) -> tuple[Daemon, Callable[[], bool]]:
        key_cert = self.directory / "token-signing.crt"
        return self._registry("ee", {"auth": {"token": {"realm": f"https://{EE_SERVICE}/v2/auth",
                                                        "service": EE_SERVICE, "issuer": EE_ISSUER,
                                                        "rootcertbundle": str(key_cert)}}})

    def _mirror_registry(self) -> tuple[Daemon, Callable[[], bool]]:
        htpasswd = self.directory / "mirror.htpasswd"
        htpasswd.write_text(f"{MIRROR_ACCOUNT}:{_bcrypt(self.passwords['mirror'])}\n")
        return self._registry("mirror", {"tls": True, "auth": {"htpasswd": {"realm": "kkp-lab-mirror",
                                                                             "path": str(htpasswd)}}})

    def _internet(self, directory: Path, token_port: int, ee_port: int) -> None:
        assets = directory / "release-assets" / LAB_RELEASE
        assets.mkdir(parents=True, exist_ok=True)
        if self.plan.release_published:
            (assets / installer_archive("ee", LAB_RELEASE)).write_bytes(_archive_bytes())
        conf = directory / "internet-nginx.conf"
        logs = directory / "nginx-logs"
        logs.mkdir(exist_ok=True)
        address = self.address
        acme = json.dumps({"newNonce": "https://acme-v02.api.letsencrypt.org/acme/new-nonce",
                           "newAccount": "https://acme-v02.api.letsencrypt.org/acme/new-acct",
                           "newOrder": "https://acme-v02.api.letsencrypt.org/acme/new-order"})
        special = {"quay.io", "github.com", "objects.githubusercontent.com", "acme-v02.api.letsencrypt.org"}
        names = " ".join(h for h in all_hosts() if h not in special)
        tls = f"ssl_certificate {self.leaf.fullchain}; ssl_certificate_key {self.leaf.key};"
        conf.write_text(f"""# kkp_readiness lab: stand-ins for the allowlisted internet hosts (generated)
user root;
worker_processes 1;
pid {directory / 'internet-nginx.pid'};
error_log {logs / 'error.log'} notice;
events {{ worker_connections 128; }}
http {{
    access_log {logs / 'access.log'};
    client_body_temp_path {directory / 'nginx-tmp-body'};
    proxy_temp_path {directory / 'nginx-tmp-proxy'};
    fastcgi_temp_path {directory / 'nginx-tmp-fastcgi'};
    uwsgi_temp_path {directory / 'nginx-tmp-uwsgi'};
    scgi_temp_path {directory / 'nginx-tmp-scgi'};
    default_type text/plain;
    server {{
        listen {address}:443 ssl default_server; listen {address}:80 default_server;
        server_name {names};
        {tls}
        location / {{ return 200 "kkp lab stand-in for $host\\n"; }}
    }}
    server {{
        listen {address}:443 ssl;
        server_name quay.io;
        {tls}
        location = /v2/auth {{ proxy_pass http://{address}:{token_port}; }}
        location /v2/ {{ proxy_pass http://{address}:{ee_port}; proxy_set_header Host $host; }}
        location / {{ return 200 "kkp lab stand-in for quay.io\\n"; }}
    }}
    server {{
        listen {address}:443 ssl;
        server_name github.com;
        {tls}
        location ~ ^/kubermatic/kubermatic/releases/download/(?<tag>[^/]+)/(?<asset>[^/]+)$ {{
            if (!-f {directory / 'release-assets'}/$tag/$asset) {{ return 404; }}
            return 302 https://objects.githubusercontent.com{ASSETS_PATH}/$tag/$asset;
        }}
        location / {{ return 200 "kkp lab stand-in for github.com\\n"; }}
    }}
    server {{
        listen {address}:443 ssl;
        server_name objects.githubusercontent.com;
        {tls}
        location {ASSETS_PATH}/ {{ alias {directory / 'release-assets'}/; default_type application/octet-stream; }}
        location / {{ return 200 "kkp lab stand-in for objects.githubusercontent.com\\n"; }}
    }}
    server {{
        listen {address}:443 ssl;
        server_name acme-v02.api.letsencrypt.org;
        {tls}
        location = /directory {{ default_type application/json; return 200 '{acme}'; }}
        location / {{ return 404; }}
    }}
}}
""")

        def make() -> tuple[Daemon, Callable[[], bool]]:
            argv = [NGINX, "-p", f"{directory}/", "-c", str(conf), "-e", str(logs / "error.log"), "-g", "daemon off;"]
            daemon = Daemon("egress-internet-nginx", argv, logs / "nginx.out", marker=str(conf),
                            extra_logs=[logs / "error.log"], port=443)
            return daemon, lambda: _tcp_answers(address, 443)

        self.launch(make)

    def _proxy(self, resolv_conf: Path) -> tuple[Daemon, Callable[[], bool]]:
        directory = self.directory
        port = free_port(self.address, udp=False)
        allowed = [h for h in (*all_hosts(),) if h not in self.plan.denied_hosts]
        filter_file = directory / "proxy-allowlist"
        filter_file.write_text("".join(f"^{h.replace('.', '[.]')}$\n" for h in allowed))
        conf = directory / "tinyproxy.conf"
        conf.write_text("\n".join([
            "# kkp_readiness lab: the site's forward proxy (generated)",
            "User root", "Group root",
            f"Listen {self.address}", f"Port {port}", "Timeout 15", "MaxClients 20",
            "Allow 127.0.0.0/8", f"BasicAuth {PROXY_ACCOUNT} {self.passwords['proxy']}",
            f'Filter "{filter_file}"', "FilterType ere", "FilterDefaultDeny Yes",
            "ConnectPort 443", "DisableViaHeader Yes", "LogLevel Info", f'PidFile "{directory / "tinyproxy.pid"}"',
        ]) + "\n")
        conf.chmod(0o600)
        daemon = Daemon("egress-proxy", in_site_namespace([TINYPROXY, "-d", "-c", str(conf)], resolv_conf),
                        directory / "tinyproxy.log", marker=str(conf), port=port)
        return daemon, lambda: _tcp_answers(self.address, port)

    # -- content ---------------------------------------------------------------------------------

    def _fill_registries(self, ctx: LabContext, ee_port: int, mirror_port: int) -> None:
        timeout = urllib3.Timeout(total=10)
        ee = urllib3.HTTPConnectionPool(self.address, ee_port, timeout=timeout, retries=False)
        for source in EE_IMAGES:
            image = ImageRef.parse(source)
            repository, tag = image.repository, image.reference
            token = mint(self.directory / "token-signing.key", self.directory / "token-signing.crt", EE_ISSUER,
                         EE_SERVICE, EE_PUSHER, [{"type": "repository", "name": repository,
                                                  "actions": ["pull", "push"]}])
            push(ee, repository, tag, {"Authorization": f"Bearer {token}"})
        mirror = urllib3.HTTPSConnectionPool(self.address, mirror_port, timeout=timeout, retries=False,
                                             server_hostname=MIRROR_NAME, ca_certs=str(ctx.ca.bundle_path),
                                             cert_reqs="CERT_REQUIRED")
        login = base64.b64encode(f"{MIRROR_ACCOUNT}:{self.passwords['mirror']}".encode()).decode()
        for source in self.plan.mirror_images:
            image = ImageRef.parse(source)
            push(mirror, image.repository, image.reference, {"Authorization": f"Basic {login}"})

    def _write_client_files(self, directory: Path) -> dict[str, Path]:
        """What the lab hands to the suite (through the lab profile's secret references)."""
        password = self.passwords["ee"] if self.plan.pull_secret_valid else _secret("revoked")
        auth = base64.b64encode(f"{EE_ACCOUNT}:{password}".encode()).decode()
        files = {"proxy": directory / "proxy-credentials", "mirror": directory / "mirror-password",
                 "pull_secret": directory / "pull-secret.json", "cloud": directory / "cloud-password"}
        files["cloud"].write_text(_secret("cloud") + "\n")
        proxy_password = self.passwords["proxy"] if self.plan.proxy_credentials_valid else _secret("stale")
        files["proxy"].write_text(f"{PROXY_ACCOUNT}:{proxy_password}\n")
        files["mirror"].write_text(self.passwords["mirror"] + "\n")
        files["pull_secret"].write_text(json.dumps({"auths": {EE_SERVICE: {"auth": auth}}}) + "\n")
        for path in files.values():
            path.chmod(0o600)
        archive = directory / "bastion-downloads" / installer_archive("ee", LAB_RELEASE)
        archive.parent.mkdir(exist_ok=True)
        archive.write_bytes(_archive_bytes())
        files["archive"] = archive
        return files

    def answering(self) -> bool:
        return all(_tcp_answers(self.state["address"], port) for port in (53, 80, 443))


def _archive_bytes() -> bytes:
    """A small real tar.gz standing for the installer archive (its first bytes are what is checked)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = b"#!/bin/sh\necho 'kubermatic-installer (kkp lab stand-in)'\n"
        info = tarfile.TarInfo("kubermatic-installer")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


