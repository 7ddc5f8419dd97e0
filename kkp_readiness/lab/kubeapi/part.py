"""The ``kubeapi`` part: the lab's Kubernetes API server, its certificate and kubeconfigs.

Healthy: the cluster of ``clusters/healthy.yaml`` served over HTTPS on ``KUBEAPI_ADDRESS`` and a
free port, with a certificate from the lab intermediate (SANs ``kubernetes.kkp.lab``, the
in-cluster ``kubernetes.default...`` names and IP ``127.0.0.1``). The server accepts bearer tokens
and client certificates issued by the lab CA. Four kubeconfigs are written to
``<workdir>/kubeapi/``, all trusting the lab root CA, context ``kkp-lab``, mode 0600:

* ``kubeconfig``: the reader token (the identity the suite reads with);
* ``kubeconfig-restricted``: the token that is forbidden storage classes;
* ``kubeconfig-client-cert``: the reader as a client certificate (CN its user name), embedded as
  ``client-certificate-data``/``client-key-data``;
* ``kubeconfig-exec``: an exec credential plugin (``client.authentication.k8s.io/v1``): this
  Python running ``exec-credential.py``, which prints an ExecCredential with the reader token.

The last two prove that the suite authenticates as kubectl does with each kubeconfig form a site
may hand over; they always present the reader.

The server runs the pods of Jobs on this machine (see ``store``): their volumes are directories
under ``<workdir>/kubeapi/volumes``; the StorageClasses of ``KubePlan.slow_volume_classes`` get
theirs under ``<workdir>/kubeapi/volumes-slow``, a throttled loop-device filesystem (as the perf
part's slow disk; needs root), which ``stop`` removes again (also from another process: the
state records it).

Faults edit the ``KubePlan`` (the cluster's objects, whether the server runs, which token the
main kubeconfig carries) before anything is written or started.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

import kkp_readiness
from kkp_readiness.errors import LabError
from kkp_readiness.lab.ca import LabCA, utcnow
from kkp_readiness.lab.kubeapi.cluster import READER, RESTRICTED, KubePlan
from kkp_readiness.lab.part import LabContext, Part, write_private
from kkp_readiness.lab.perf_part import make_slow_disk, remove_slow_disk
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
#: O values (groups) of the reader's client certificate; what SelfSubjectReview reports with it.
CLIENT_CERT_GROUPS = ("kkp-readiness",)
#: The ExecCredential API version of the exec plugin (the stable one, as kubectl writes it today).
EXEC_API_VERSION = "client.authentication.k8s.io/v1"


def kubeconfig(url: str, root_ca_pem: bytes, user: str, credentials: dict[str, Any]) -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context (``kkp-lab``), as ``kubectl config`` writes.

    ``credentials`` is the user's entry (``{"token": ...}``, ``{"client-certificate-data": ...}``,
    ``{"exec": {...}}``): the kubeconfigs differ only there.
    """
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
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": KUBE_CONTEXT, "context": {"cluster": KUBE_CONTEXT, "user": user}}],
        "current-context": KUBE_CONTEXT,
        "preferences": {},
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def client_cert_credentials(cert_chain_pem: bytes, key_pem: bytes) -> dict[str, Any]:
    """A kubeconfig user with an embedded client certificate (the chain up to the intermediate) and key."""
    return {"client-certificate-data": _b64(cert_chain_pem), "client-key-data": _b64(key_pem)}


def exec_credentials(script: Path) -> dict[str, Any]:
    """A kubeconfig user whose credential comes from ``script``, run by this Python as an exec plugin.

    ``interactiveMode: Never``: the plugin never prompts, so a suite in CI or a pod cannot hang on it.
    """
    return {
        "exec": {
            "apiVersion": EXEC_API_VERSION,
            "command": sys.executable,
            "args": [str(script)],
            "interactiveMode": "Never",
        }
    }


def exec_plugin_script(token: str) -> str:
    """The source of a minimal exec credential plugin: print an ExecCredential carrying ``token``."""
    credential = {"apiVersion": EXEC_API_VERSION, "kind": "ExecCredential", "status": {"token": token}}
    return (
        '"""Exec credential plugin of the lab\'s kubeconfig-exec (generated; holds a token, mode 0600)."""\n'
        f"print({json.dumps(credential)!r})\n"
    )


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


#: KKP's CA bundle ConfigMap (KubermaticConfiguration spec.caBundle) and its key.
KKP_CA_BUNDLE = ("kubermatic", "ca-bundle", "ca-bundle.pem")


def _fill_kkp_ca_bundle(plan: KubePlan, ctx: LabContext, directory: Path) -> None:
    """Put the CA bundle the plan asks for into KKP's ConfigMap (when the fixture has KKP installed)."""
    namespace, name, key = KKP_CA_BUNDLE
    try:
        config_map = plan.cluster.find("ConfigMap", name, namespace)
    except LabError:
        return
    if plan.kkp_ca_bundle == "lab":
        bundle = ctx.ca.bundle_path.read_text()
    else:
        bundle = LabCA(directory / "unrelated-ca", label="Unrelated").bundle_path.read_text()
    config_map.setdefault("data", {})[key] = bundle


