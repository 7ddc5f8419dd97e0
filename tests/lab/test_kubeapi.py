"""The lab's Kubernetes API server, as the official client and kubectl see it.

Everything goes through the ``kubernetes`` client (or kubectl) with the lab kubeconfig and TLS
verified against the lab root CA from that kubeconfig, as the suite's checks do on real clusters.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import urllib3
import yaml
from cryptography import x509
from kubernetes.client import ApiClient, ApiException

from kkp_readiness.errors import KubeProbeError, LabError
from kkp_readiness.lab import Lab, LabCA, LabContext, resolve_faults
from kkp_readiness.lab.ca import utcnow
from kkp_readiness.lab.kubeapi import Cluster, KubeApiPart, read_request_log
from kkp_readiness.lab.kubeapi.part import client_cert_credentials, exec_credentials
from kkp_readiness.lab.kubeapi.selectors import SelectorError, field_matcher, label_matcher
from kkp_readiness.lab.kubeapi.store import Store
from kkp_readiness.lab.kubeapi.tables import human_age
from kkp_readiness.lab.topology import KUBE_CONTEXT, KUBEAPI_ADDRESS, KUBEAPI_NAME
from kkp_readiness.probes.kube import ClusterAccess, ClusterReader

READER_USER = "system:serviceaccount:kkp-readiness:reader"
#: The kubeconfigs that present the reader, one per credential form: token, client certificate, exec plugin.
AUTH_FORMS = ("kubeconfig", "kubeconfig_client_cert", "kubeconfig_exec")
EXEC_API = "client.authentication.k8s.io/v1"
FORBIDDEN_LIST = (
    f'storageclasses.storage.k8s.io is forbidden: User "{READER_USER}" cannot list resource "storageclasses" '
    'in API group "storage.k8s.io" at the cluster scope'
)
NODES = ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3"]
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
ZONE = "topology.kubernetes.io/zone"
GI_KI = 1024 * 1024


def _ki(quantity: str) -> int:
    assert quantity.endswith("Ki"), quantity
    return int(quantity[:-2])


def _client(kubeconfig: str | Path) -> ApiClient:
    return kubernetes.config.new_client_from_config(config_file=str(kubeconfig))


def _status(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def _name() -> str:
    return f"kkp-readiness-{uuid.uuid4().hex[:8]}"


# --- one healthy lab for the module ---------------------------------------------------------------


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


@pytest.fixture(scope="module")
def state(lab: Lab) -> dict[str, Any]:
    assert lab.state is not None
    return lab.state["kubeapi"]


@pytest.fixture(scope="module")
def api(state: dict[str, Any]) -> Iterator[ApiClient]:
    client = _client(state["kubeconfig"])
    yield client
    client.close()


@pytest.fixture(scope="module")
def core(api: ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api)


@pytest.fixture(scope="module")
def storage(api: ApiClient) -> kubernetes.client.StorageV1Api:
    return kubernetes.client.StorageV1Api(api)


# --- faults: the part alone, sharing one CA --------------------------------------------------------


@pytest.fixture(scope="module")
def shared_ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return LabCA(tmp_path_factory.mktemp("kubeapi-ca") / "ca")


@pytest.fixture
def start_part(shared_ca: LabCA) -> Iterator[Callable[..., dict[str, Any]]]:
    """Start only the kubeapi part with the given faults; stopped after the test."""
    parts: list[KubeApiPart] = []
    directories: list[str] = []

    def start(*faults: str) -> dict[str, Any]:
        workdir = Path(tempfile.mkdtemp(prefix="kkp-kubeapi-"))
        directories.append(str(workdir))
        part = KubeApiPart()
        parts.append(part)
        return part.start(LabContext(workdir, resolve_faults(faults), _ca=shared_ca))

    yield start
    for part in parts:
        part.stop()
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


# --- state, kubeconfig, certificate ---------------------------------------------------------------


def test_state_and_kubeconfigs(lab: Lab, state: dict[str, Any]) -> None:
    saved = json.loads(lab.state_file.read_text())["kubeapi"]
    assert saved == state
    assert state["url"] == f"https://{KUBEAPI_ADDRESS}:{state['port']}"
    assert isinstance(state["pid"], int)
    assert state["serving"] is True
    assert state["context"] == KUBE_CONTEXT
    assert lab.status()["kubeapi"] is True
    root_pem = Path(lab.state["root_ca"]).read_bytes()  # type: ignore[index]
    users = {}
    for key in (*AUTH_FORMS, "kubeconfig_restricted"):
        path = Path(state[key])
        assert path.is_file()
        assert path.stat().st_mode & 0o077 == 0
        assert path.parent == Path(state["kubeconfig"]).parent
        config = yaml.safe_load(path.read_text())
        assert config["current-context"] == KUBE_CONTEXT
        cluster = config["clusters"][0]["cluster"]
        assert cluster["server"] == state["url"]
        assert base64.b64decode(cluster["certificate-authority-data"]) == root_pem
        assert "insecure-skip-tls-verify" not in cluster
        users[key] = config["users"][0]["user"]
    tokens = [users["kubeconfig"]["token"], users["kubeconfig_restricted"]["token"]]
    assert tokens[0] != tokens[1]
    assert all(len(t) > 30 for t in tokens)
    assert set(users["kubeconfig_client_cert"]) == {"client-certificate-data", "client-key-data"}
    plugin = users["kubeconfig_exec"]["exec"]
    script = Path(plugin.pop("args")[0])
    assert plugin == {"apiVersion": EXEC_API, "command": sys.executable, "interactiveMode": "Never"}
    assert script.parent == Path(state["kubeconfig"]).parent
    assert script.stat().st_mode & 0o077 == 0  # it holds the token


def test_server_certificate_is_from_the_lab_ca_with_ip_and_dns_names(lab: Lab, state: dict[str, Any]) -> None:
    context = ssl.create_default_context(cafile=lab.state["root_ca"])  # type: ignore[index]
    with context.wrap_socket(
        socket.create_connection((KUBEAPI_ADDRESS, state["port"]), timeout=3),
        server_hostname=KUBEAPI_ADDRESS,
    ) as tls:
        leaf = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))  # type: ignore[arg-type]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert KUBEAPI_NAME in sans.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == [KUBEAPI_ADDRESS]


# --- reading --------------------------------------------------------------------------------------


def test_nodes(core: kubernetes.client.CoreV1Api) -> None:
    nodes = core.list_node().items
    assert [n.metadata.name for n in nodes] == NODES
    by_name = {n.metadata.name: n for n in nodes}
    for name, zone in zip(NODES, ["lab-a", "lab-b", "lab-c"] * 2, strict=True):
        node = by_name[name]
        labels = node.metadata.labels
        assert labels[ZONE] == zone
        assert labels["kubernetes.io/os"] == "linux"
        assert (CONTROL_PLANE in labels) == name.startswith("cp-")
        assert ("node-role.kubernetes.io/worker" in labels) == name.startswith("worker-")
        assert node.status.capacity["cpu"] == "4"
        assert _ki(node.status.capacity["memory"]) == 16 * GI_KI
        assert _ki(node.status.allocatable["memory"]) < 16 * GI_KI
        assert node.status.node_info.kubelet_version == "v1.31.4"
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert [(c.status, c.reason) for c in ready] == [("True", "KubeletReady")]
        assert node.metadata.resource_version
    addresses = [n.status.addresses[0].address for n in nodes]
    assert addresses == [f"127.0.1.{i}" for i in range(1, 7)]


def test_list_is_the_real_json_shape(api: ApiClient, core: kubernetes.client.CoreV1Api,
                                     state: dict[str, Any]) -> None:
    response = core.list_node(_preload_content=False)
    body = json.loads(response.data)
    assert body["kind"] == "NodeList"
    assert body["apiVersion"] == "v1"
    assert int(body["metadata"]["resourceVersion"]) >= max(int(i["metadata"]["resourceVersion"]) for i in body["items"])
    assert "continue" not in body["metadata"]
    # As kube-apiserver (kubernetes/kubernetes#3030): items of built-in lists carry no type meta.
    assert not [i for i in body["items"] if "kind" in i or "apiVersion" in i]
    sc = json.loads(kubernetes.client.StorageV1Api(api).list_storage_class(_preload_content=False).data)
    assert (sc["kind"], sc["apiVersion"]) == ("StorageClassList", "storage.k8s.io/v1")
    assert not [i for i in sc["items"] if "kind" in i]
    # Custom resources' items do carry it, and the suite's reader names every item's kind either way.
    pools = kubernetes.client.CustomObjectsApi(api).list_cluster_custom_object("metallb.io", "v1beta1",
                                                                              "ipaddresspools")
    assert {i["kind"] for i in pools["items"]} == {"IPAddressPool"}
    reader = _reader(state["kubeconfig"])
    assert {(i["kind"], i["apiVersion"]) for i in reader.nodes()} == {("Node", "v1")}
    assert {i["kind"] for i in reader.list("deployments")} == {"Deployment"}


def test_every_served_kind_deserializes_with_the_typed_client(api: ApiClient) -> None:
    """A missing required field would make the client raise ValueError in the checks."""
    core = kubernetes.client.CoreV1Api(api)
    apps = kubernetes.client.AppsV1Api(api)
    calls = [
        core.list_namespace,
        core.list_node,
        core.list_pod_for_all_namespaces,
        core.list_service_for_all_namespaces,
        core.list_endpoints_for_all_namespaces,
        core.list_persistent_volume_claim_for_all_namespaces,
        core.list_persistent_volume,
        core.list_config_map_for_all_namespaces,
        core.list_secret_for_all_namespaces,
        core.list_service_account_for_all_namespaces,
        core.list_event_for_all_namespaces,
        apps.list_deployment_for_all_namespaces,
        apps.list_daemon_set_for_all_namespaces,
        apps.list_stateful_set_for_all_namespaces,
        kubernetes.client.BatchV1Api(api).list_job_for_all_namespaces,
        kubernetes.client.StorageV1Api(api).list_storage_class,
        kubernetes.client.StorageV1Api(api).list_csi_driver,
        kubernetes.client.NetworkingV1Api(api).list_ingress_class,
        kubernetes.client.NetworkingV1Api(api).list_ingress_for_all_namespaces,
        kubernetes.client.DiscoveryV1Api(api).list_endpoint_slice_for_all_namespaces,
        kubernetes.client.ApiextensionsV1Api(api).list_custom_resource_definition,
    ]
    counts = {call.__name__: len(call().items) for call in calls}
    assert counts["list_namespace"] >= 8
    assert counts["list_pod_for_all_namespaces"] > 20
    assert counts["list_custom_resource_definition"] >= 7


def test_namespaces(core: kubernetes.client.CoreV1Api) -> None:
    names = {ns.metadata.name for ns in core.list_namespace().items}
    expected = {"default", "kube-system", "kubermatic", "cert-manager", "metallb-system", "monitoring", "mla", "minio"}
    assert expected <= names
    assert {ns.status.phase for ns in core.list_namespace().items} == {"Active"}


def test_storage_classes(storage: kubernetes.client.StorageV1Api) -> None:
    classes = {sc.metadata.name: sc for sc in storage.list_storage_class().items}
    assert set(classes) == {"kubermatic-fast", "kubermatic-backup", "standard"}
    fast, backup, standard = classes["kubermatic-fast"], classes["kubermatic-backup"], classes["standard"]
    assert {sc.provisioner for sc in classes.values()} == {"csi.vsphere.vmware.com"}
    assert {sc.volume_binding_mode for sc in classes.values()} == {"WaitForFirstConsumer"}
    assert fast.parameters == {"storagepolicyname": "kkp-ssd"}
    assert fast.allow_volume_expansion is True
    assert backup.parameters == {"storagepolicyname": "kkp-hdd"}
    default = [
        n
        for n, sc in classes.items()
        if (sc.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    assert default == ["standard"]
    assert standard.metadata.annotations["storageclass.kubernetes.io/is-default-class"] == "true"
    assert storage.read_storage_class("kubermatic-fast").metadata.name == "kubermatic-fast"


def test_pods_with_label_and_field_selectors(core: kubernetes.client.CoreV1Api) -> None:
    etcd = core.list_namespaced_pod("kube-system", label_selector="component=etcd").items
    assert [(p.metadata.name, p.spec.node_name, p.status.phase) for p in etcd] == [
        (f"etcd-cp-{i}", f"cp-{i}", "Running") for i in (1, 2, 3)
    ]
    assert all(p.metadata.labels["tier"] == "control-plane" for p in etcd)
    apiservers = core.list_namespaced_pod("kube-system", label_selector="component==kube-apiserver").items
    assert [p.metadata.name for p in apiservers] == [f"kube-apiserver-cp-{i}" for i in (1, 2, 3)]
    both = core.list_pod_for_all_namespaces(label_selector="component in (etcd, kube-apiserver),tier=control-plane")
    assert len(both.items) == 6
    on_cp1 = core.list_namespaced_pod("kube-system", field_selector="spec.nodeName=cp-1").items
    assert {"etcd-cp-1", "kube-apiserver-cp-1"} <= {p.metadata.name for p in on_cp1}
    assert {p.spec.node_name for p in on_cp1} == {"cp-1"}
    combined = core.list_pod_for_all_namespaces(
        label_selector="component=etcd", field_selector="spec.nodeName!=cp-1,status.phase=Running"
    ).items
    assert [p.metadata.name for p in combined] == ["etcd-cp-2", "etcd-cp-3"]
    assert core.list_namespaced_pod("default", label_selector="component=etcd").items == []
    not_cp = core.list_namespaced_pod("kube-system", label_selector="tier notin (control-plane),!component").items
    assert not_cp
    assert not any("component" in (p.metadata.labels or {}) for p in not_cp)
    by_name = core.list_pod_for_all_namespaces(field_selector="metadata.name=etcd-cp-2").items
    assert [(p.metadata.namespace, p.metadata.name) for p in by_name] == [("kube-system", "etcd-cp-2")]


def test_cilium_runs_on_every_node(api: ApiClient, core: kubernetes.client.CoreV1Api) -> None:
    ds = kubernetes.client.AppsV1Api(api).read_namespaced_daemon_set("cilium", "kube-system")
    assert (ds.status.number_ready, ds.status.desired_number_scheduled) == (6, 6)
    pods = core.list_pod_for_all_namespaces(label_selector="k8s-app=cilium").items
    assert len(pods) == 6
    assert all(p.metadata.name.startswith("cilium-") and p.metadata.namespace == "kube-system" for p in pods)
    assert sorted(p.spec.node_name for p in pods) == NODES


def test_services_and_metallb(api: ApiClient, core: kubernetes.client.CoreV1Api) -> None:
    nginx = core.read_namespaced_service("nginx-ingress-controller", "nginx-ingress-controller")
    proxy = core.read_namespaced_service("nodeport-proxy", "kubermatic")
    assert (nginx.spec.type, nginx.status.load_balancer.ingress[0].ip) == ("LoadBalancer", "127.0.0.10")
    assert (proxy.spec.type, proxy.status.load_balancer.ingress[0].ip) == ("LoadBalancer", "127.0.0.11")
    custom = kubernetes.client.CustomObjectsApi(api)
    pools = custom.list_namespaced_custom_object("metallb.io", "v1beta1", "metallb-system", "ipaddresspools")
    assert pools["kind"] == "IPAddressPoolList"
    assert [(p["metadata"]["name"], p["spec"]["addresses"]) for p in pools["items"]] == [
        ("kkp", ["127.0.0.10-127.0.0.20"])
    ]
    everywhere = custom.list_cluster_custom_object("metallb.io", "v1beta1", "ipaddresspools")
    assert len(everywhere["items"]) == 1
    peer = custom.get_namespaced_custom_object("metallb.io", "v1beta1", "metallb-system", "bgppeers", "router")
    assert peer["spec"] == {"peerAddress": "127.0.2.1", "peerASN": 64512, "myASN": 64513}
    adverts = custom.list_namespaced_custom_object("metallb.io", "v1beta1", "metallb-system", "bgpadvertisements")
    assert [a["metadata"]["name"] for a in adverts["items"]] == ["kkp"]
    assert (
        custom.list_namespaced_custom_object("metallb.io", "v1beta1", "metallb-system", "l2advertisements")["items"]
        == []
    )
    issuers = custom.list_cluster_custom_object("cert-manager.io", "v1", "clusterissuers")["items"]
    assert [i["metadata"]["name"] for i in issuers] == ["letsencrypt-prod"]
    crds = kubernetes.client.ApiextensionsV1Api(api).list_custom_resource_definition().items
    pool_crd = next(c for c in crds if c.metadata.name == "ipaddresspools.metallb.io")
    assert (pool_crd.spec.scope, pool_crd.spec.names.kind) == ("Namespaced", "IPAddressPool")


def test_version(api: ApiClient) -> None:
    version = kubernetes.client.VersionApi(api).get_code()
    assert (version.git_version, version.major, version.minor) == ("v1.31.4", "1", "31")


def test_discovery_drives_the_dynamic_client(api: ApiClient) -> None:
    dynamic = kubernetes.dynamic.DynamicClient(api)
    pools = dynamic.resources.get(api_version="metallb.io/v1beta1", kind="IPAddressPool")
    assert pools.namespaced is True
    assert [p.metadata.name for p in pools.get(namespace="metallb-system").items] == ["kkp"]
    sc = dynamic.resources.get(api_version="storage.k8s.io/v1", kind="StorageClass")
    assert sc.namespaced is False
    nodes = dynamic.resources.get(api_version="v1", kind="Node")
    assert len(nodes.get().items) == 6
    groups = {g.name for g in kubernetes.client.ApisApi(api).get_api_versions().groups}
    assert {
        "apps",
        "batch",
        "storage.k8s.io",
        "networking.k8s.io",
        "apiextensions.k8s.io",
        "metallb.io",
        "cert-manager.io",
        "kubermatic.k8c.io",
    } <= groups
    core = kubernetes.client.CoreApi(api).get_api_versions()
    assert core.versions == ["v1"]


# --- errors ---------------------------------------------------------------------------------------


def test_missing_object_is_a_404_status(
    core: kubernetes.client.CoreV1Api, storage: kubernetes.client.StorageV1Api
) -> None:
    with pytest.raises(ApiException) as excinfo:
        core.read_node("nope")
    assert excinfo.value.status == 404
    assert _status(excinfo.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'nodes "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "nodes"},
        "code": 404,
    }
    with pytest.raises(ApiException) as excinfo:
        storage.read_storage_class("nope")
    assert _status(excinfo.value)["message"] == 'storageclasses.storage.k8s.io "nope" not found'
    with pytest.raises(ApiException) as excinfo:
        core.read_namespaced_pod("etcd-cp-1", "default")
    assert excinfo.value.status == 404


def _unauthenticated(kubeconfig: str, token: str | None) -> ApiClient:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.refresh_api_key_hook = None  # it would put the kubeconfig's token back
    configuration.api_key = {"BearerToken": f"Bearer {token}"} if token else {}
    return ApiClient(configuration)


@pytest.mark.parametrize("token", [None, "not-a-lab-token"])
def test_missing_or_unknown_token_is_401(state: dict[str, Any], token: str | None) -> None:
    with _unauthenticated(state["kubeconfig"], token) as client, pytest.raises(ApiException) as excinfo:
        kubernetes.client.CoreV1Api(client).list_node()
    assert excinfo.value.status == 401
    body = _status(excinfo.value)
    assert (body["kind"], body["reason"], body["code"], body["status"]) == ("Status", "Unauthorized", 401, "Failure")


def test_version_is_public_but_not_with_a_bad_token(state: dict[str, Any]) -> None:
    with _unauthenticated(state["kubeconfig"], None) as client:
        assert kubernetes.client.VersionApi(client).get_code().git_version == "v1.31.4"
    with _unauthenticated(state["kubeconfig"], "bad") as client, pytest.raises(ApiException) as excinfo:
        kubernetes.client.VersionApi(client).get_code()
    assert excinfo.value.status == 401


def test_restricted_token_is_forbidden_storage_classes_only(state: dict[str, Any]) -> None:
    with _client(state["kubeconfig_restricted"]) as client:
        storage = kubernetes.client.StorageV1Api(client)
        with pytest.raises(ApiException) as excinfo:
            storage.list_storage_class()
        assert excinfo.value.status == 403
        body = _status(excinfo.value)
        assert body["message"] == FORBIDDEN_LIST
        assert (body["reason"], body["code"]) == ("Forbidden", 403)
        assert body["details"] == {"group": "storage.k8s.io", "kind": "storageclasses"}
        with pytest.raises(ApiException) as excinfo:
            storage.read_storage_class("standard")
        assert _status(excinfo.value)["message"].startswith(
            f'storageclasses.storage.k8s.io "standard" is forbidden: User "{READER_USER}" cannot get resource'
        )
        assert len(kubernetes.client.CoreV1Api(client).list_node().items) == 6
        review = kubernetes.client.AuthorizationV1Api(client).create_self_subject_access_review(
            {"spec": {"resourceAttributes": {"verb": "list", "group": "storage.k8s.io", "resource": "storageclasses"}}}
        )
        assert review.status.allowed is False


# --- credential forms: client certificates, exec plugins, in-cluster --------------------------------


def _reader(kubeconfig: str | Path | None) -> ClusterReader:
    """The suite's own reader (``None``: in-cluster configuration), as the cluster checks build it."""
    access = ClusterAccess(kubeconfig=None if kubeconfig is None else str(kubeconfig), context=None, timeout=5)
    return ClusterReader(access)


