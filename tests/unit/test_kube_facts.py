"""Facts read off Kubernetes objects, and how the cluster reader reports what it could not read."""

from __future__ import annotations

import pytest

from kkp_readiness import kube_facts as facts
from kkp_readiness.errors import KubeProbeError
from kkp_readiness.probes.kube import ClusterAccess, ClusterReader


@pytest.mark.parametrize(("text", "value"), [
    ("4", 4), ("3800m", 3.8), ("16384Mi", 16 * 2**30), ("16777216Ki", 16 * 2**30), ("16G", 16e9),
    ("1.5Gi", 1.5 * 2**30),
])
def test_quantities(text: str, value: float) -> None:
    assert float(facts.parse_quantity(text)) == pytest.approx(value)


def test_bad_quantity_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        facts.parse_quantity("lots")


def test_node_facts() -> None:
    node = {"metadata": {"name": "cp-1", "labels": {"node-role.kubernetes.io/control-plane": "",
                                                     "topology.kubernetes.io/zone": "a"}},
            "status": {"conditions": [{"type": "Ready", "status": "False"}], "capacity": {"cpu": "2", "memory": "4Gi"}}}
    assert facts.is_control_plane(node)
    assert facts.zone(node) == "a"
    assert not facts.is_ready(node)
    assert facts.capacity(node) == (2.0, 4.0)


def test_versions() -> None:
    assert facts.minor_version("v1.31.4") == "1.31"
    assert facts.minor_tuple("v1.9.0") < facts.minor_tuple("v1.10.0")
    assert "1.31" in facts.supported_minors("2.28.3")
    assert facts.supported_minors("1.0") is None


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:{port}", certificate-authority-data: {ca}}}]
users: [{name: u, user: {token: t0ken-value}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def test_unreachable_api_fails_every_later_call_at_once(tmp_path) -> None:
    import base64

    from kkp_readiness.lab.ca import LabCA

    ca = LabCA(tmp_path / "ca")
    data = base64.b64encode(ca.root.cert_path.read_bytes()).decode()
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG.replace("{port}", "9").replace("{ca}", data))
    reader = ClusterReader(ClusterAccess(str(path), None, timeout=2))
    with pytest.raises(KubeProbeError, match="unreachable") as first:
        reader.nodes()
    with pytest.raises(KubeProbeError, match="unreachable") as later:
        reader.storage_classes()
    assert later.value is first.value  # the first reason, raised again without a new attempt


def test_insecure_kubeconfig_is_refused(tmp_path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG.replace("{port}", "9").replace("certificate-authority-data: {ca}",
                                                              "insecure-skip-tls-verify: true"))
    with pytest.raises(KubeProbeError, match="disables TLS verification"):
        ClusterReader(ClusterAccess(str(path), None, timeout=2)).nodes()


def test_missing_kubeconfig_is_an_error(tmp_path) -> None:
    with pytest.raises(KubeProbeError, match="cannot use kubeconfig"):
        ClusterReader(ClusterAccess(str(tmp_path / "nope"), None, timeout=2)).nodes()


@pytest.mark.parametrize(("storage_class", "site", "ssd"), [
    ({"provisioner": "disk.csi.azure.com", "parameters": {"skuName": "Premium_LRS"}}, (), True),
    ({"provisioner": "disk.csi.azure.com", "parameters": {"skuName": "Standard_LRS"}}, (), False),
    ({"provisioner": "csi.vsphere.vmware.com", "parameters": {"storagepolicyname": "gold-ssd"}}, (), True),
    ({"provisioner": "csi.vsphere.vmware.com", "parameters": {"storagepolicyname": "tier-1"}}, (), False),
    ({"provisioner": "csi.vsphere.vmware.com", "parameters": {"storagepolicyname": "tier-1"}}, ("tier-1",), True),
    ({"provisioner": "ebs.csi.aws.com", "parameters": {}}, (), False),
    ({"provisioner": "example.com/unknown", "parameters": {}}, (), None),
])
def test_ssd_judgement(storage_class, site, ssd) -> None:
    assert facts.ssd_judgement(storage_class, site)[0] is ssd