class KubeApiPart(Part):
    """A Kubernetes API test server (``python -m kkp_readiness.lab.kubeapi``) on a free port."""

    name = "kubeapi"
    undo: ClassVar[dict[str, Callable[[Any], None]]] = {"slow_disk": remove_slow_disk}

    def start(self, ctx: LabContext) -> dict[str, Any]:
        plan = KubePlan()
        for fault in ctx.faults_for(self.name):
            fault.apply(plan)
        cluster = plan.cluster
        cluster.generate_tokens()
        directory = ctx.directory(self.name)
        _fill_kkp_ca_bundle(plan, ctx, directory)
        cluster_file = write_private(directory / "cluster.json", json.dumps(cluster.to_dict(), indent=1) + "\n")
        now = utcnow()
        valid = (now - dt.timedelta(days=1), now + dt.timedelta(days=365))
        leaf = ctx.ca.issue_leaf(
            (KUBEAPI_NAME, *IN_CLUSTER_NAMES),
            *valid,
            stem="kubeapi",
            directory=directory / "certs",
            ip_addresses=(KUBEAPI_ADDRESS,),
        )
        reader = cluster.token(READER)
        client = ctx.ca.issue_client(
            reader.user, CLIENT_CERT_GROUPS, *valid, stem=f"client-{reader.name}", directory=directory / "certs"
        )
        request_log = directory / REQUEST_LOG
        root_ca = ctx.ca.root.cert_path.absolute()
        self.state = {}
        volumes: dict[str, Any] = {"volumes_dir": str(directory / "volumes"), "class_volumes_dirs": {}}
        (directory / "volumes").mkdir(exist_ok=True)
        if plan.slow_volume_classes and plan.serve:
            if not ctx.as_root:
                raise LabError("the slow-volumes fault needs root (loop device, mount, block throttle)")
            slow = directory / "volumes-slow"
            self.state["slow_disk"] = make_slow_disk(directory / "volumes-slow.img", slow)
            volumes["class_volumes_dirs"] = {name: str(slow) for name in sorted(plan.slow_volume_classes)}
        if plan.serve:
            try:
                daemon = self.launch(
                    lambda: self._server(
                        directory, cluster_file, leaf.fullchain, leaf.key, request_log, root_ca, volumes
                    )
                )
            except BaseException:
                if "slow_disk" in self.state:
                    remove_slow_disk(self.state.pop("slow_disk"))
                raise
            port, pid = int(daemon.port or 0), daemon.pid
        else:
            # kube-unreachable: the kubeconfigs point at a port nothing listens on.
            port, pid = free_port(KUBEAPI_ADDRESS, udp=False), None
        url = f"https://{KUBEAPI_ADDRESS}:{port}"
        root_pem = root_ca.read_bytes()
        main_token = cluster.token(plan.kubeconfig_token)
        restricted = cluster.token(RESTRICTED)
        script = write_private(directory / "exec-credential.py", exec_plugin_script(reader.token))

        def write(name: str, user: str, credentials: dict[str, Any]) -> Path:
            document = kubeconfig(url, root_pem, f"kkp-readiness-{user}", credentials)
            return write_private(directory / name, yaml.safe_dump(document, sort_keys=False))

        main = write("kubeconfig", main_token.name, {"token": main_token.token})
        limited = write("kubeconfig-restricted", restricted.name, {"token": restricted.token})
        with_cert = write(
            "kubeconfig-client-cert",
            f"{reader.name}-cert",
            client_cert_credentials(client.fullchain.read_bytes(), client.key.read_bytes()),
        )
        with_exec = write("kubeconfig-exec", f"{reader.name}-exec", exec_credentials(script))
        self.state.update({
            "url": url,
            "address": KUBEAPI_ADDRESS,
            "port": port,
            "pid": pid,
            "serving": plan.serve,
            "kubeconfig": str(main),
            "kubeconfig_restricted": str(limited),
            "kubeconfig_client_cert": str(with_cert),
            "kubeconfig_exec": str(with_exec),
            "context": KUBE_CONTEXT,
            "version": cluster.version,
            "request_log": str(request_log),
            "cluster": str(cluster_file),
            "root_ca": str(root_ca),
            "volumes_dir": volumes["volumes_dir"],
        })
        return self.state

    def _server(
        self,
        directory: Path,
        cluster_file: Path,
        cert_chain: Path,
        key: Path,
        request_log: Path,
        root_ca: Path,
        volumes: dict[str, Any],
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
                    "client_ca": str(root_ca),
                    "cluster": str(cluster_file),
                    "request_log": str(request_log),
                    **volumes,
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


__all__ = [
    "READER",
    "RESTRICTED",
    "KubeApiPart",
    "LoggedRequest",
    "client_cert_credentials",
    "exec_credentials",
    "exec_plugin_script",
    "kubeconfig",
    "probe",
    "read_request_log",
]