def _with_user(state: dict[str, Any], directory: Path, credentials: dict[str, Any]) -> Path:
    """A copy of the lab kubeconfig whose user entry is ``credentials`` (cluster, CA and context unchanged)."""
    config = yaml.safe_load(Path(state["kubeconfig"]).read_text())
    config["users"][0]["user"] = credentials
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _client_cert(ca: LabCA, user: str, directory: Path) -> dict[str, Any]:
    """Embedded client-certificate credentials for ``user``, issued by ``ca``."""
    now = utcnow()
    leaf = ca.issue_client(user, ["kkp-readiness"], now - dt.timedelta(days=1), now + dt.timedelta(days=1),
                           directory=directory)
    return client_cert_credentials(leaf.fullchain.read_bytes(), leaf.key.read_bytes())


def _last_user(state: dict[str, Any], path: str) -> str:
    """Who the server logged for the last request to ``path``."""
    return [r.user for r in read_request_log(state["request_log"]) if r.path == path][-1]


@pytest.mark.parametrize(("kubeconfig", "logged"), [
    ("kubeconfig", "reader"), ("kubeconfig_client_cert", "x509:reader"), ("kubeconfig_exec", "reader"),
])
def test_reader_works_with_every_credential_form(state: dict[str, Any], kubeconfig: str, logged: str) -> None:
    assert [n["metadata"]["name"] for n in _reader(state[kubeconfig]).nodes()] == NODES
    assert _last_user(state, "/api/v1/nodes") == logged  # the form under test reached the server, nothing else


