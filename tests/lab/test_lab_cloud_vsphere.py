"""The lab's vCenter stand-in, asked with the real pyvmomi client through the vSphere probes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from kkp_readiness.cloud import vsphere
from kkp_readiness.cloud.errors import AuthenticationFailed

FINDING_FAULTS = ["vsphere-missing-privilege", "vsphere-folder-missing", "vsphere-network-missing",
                  "vsphere-template-missing"]


def _spec(state: dict) -> SimpleNamespace:
    return SimpleNamespace(
        endpoint=state["endpoint"], username=state["username"], thumbprint=None, datacenter=state["datacenter"],
        cluster=state["cluster"], datastore=state["datastore"], resource_pool=state["resource_pool"],
        folder=state["folder"], networks=[SimpleNamespace(name=n) for n in state["networks"]],
        machine_deployment=SimpleNamespace(model_dump=lambda: {
            "templateVMName": state["template"], "datacenter": state["datacenter"], "cluster": state["cluster"],
            "folder": state["machine_folder"], "datastoreCluster": state["datastore_cluster"],
            "networks": [state["networks"][1]], "cpus": 2, "memoryMB": 4096, "diskSizeGB": 25}))


def _open(state: dict, password: str | None = None, **trust: str | None) -> vsphere.VsphereCloud:
    spec = _spec(state)
    trust = trust or {"ca_bundle": state["ca_bundle"]}
    settings = vsphere.settings_from(spec, {}, password or Path(state["password_file"]).read_text(),
                                     trust.get("ca_bundle"))
    if trust.get("thumbprint"):
        settings = vsphere.Settings(settings.host, settings.port, settings.path, settings.username, settings.password,
                                    trust.get("ca_bundle"), vsphere.normalize_thumbprint(trust["thumbprint"]))
    certificate = vsphere.probe_certificate(settings, 5)
    if not certificate.verified:
        return vsphere.VsphereCloud(settings, certificate, spec)
    si, user = vsphere._login(settings, 5)
    return vsphere.VsphereCloud(settings, certificate, spec, si, user)


@pytest.fixture(scope="module")
def healthy_vcenter(kkp_lab) -> dict:
    return kkp_lab.state["cloud"]["vsphere"]


def test_healthy_facts(healthy_vcenter) -> None:
    cloud = _open(healthy_vcenter)
    assert cloud.certificate.verified
    assert cloud.certificate.sha256 == healthy_vcenter["thumbprint"]
    assert cloud.session_user == "VSPHERE.LOCAL\\kkp-lab"
    assert [o.problem for o in cloud.inventory()] == [None] * 5
    networks = cloud.networks()
    assert networks.problems() == []
    assert set(healthy_vcenter["networks"]) <= set(networks.attached)
    privileges = cloud.privileges()
    assert privileges.missing == {}
    assert privileges.not_found == []
    assert "datastore /dc-1/datastore/ssd-datastore-1" in privileges.checked
    machine = cloud.machine_deployment()
    assert machine is not None
    assert machine.problems() == []
    assert any(o.kind == "template" and o.found_type == "VirtualMachine" for o in machine.objects)
    cloud.close()
    assert Path(healthy_vcenter["password_file"]).stat().st_mode & 0o077 == 0


def test_pinned_thumbprint(healthy_vcenter) -> None:
    pinned = _open(healthy_vcenter, ca_bundle=None, thumbprint=healthy_vcenter["thumbprint"])
    assert pinned.certificate.verified
    assert pinned.session_user is not None
    assert pinned.inventory()[0].exists
    pinned.close()
    wrong = _open(healthy_vcenter, ca_bundle=None, thumbprint="ab" * 32)
    assert not wrong.certificate.verified
    assert wrong.si is None
    assert healthy_vcenter["thumbprint"] in wrong.certificate.problem


def test_wrong_password_is_refused_with_vcenters_reason(healthy_vcenter) -> None:
    with pytest.raises(AuthenticationFailed, match="incorrect user name or password") as refused:
        _open(healthy_vcenter, password="not-the-password")
    assert "not-the-password" not in str(refused.value)


def test_requests_without_session_are_refused(healthy_vcenter) -> None:
    import email.message
    import json

    from kkp_readiness.lab.cloudapi.server import Request
    from kkp_readiness.lab.cloudapi.vsphere import Api

    world = json.loads((Path(healthy_vcenter["request_log"]).parent / "vsphere-world.json").read_text())
    api = Api(world, healthy_vcenter["endpoint"])
    body = (b'<Envelope><Body><FindByInventoryPath xmlns="urn:vim25"><_this type="SearchIndex">SearchIndex</_this>'
            b'<inventoryPath>/dc-1</inventoryPath></FindByInventoryPath></Body></Envelope>')
    answer = api.handle(Request("POST", "/sdk", {}, email.message.Message(), body))
    assert answer.status == 500
    assert b"NotAuthenticated" in answer.payload()


def test_each_fault_changes_its_fact(kkp_lab_factory) -> None:
    lab = kkp_lab_factory(FINDING_FAULTS)
    state = lab.state["cloud"]["vsphere"]
    cloud = _open(state)
    assert cloud.privileges().missing == {"datastore /dc-1/datastore/ssd-datastore-1": ["Datastore.FileManagement"]}
    assert [o.problem for o in cloud.inventory() if o.problem] == ["folder /dc-1/vm/kubermatic not found"]
    assert cloud.networks().problems() == [
        "network /dc-1/network/kkp-tenant-a exists but is not available on cluster /dc-1/host/cluster-1"]
    machine = cloud.machine_deployment()
    assert machine is not None
    assert [p for p in machine.problems()] == [
        "template /dc-1/vm/ubuntu-22.04-template not found"]
    cloud.close()


def test_bad_password_fault(kkp_lab_factory) -> None:
    state = kkp_lab_factory(["vsphere-bad-password"]).state["cloud"]["vsphere"]
    with pytest.raises(AuthenticationFailed, match="incorrect user name or password"):
        _open(state)
