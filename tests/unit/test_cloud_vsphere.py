"""The pure parts of the vSphere probes: settings (profile, GOVC_*), paths, privileges, machine fields."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from kkp_readiness.cloud import vsphere
from kkp_readiness.cloud.errors import CloudProbeError, CredentialsMissing, MissingExtra


def spec(**fields):
    defaults = {"endpoint": None, "username": None, "thumbprint": None}
    return SimpleNamespace(**{**defaults, **fields})


def test_govc_variables_are_the_defaults(tmp_path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("# govc\nother.example.com 00\nvcenter.example.com:8443 " + "AB:" * 31 + "AB\n")
    settings = vsphere.settings_from(spec(), {"GOVC_URL": "https://vcenter.example.com:8443/sdk",
                                              "GOVC_USERNAME": "kkp@vsphere.local", "GOVC_PASSWORD": "s3cret-pw",
                                              "GOVC_TLS_CA_CERTS": "/etc/ca.pem",
                                              "GOVC_TLS_KNOWN_HOSTS": str(known)})
    assert (settings.host, settings.port, settings.path) == ("vcenter.example.com", 8443, "/sdk")
    assert settings.username == "kkp@vsphere.local"
    assert settings.password == "s3cret-pw"
    assert settings.ca_bundle == "/etc/ca.pem"
    assert settings.thumbprint == "ab" * 32
    assert "s3cret-pw" not in repr(settings)


def test_profile_fields_win_and_url_credentials_are_read() -> None:
    settings = vsphere.settings_from(spec(endpoint="vcenter.example.com", username="profile-user",
                                          thumbprint="AA" * 20),
                                     {"GOVC_URL": "https://u:p@other.example.com", "GOVC_USERNAME": "env-user"},
                                     password="profile-pw")
    assert (settings.host, settings.port, settings.path) == ("vcenter.example.com", 443, "/sdk")
    assert (settings.username, settings.password, settings.thumbprint) == ("profile-user", "profile-pw", "aa" * 20)
    from_url = vsphere.settings_from(spec(), {"GOVC_URL": "https://u%40x:pw%2Fword@vc.example.com/sdk"})
    assert (from_url.username, from_url.password) == ("u@x", "pw/word")


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes"])
def test_govc_insecure_is_refused(value: str) -> None:
    with pytest.raises(CloudProbeError, match="never skip certificate verification"):
        vsphere.settings_from(spec(), {"GOVC_INSECURE": value, "GOVC_URL": "vc.example.com",
                                       "GOVC_USERNAME": "u", "GOVC_PASSWORD": "p"})


def test_missing_credentials_and_bad_inputs() -> None:
    with pytest.raises(CredentialsMissing, match="GOVC_URL"):
        vsphere.settings_from(spec(), {})
    with pytest.raises(CredentialsMissing, match="GOVC_PASSWORD"):
        vsphere.settings_from(spec(endpoint="vc.example.com", username="u"), {})
    with pytest.raises(CloudProbeError, match="not HTTPS"):
        vsphere.parse_endpoint("http://vc.example.com")
    with pytest.raises(CloudProbeError, match="SHA-1, SHA-256 or SHA-512"):
        vsphere.normalize_thumbprint("abcd")


def test_privilege_list_and_differences() -> None:
    documented = vsphere.load_privileges()
    assert set(documented) == {"vcenter", "datacenter", "cluster", "resource_pool", "datastore", "network", "folder"}
    assert "Datastore.FileManagement" in documented["datastore"]
    assert "Network.Assign" in documented["network"]
    assert vsphere.privileges_source().startswith("https://docs.kubermatic.com/")
    required = {"ds": documented["datastore"], "net": documented["network"]}
    granted = {"ds": dict.fromkeys(documented["datastore"], True) | {"Datastore.FileManagement": False},
               "net": {"Network.Assign": True}}
    assert vsphere.missing_privileges(required, granted) == {
        "ds": ["Datastore.FileManagement"], "net": ["InventoryService.Tagging.ObjectAttachable"]}
    assert vsphere.missing_privileges(required, {k: dict.fromkeys(v, True) for k, v in required.items()}) == {}


def test_inventory_paths() -> None:
    assert vsphere.object_path("cluster", "cluster-1", "dc-1") == "/dc-1/host/cluster-1"
    assert vsphere.object_path("network", "kkp", "dc-1") == "/dc-1/network/kkp"
    assert vsphere.object_path("datastore", "/dc-1/datastore/x/", "dc-1") == "/dc-1/datastore/x"
    assert vsphere.object_path("template", "templates/t", "/dc-1") == "/dc-1/vm/templates/t"


def test_machine_deployment_fields() -> None:
    complete = {"templateVMName": "t", "datacenter": "dc", "cluster": "c", "folder": "/dc/vm/f",
                "datastore": {"value": "ds"}, "networks": ["n1", {"value": "n2"}], "cpus": 2, "memoryMB": 4096,
                "diskSizeGB": 25}
    assert vsphere.machine_spec_problems(complete) == []
    assert vsphere.machine_networks(complete) == ["n1", "n2"]
    broken = {k: v for k, v in complete.items() if k not in ("templateVMName", "datastore")} | {"cpus": "2"}
    assert vsphere.machine_spec_problems(broken) == ["templateVMName missing", "datastore or datastoreCluster missing",
                                                     "cpus must be a positive integer (is '2')"]


def test_missing_extra_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyVmomi", None)
    profile = SimpleNamespace(cloud=SimpleNamespace(vsphere=SimpleNamespace()))
    with pytest.raises(MissingExtra, match=r"pip install 'kkp-readiness\[vsphere\]'"):
        vsphere.connect(SimpleNamespace(profile=profile), environ={})


def test_thumbprints_of_a_certificate() -> None:
    prints = vsphere.thumbprints(b"certificate")
    assert sorted(prints) == [40, 64, 128]