def test_client_certificate_as_files_next_to_the_kubeconfig(state: dict[str, Any], tmp_path: Path) -> None:
    """The other kubeconfig form: ``client-certificate``/``client-key`` naming files, relative to the kubeconfig."""
    embedded = yaml.safe_load(Path(state["kubeconfig_client_cert"]).read_text())["users"][0]["user"]
    for name, key in (("client.crt", "client-certificate-data"), ("client.key", "client-key-data")):
        (tmp_path / name).write_bytes(base64.b64decode(embedded[key]))
        (tmp_path / name).chmod(0o600)
    kubeconfig = _with_user(state, tmp_path, {"client-certificate": "client.crt", "client-key": "client.key"})
    assert len(_reader(kubeconfig).nodes()) == 6
    assert _last_user(state, "/api/v1/nodes") == "x509:reader"


def test_client_certificate_user_is_its_cn_and_groups_its_o(state: dict[str, Any]) -> None:
    with _client(state["kubeconfig_client_cert"]) as client:
        review = kubernetes.client.AuthenticationV1Api(client).create_self_subject_review({})
        # the reader's grants, not the restricted token's (same user name): storage classes are readable
        assert len(kubernetes.client.StorageV1Api(client).list_storage_class().items) >= 3
    assert review.status.user_info.username == READER_USER
    assert review.status.user_info.groups == ["kkp-readiness", "system:authenticated"]


