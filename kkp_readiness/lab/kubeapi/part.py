"""The ``kubeapi`` part: the lab's Kubernetes API server, its certificate and kubeconfigs.

Healthy: the cluster of ``clusters/healthy.yaml`` served over HTTPS on ``KUBEAPI_ADDRESS`` and a
free port, with a certificate from the lab intermediate (SANs ``kubernetes.kkp.lab``, the
in-cluster ``kubernetes.default...`` names and IP ``127.0.0.1``). Two kubeconfigs are written to
``<workdir>/kubeapi/``: ``kubeconfig`` (the reader token) and ``kubeconfig-restricted`` (the token
that is forbidden storage classes), both trusting the lab root CA, context ``kkp-lab``.

Faults edit the ``KubePlan`` (the cluster's objects, whether the server runs, which token the
main kubeconfig carries) before anything is written or started.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import kkp_readiness
from kkp_readiness.lab.ca import utcnow
from kkp_readiness.lab.kubeapi.cluster import READER, RESTRICTED, KubePlan
from kkp_readiness.lab.part import LabContext, Part
from kkp_readiness.lab.process import Daemon, free_port
from kkp_readiness.lab.topology import KUBE_CONTEXT, KUBEAPI_ADDRESS, KUBEAPI_NAME, require_loopback

#: DNS names in the server certificate besides ``KUBEAPI_NAME`` (what a kube-apiserver's has).
IN_CLUSTER_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
REQUEST_LOG = "requests.log"


def _write_private(path: Path, text: str) -> Path:
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def kubeconfig(url: str, root_ca_pem: bytes, user: str, token: str) -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context (``kkp-lab``), as ``kubectl config`` writes."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": KUBE_CONTEXT,
                "cluster": {
                    "server": url,
                    "certificate-authority-data": base64.b64encode(root_ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": KUBE_CONTEXT, "context": {"cluster": KUBE_CONTEXT, "user": user}}],
        "current-context": KUBE_CONTEXT,
        "preferences": {},
    }


def probe(port: int, cafile: Path, path: str = "/readyz", timeout: float = 1.0) -> bool:
    """True if the server on ``KUBEAPI_ADDRESS:port`` answers ``path`` with 200 over verified TLS."""
    context = ssl.create_default_context(cafile=str(cafile))
    connection = http.client.HTTPSConnection(require_loopback(KUBEAPI_ADDRESS), port, timeout=timeout, context=context)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    finally:
        connection.close()


@dataclass(frozen=True)
class LoggedRequest:
    """One line of the request log."""

    time: str
    method: str
    path: str
    status: int
    user: str

    @property
    def writes(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


def read_request_log(path: Path | str) -> list[LoggedRequest]:
    """The requests the server answered so far (``state["kubeapi"]["request_log"]``)."""
    requests = []
    for line in Path(path).read_text().splitlines():
        fields = line.split(" ")
        if len(fields) == 5 and fields[3].isdigit():
            requests.append(LoggedRequest(fields[0], fields[1], fields[2], int(fields[3]), fields[4]))
    return requests


class KubeApiPart(Part):
    """A Kubernetes API test server (``python -m kkp_readiness.lab.kubeapi``) on a free port."""

    name = "kubeapi"

    def start(self, ctx: LabContext) -> dict[str, Any]:
        plan = KubePlan()
        for fault in ctx.faults_for(self.name):
            fault.apply(plan)
        cluster = plan.cluster
        cluster.generate_tokens()
        directory = ctx.directory(self.name)
        cluster_file = _write_private(directory / "cluster.json", json.dumps(cluster.to_dict(), indent=1) + "\n")
        now = utcnow()
        leaf = ctx.ca.issue_leaf(
            (KUBEAPI_NAME, *IN_CLUSTER_NAMES),
            now - dt.timedelta(days=1),
            now + dt.timedelta(days=365),
            stem="kubeapi",
            directory=directory / "certs",
            ip_addresses=(KUBEAPI_ADDRESS,),
        )
        request_log = directory / REQUEST_LOG
        root_ca = ctx.ca.root.cert_path.absolute()
        if plan.serve:
            daemon = self.launch(
                lambda: self._server(directory, cluster_file, leaf.fullchain, leaf.key, request_log, root_ca)
            )
            port, pid = int(daemon.port or 0), daemon.pid
        else:
            # kube-unreachable: the kubeconfigs point at a port nothing listens on.
            port, pid = free_port(KUBEAPI_ADDRESS, udp=False), None
        url = f"https://{KUBEAPI_ADDRESS}:{port}"
        root_pem = root_ca.read_bytes()
        main_token = cluster.token(plan.kubeconfig_token)
        restricted = cluster.token(RESTRICTED)
        main = _write_private(
            directory / "kubeconfig",
            yaml.safe_dump(
                kubeconfig(url, root_pem, f"kkp-readiness-{main_token.name}", main_token.token), sort_keys=False
            ),
        )
        limited = _write_private(
            directory / "kubeconfig-restricted",
            yaml.safe_dump(
                kubeconfig(url, root_pem, f"kkp-readiness-{restricted.name}", restricted.token), sort_keys=False
            ),
        )
        self.state = {
            "url": url,
            "address": KUBEAPI_ADDRESS,
            "port": port,
            "pid": pid,
            "serving": plan.serve,
            "kubeconfig": str(main),
            "kubeconfig_restricted": str(limited),
            "context": KUBE_CONTEXT,
            "version": cluster.version,
            "request_log": str(request_log),
            "cluster": str(cluster_file),
            "root_ca": str(root_ca),
        }
        return self.state

    def _server(
        self, directory: Path, cluster_file: Path, cert_chain: Path, key: Path, request_log: Path, root_ca: Path
    ) -> tuple[Daemon, Callable[[], bool]]:
        port = free_port(KUBEAPI_ADDRESS, udp=False)
        config = directory / "config.json"
        config.write_text(
            json.dumps(
                {
                    "address": require_loopback(KUBEAPI_ADDRESS),
                    "port": port,
                    "cert_chain": str(cert_chain),
                    "key": str(key),
                    "cluster": str(cluster_file),
                    "request_log": str(request_log),
                },
                indent=2,
            )
            + "\n"
        )
        argv = [sys.executable, "-m", "kkp_readiness.lab.kubeapi", "--config", str(config)]
        # The package's parent directory as working directory: "-m" finds the package there even
        # when it is not installed (a plain checkout on PYTHONPATH).
        cwd = Path(kkp_readiness.__file__).resolve().parents[1]
        daemon = Daemon(
            "kubeapi", argv, directory / "kubeapi.out", marker=str(config), extra_logs=[request_log], cwd=cwd, port=port
        )
        return daemon, lambda: probe(port, root_ca)

    def answering(self) -> bool:
        """The server answers ``/readyz`` over TLS verified with the lab root CA."""
        if not self.state.get("serving", True):
            return False
        return probe(int(self.state["port"]), Path(self.state["root_ca"]), timeout=0.5)


__all__ = ["READER", "RESTRICTED", "KubeApiPart", "LoggedRequest", "kubeconfig", "probe", "read_request_log"]