# A part of its own for certificates the test issues: its server trusts ``shared_ca``, whose keys the test holds.


def test_client_certificate_is_tried_before_the_token(
    start_part: Callable[..., dict[str, Any]], shared_ca: LabCA, tmp_path: Path
) -> None:
    state = start_part()
    credentials = {**_client_cert(shared_ca, READER_USER, tmp_path), "token": "not-a-lab-token"}
    assert len(_reader(_with_user(state, tmp_path, credentials)).nodes()) == 6
    assert _last_user(state, "/api/v1/nodes") == "x509:reader"


def test_client_certificate_of_an_unknown_user_is_authenticated_but_forbidden(
    start_part: Callable[..., dict[str, Any]], shared_ca: LabCA, tmp_path: Path
) -> None:
    """As for a user without RBAC bindings: 403 naming the certificate's user, not 401."""
    state = start_part()
    kubeconfig = _with_user(state, tmp_path, _client_cert(shared_ca, "jane", tmp_path))
    with _client(kubeconfig) as client, pytest.raises(ApiException) as excinfo:
        kubernetes.client.CoreV1Api(client).list_node()
    assert excinfo.value.status == 403
    assert _status(excinfo.value)["message"] == (
        'nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope'
    )
    with pytest.raises(KubeProbeError, match="needs RBAC verb 'list' on 'nodes'"):
        _reader(kubeconfig).nodes()


def test_client_certificate_of_another_ca_is_refused_at_once(state: dict[str, Any], tmp_path: Path) -> None:
    """The handshake fails (the server does not trust the issuer): one clear error, no hang, no request served."""
    unrelated = LabCA(tmp_path / "unrelated", label="Unrelated")
    kubeconfig = _with_user(state, tmp_path, _client_cert(unrelated, READER_USER, tmp_path))
    reader = _reader(kubeconfig)
    began = time.monotonic()
    with pytest.raises(KubeProbeError) as excinfo:
        reader.nodes()
    assert time.monotonic() - began < 3
    message = str(excinfo.value)
    assert message.startswith(f"the TLS handshake with the API server {state['url']} of kubeconfig {kubeconfig} "
                              "failed: ")
    assert "unknown ca" in message.lower()
    assert "certificate-authority and client certificate" in message
    with pytest.raises(KubeProbeError) as again:
        reader.version()
    assert again.value is excinfo.value  # every later call ends with the same reason at once
    assert read_request_log(state["request_log"])[-1].user == "handshake-failed:SSLCertVerificationError"


@pytest.mark.parametrize(("plugin", "problem"), [
    ("import sys; sys.exit('no login session')", "process returned 1. no login session"),
    ("print('Please open https://login.example.com')", "failed to decode process output"),
    (f"print({json.dumps({'apiVersion': EXEC_API, 'kind': 'ExecCredential', 'status': {}})!r})",
     "missing token or clientCertificateData"),
], ids=["exits-non-zero", "prints-no-json", "prints-no-token"])
def test_broken_exec_plugin_is_one_error_naming_the_plugin_problem(
    state: dict[str, Any], tmp_path: Path, plugin: str, problem: str
) -> None:
    """The client only logs a failed plugin and sends no credentials; the reader names the cause, not a 401."""
    script = tmp_path / "plugin.py"
    script.write_text(plugin + "\n")
    kubeconfig = _with_user(state, tmp_path, exec_credentials(script))
    reader = _reader(kubeconfig)
    with pytest.raises(KubeProbeError) as excinfo:
        reader.nodes()
    assert str(excinfo.value).startswith(
        f"cannot use kubeconfig {kubeconfig}: its exec credential plugin failed: {problem}"
    )
    with pytest.raises(KubeProbeError) as again:
        reader.nodes()
    assert again.value is excinfo.value  # the plugin is not run again for every check


def test_in_cluster_configuration(
    state: dict[str, Any], tmp_path: Path, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in a pod: service host and port from the environment, the mounted token and CA; the server
    certificate verifies for the IP address ``KUBERNETES_SERVICE_HOST`` names."""
    token = tmp_path / "token"
    token.write_text(yaml.safe_load(Path(state["kubeconfig"]).read_text())["users"][0]["user"]["token"])
    token.chmod(0o600)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", KUBEAPI_ADDRESS)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(state["port"]))
    monkeypatch.setattr(kubernetes.config.incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(kubernetes.config.incluster_config, "SERVICE_CERT_FILENAME", lab.state["root_ca"])  # type: ignore[index]
    reader = _reader(None)
    assert [n["metadata"]["name"] for n in reader.nodes()] == NODES
    assert reader.server == state["url"]
    assert _last_user(state, "/api/v1/nodes") == "reader"


def test_unknown_paths_and_methods(state: dict[str, Any], api: ApiClient) -> None:
    with pytest.raises(ApiException) as excinfo:
        kubernetes.client.CustomObjectsApi(api).list_cluster_custom_object("example.com", "v1", "widgets")
    assert excinfo.value.status == 404
    assert _status(excinfo.value)["reason"] == "NotFound"
    with pytest.raises(ApiException) as excinfo:
        kubernetes.client.CoreV1Api(api).delete_node("worker-1")
    assert excinfo.value.status == 405
    assert _status(excinfo.value)["reason"] == "MethodNotAllowed"
    with pytest.raises(ApiException) as excinfo:
        kubernetes.client.CoreV1Api(api).list_namespaced_pod("kube-system", field_selector="spec.bogus=x")
    assert excinfo.value.status == 400
    assert _status(excinfo.value)["reason"] == "BadRequest"


# --- writing and the simulated controllers --------------------------------------------------------


def test_create_and_delete_namespace_with_its_contents(core: kubernetes.client.CoreV1Api) -> None:
    name = _name()
    created = core.create_namespace(
        {"metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "kkp-readiness"}}}
    )
    assert created.status.phase == "Active"
    assert created.metadata.uid
    assert created.metadata.resource_version
    with pytest.raises(ApiException) as excinfo:
        core.create_namespace({"metadata": {"name": name}})
    assert (excinfo.value.status, _status(excinfo.value)["reason"]) == (409, "AlreadyExists")
    listed = core.list_namespace(label_selector="app.kubernetes.io/managed-by=kkp-readiness").items
    assert name in [ns.metadata.name for ns in listed]
    core.create_namespaced_service(name, {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}})
    assert len(core.list_namespaced_service(name).items) == 1
    deleted = core.delete_namespace(name)
    assert deleted["kind"] == "Namespace"
    assert deleted["status"] == {"phase": "Terminating"}
    with pytest.raises(ApiException) as excinfo:
        core.read_namespace(name)
    assert excinfo.value.status == 404
    assert core.list_namespaced_service(name).items == []


def test_create_in_a_missing_namespace_is_404(core: kubernetes.client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as excinfo:
        core.create_namespaced_service("no-such-namespace", {"metadata": {"name": "x"}})
    assert _status(excinfo.value)["message"] == 'namespaces "no-such-namespace" not found'


@pytest.fixture
def namespace(core: kubernetes.client.CoreV1Api) -> Iterator[str]:
    name = _name()
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def _lb_service(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}}


def test_load_balancer_service_gets_an_address_from_the_pool(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_service(namespace, _lb_service("probe"))
    ip = created.status.load_balancer.ingress[0].ip
    assert ip == "127.0.0.12"  # .10 and .11 are taken by NGINX and the nodeport proxy
    assert created.spec.cluster_ip.startswith("10.")
    assert 30000 <= created.spec.ports[0].node_port < 32768
    second = core.create_namespaced_service(namespace, _lb_service("probe-2"))
    assert second.status.load_balancer.ingress[0].ip == "127.0.0.13"
    plain = core.create_namespaced_service(
        namespace, {"metadata": {"name": "plain"}, "spec": {"ports": [{"port": 80}]}}
    )
    assert plain.spec.type == "ClusterIP"
    assert not plain.status.load_balancer.ingress


def _pvc(name: str, storage_class: str = "kubermatic-fast") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


def _pod(name: str, claim: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "registry.k8s.io/pause:3.10",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }


def test_pvc_binds_once_a_pod_uses_it(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    claim = core.create_namespaced_persistent_volume_claim(namespace, _pvc("data"))
    assert claim.status.phase == "Pending"
    assert core.read_namespaced_persistent_volume_claim("data", namespace).status.phase == "Pending"
    pod = core.create_namespaced_pod(namespace, _pod("consumer", "data"))
    assert pod.status.phase == "Running"
    assert pod.spec.node_name.startswith("worker-")
    bound = core.read_namespaced_persistent_volume_claim("data", namespace)
    assert bound.status.phase == "Bound"
    assert bound.status.capacity == {"storage": "1Gi"}
    volume = core.read_persistent_volume(bound.spec.volume_name)
    assert (volume.status.phase, volume.spec.storage_class_name) == ("Bound", "kubermatic-fast")
    assert volume.spec.claim_ref.name == "data"
    # A claim without a class gets the default class (DefaultStorageClass admission).
    defaulted = core.create_namespaced_persistent_volume_claim(
        namespace, {"metadata": {"name": "defaulted"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}
    )
    assert defaulted.spec.storage_class_name == "standard"
    core.delete_namespaced_pod("consumer", namespace)
    core.delete_namespaced_persistent_volume_claim("data", namespace)
    with pytest.raises(ApiException):
        core.read_persistent_volume(bound.spec.volume_name)


def test_jobs_can_be_created_and_deleted(api: ApiClient, namespace: str) -> None:
    batch = kubernetes.client.BatchV1Api(api)
    job = {
        "metadata": {"name": "fio"},
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "fio", "image": "example/fio"}]}}
        },
    }
    created = batch.create_namespaced_job(namespace, job)
    assert created.metadata.name == "fio"
    assert [j.metadata.name for j in batch.list_namespaced_job(namespace).items] == ["fio"]
    batch.delete_namespaced_job("fio", namespace)
    assert batch.list_namespaced_job(namespace).items == []


def test_resource_versions_increase(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    before = int(core.list_namespace().metadata.resource_version)
    created = core.create_namespaced_service(namespace, {"metadata": {"name": "rv"}, "spec": {"ports": [{"port": 1}]}})
    assert int(created.metadata.resource_version) > before
    assert int(core.list_namespace().metadata.resource_version) > before


def test_watch_streams_changes(core: kubernetes.client.CoreV1Api, namespace: str) -> None:
    start = core.list_namespaced_service(namespace).metadata.resource_version
    threading.Timer(0.2, lambda: core.create_namespaced_service(namespace, _lb_service("watched"))).start()
    watch = kubernetes.watch.Watch()
    events = []
    began = time.monotonic()
    for event in watch.stream(core.list_namespaced_service, namespace, resource_version=start, timeout_seconds=5):
        events.append((event["type"], event["object"].metadata.name))
        if event["object"].status.load_balancer.ingress:
            watch.stop()
    assert time.monotonic() - began < 4
    assert events[0] == ("ADDED", "watched")
    assert events[-1] == ("MODIFIED", "watched")


# --- kubectl and the request log ------------------------------------------------------------------


@pytest.mark.parametrize("kubeconfig", AUTH_FORMS)
def test_kubectl_get_nodes(state: dict[str, Any], tmp_path: Path, kubeconfig: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed on this machine; the lab API server is still tested with the client")
    result = subprocess.run(
        [kubectl, "--kubeconfig", state[kubeconfig], "--cache-dir", str(tmp_path), "get", "nodes"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    rows = [line.split() for line in lines[1:]]
    assert [r[0] for r in rows] == NODES
    assert {r[1] for r in rows} == {"Ready"}
    assert [r[2] for r in rows] == ["control-plane"] * 3 + ["worker"] * 3
    assert {r[4] for r in rows} == {"v1.31.4"}


def test_request_log_records_every_request(state: dict[str, Any], core: kubernetes.client.CoreV1Api) -> None:
    """A read, a write and a rejected request of this test itself (xdist may run the others elsewhere)."""
    with _client(state["kubeconfig"]) as client:
        kubernetes.client.CoreV1Api(client).list_namespaced_pod("kube-system", label_selector="component=etcd")
    name = _name()
    core.create_namespace({"metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "kkp-readiness"}}})
    core.delete_namespace(name)
    with _unauthenticated(state["kubeconfig"], None) as client, pytest.raises(ApiException):
        kubernetes.client.CoreV1Api(client).list_node()
    requests = read_request_log(state["request_log"])
    assert any(
        r.method == "GET"
        and r.path.startswith("/api/v1/namespaces/kube-system/pods?")
        and r.status == 200
        and r.user == "reader"
        for r in requests
    )
    assert any(r.writes and r.method == "POST" and r.path == "/api/v1/namespaces" for r in requests)
    assert any(r.status == 401 and r.user == "-" for r in requests)


# --- faults ---------------------------------------------------------------------------------------


def _fault_client(state: dict[str, Any]) -> ApiClient:
    return _client(state["kubeconfig"])


def test_fault_node_not_ready(start_part: Callable[..., dict[str, Any]]) -> None:
    with _fault_client(start_part("kube-node-not-ready")) as client:
        nodes = {n.metadata.name: n for n in kubernetes.client.CoreV1Api(client).list_node().items}
    ready = {name: next(c for c in n.status.conditions if c.type == "Ready") for name, n in nodes.items()}
    assert (ready["worker-2"].status, ready["worker-2"].reason) == ("False", "KubeletNotReady")
    assert {name for name, c in ready.items() if c.status == "True"} == set(NODES) - {"worker-2"}


def test_fault_two_control_planes(start_part: Callable[..., dict[str, Any]]) -> None:
    with _fault_client(start_part("kube-two-control-planes")) as client:
        core = kubernetes.client.CoreV1Api(client)
        control_plane = [n.metadata.name for n in core.list_node(label_selector=CONTROL_PLANE).items]
        etcd = [p.metadata.name for p in core.list_namespaced_pod("kube-system", label_selector="component=etcd").items]
        assert core.list_pod_for_all_namespaces(field_selector="spec.nodeName=cp-3").items == []
        ds = kubernetes.client.AppsV1Api(client).read_namespaced_daemon_set("cilium", "kube-system")
    assert control_plane == ["cp-1", "cp-2"]
    assert etcd == ["etcd-cp-1", "etcd-cp-2"]
    assert (ds.status.number_ready, ds.status.desired_number_scheduled) == (5, 5)


def test_fault_single_zone(start_part: Callable[..., dict[str, Any]]) -> None:
    with _fault_client(start_part("kube-single-zone")) as client:
        nodes = kubernetes.client.CoreV1Api(client).list_node().items
    assert len(nodes) == 6
    assert {n.metadata.labels[ZONE] for n in nodes} == {"lab-a"}


def test_fault_old_version(start_part: Callable[..., dict[str, Any]]) -> None:
    with _fault_client(start_part("kube-old-version")) as client:
        version = kubernetes.client.VersionApi(client).get_code()
        nodes = kubernetes.client.CoreV1Api(client).list_node().items
        apiserver = kubernetes.client.CoreV1Api(client).read_namespaced_pod("kube-apiserver-cp-1", "kube-system")
    assert (version.git_version, version.minor) == ("v1.27.16", "27")
    assert {n.status.node_info.kubelet_version for n in nodes} == {"v1.27.16"}
    assert apiserver.spec.containers[0].image.endswith(":v1.27.16")


def test_fault_small_nodes(start_part: Callable[..., dict[str, Any]]) -> None:
    with _fault_client(start_part("kube-small-nodes")) as client:
        nodes = kubernetes.client.CoreV1Api(client).list_node().items
    assert {n.status.capacity["cpu"] for n in nodes} == {"1"}
    assert {_ki(n.status.capacity["memory"]) for n in nodes} == {2 * GI_KI}


def _classes(state: dict[str, Any]) -> dict[str, Any]:
    with _fault_client(state) as client:
        return {sc.metadata.name: sc for sc in kubernetes.client.StorageV1Api(client).list_storage_class().items}


def test_fault_storage_classes(start_part: Callable[..., dict[str, Any]]) -> None:
    assert set(_classes(start_part("kube-no-fast-class"))) == {"kubermatic-backup", "standard"}
    assert set(_classes(start_part("kube-no-backup-class"))) == {"kubermatic-fast", "standard"}
    fast = _classes(start_part("kube-immediate-binding", "kube-no-expansion"))["kubermatic-fast"]
    assert (fast.volume_binding_mode, fast.allow_volume_expansion) == ("Immediate", False)
    classes = _classes(start_part("kube-no-default-class"))
    assert len(classes) == 3
    assert not any(
        (sc.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") for sc in classes.values()
    )


def test_fault_unreachable(start_part: Callable[..., dict[str, Any]]) -> None:
    state = start_part("kube-unreachable")
    assert state["serving"] is False
    assert state["pid"] is None
    assert Path(state["kubeconfig"]).is_file()
    assert state["url"] == f"https://{KUBEAPI_ADDRESS}:{state['port']}"
    began = time.monotonic()
    with _fault_client(state) as client:
        client.configuration.retries = 0
        with pytest.raises(urllib3.exceptions.MaxRetryError):
            kubernetes.client.CoreV1Api(client).list_node(_request_timeout=3)
    assert time.monotonic() - began < 2  # refused at once, not a timeout
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection(KUBEAPI_ADDRESS, state["port"], timeout=2).connect()


def test_fault_forbidden_storage_classes(start_part: Callable[..., dict[str, Any]]) -> None:
    state = start_part("kube-forbidden-storageclasses")
    with _fault_client(state) as client:
        with pytest.raises(ApiException) as excinfo:
            kubernetes.client.StorageV1Api(client).list_storage_class()
        assert len(kubernetes.client.CoreV1Api(client).list_node().items) == 6
    assert excinfo.value.status == 403
    assert _status(excinfo.value)["message"] == FORBIDDEN_LIST


def test_fault_lb_controller_and_binder_off(start_part: Callable[..., dict[str, Any]]) -> None:
    state = start_part("kube-lb-controller-off", "kube-binder-off")
    with _fault_client(state) as client:
        core = kubernetes.client.CoreV1Api(client)
        name = _name()
        core.create_namespace({"metadata": {"name": name}})
        service = core.create_namespaced_service(name, _lb_service("probe"))
        assert not service.status.load_balancer.ingress
        core.create_namespaced_persistent_volume_claim(name, _pvc("data"))
        pod = core.create_namespaced_pod(name, _pod("consumer", "data"))
        assert pod.status.phase == "Pending"
        assert core.read_namespaced_persistent_volume_claim("data", name).status.phase == "Pending"
        # The fixture's own services keep their addresses.
        nginx = core.read_namespaced_service("nginx-ingress-controller", "nginx-ingress-controller")
        assert nginx.status.load_balancer.ingress[0].ip == "127.0.0.10"


def test_immediate_binding_binds_without_a_consumer(start_part: Callable[..., dict[str, Any]]) -> None:
    with _fault_client(start_part("kube-immediate-binding")) as client:
        core = kubernetes.client.CoreV1Api(client)
        name = _name()
        core.create_namespace({"metadata": {"name": name}})
        assert core.create_namespaced_persistent_volume_claim(name, _pvc("data")).status.phase == "Bound"


def test_unknown_faults_and_conflicts_are_refused() -> None:
    with pytest.raises(LabError, match="cannot be combined"):
        resolve_faults(["kube-no-fast-class", "kube-immediate-binding"])
    assert [f.name for f in resolve_faults(["kube-no-expansion", "kube-immediate-binding"])] == [
        "kube-immediate-binding",
        "kube-no-expansion",
    ]


# --- units: fixture, selectors, tables ------------------------------------------------------------


def test_healthy_fixture_loads_and_rejects_bad_objects() -> None:
    cluster = Cluster.load()
    store = Store(cluster)
    assert cluster.version == "v1.31.4"
    assert {t.name for t in cluster.tokens} == {"reader", "restricted"}
    assert len(store.objects) > 60
    bad = Cluster.load()
    bad.objects.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "nowhere"}})
    with pytest.raises(ValueError, match="does not exist"):
        Store(bad)
    bad = Cluster.load()
    bad.objects.append({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}})
    with pytest.raises(ValueError, match="unknown kind"):
        Store(bad)


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=1", {"a": "1"}, True),
        ("a==1", {"a": "2"}, False),
        ("a!=1", {}, True),
        ("a!=1", {"a": "1"}, False),
        ("a in (1, 2),b", {"a": "2", "b": ""}, True),
        ("a notin (1,2)", {"a": "3"}, True),
        ("a notin (1,2)", {}, True),
        ("!a", {"a": "1"}, False),
        ("a", {"a": ""}, True),
        ("node-role.kubernetes.io/control-plane", {"node-role.kubernetes.io/control-plane": ""}, True),
        ("", {}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert label_matcher(selector)({"metadata": {"labels": labels}}) is expected


def test_bad_selectors_are_rejected() -> None:
    with pytest.raises(SelectorError):
        label_matcher("a in ()")
    with pytest.raises(SelectorError):
        label_matcher("a b c")
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.nodeName"):
        field_matcher("spec.nodeName=x", "Service")
    assert field_matcher("spec.nodeName=", "Pod")({"spec": {}}) is True


def test_human_age() -> None:
    import datetime as dt

    now = dt.datetime(2025, 6, 10, tzinfo=dt.UTC)
    assert human_age("2025-06-09T23:59:15Z", now) == "45s"
    assert human_age("2025-06-09T23:55:00Z", now) == "5m"
    assert human_age("2025-06-09T19:00:00Z", now) == "5h"
    assert human_age("2025-06-02T00:00:00Z", now) == "8d"


def test_the_reader_retries_a_failed_request_once(state: dict[str, Any]) -> None:
    """urllib3 copies ``retries`` when the client builds its pool: one retry, not four tries, on a dead server."""
    pool = _reader(Path(state["kubeconfig"]))._client().rest_client.pool_manager
    assert pool.connection_pool_kw["retries"].total == 1
