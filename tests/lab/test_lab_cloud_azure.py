"""The lab's Azure stand-in, driven by the real azure-identity and azure-mgmt clients (kkp_readiness.cloud.azure).

Healthy, the probes read the facts the lab-azure profile plans; each fault changes exactly the fact it
names. The five finding faults touch different things and start together in one lab.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kkp_readiness.cloud import azure
from kkp_readiness.cloud.errors import AuthenticationFailed
from kkp_readiness.lab import Lab
from kkp_readiness.lab.cloudapi.server import read_request_log
from kkp_readiness.profile import load_profile

FINDING_FAULTS = ["azure-missing-role", "azure-zone-missing", "azure-subnet-no-route-table", "azure-subnet-too-small",
                  "azure-md-image-missing"]


def _connect(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> azure.AzureCloud:
    monkeypatch.setenv("KKP_READINESS_LAB_DIR", str(lab.workdir))
    for name in ("AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_SUBSCRIPTION_ID"):
        monkeypatch.delenv(name, raising=False)
    return azure.connect(load_profile("lab-azure"))


def _image_id(cloud: azure.AzureCloud) -> str:
    return str((cloud.spec.machine_deployment.model_extra or {})["imageID"])  # type: ignore[union-attr]


def test_healthy_azure_facts(healthy_lab, monkeypatch) -> None:
    cloud = _connect(healthy_lab, monkeypatch)
    state = healthy_lab.state["cloud"]["azure"]
    assert cloud.object_id == state["object_id"]
    subscription = cloud.subscription()
    assert subscription is not None
    assert (subscription.subscription_id, subscription.state, subscription.tenant_id) == \
        (state["subscription_id"], "Enabled", state["tenant_id"])
    assert {loc.name: loc.zones for loc in cloud.locations()}["westeurope"] == ("1", "2", "3")
    assert cloud.vm_skus("westeurope")["Standard_D4s_v5"].offered_zones == ("1", "2", "3")
    assert cloud.resource_group_exists("kkp-lab")
    assert not cloud.resource_group_exists("kkp-elsewhere")
    subnet = cloud.subnet("kkp-lab", "kkp-lab-vnet", "kkp-lab-nodes")
    assert subnet is not None
    assert (subnet.address_prefixes, subnet.route_table, subnet.security_group) == \
        (("10.240.0.0/24",), "kkp-lab-routes", "kkp-lab-nsg")
    assert cloud.vnet("kkp-lab", "no-such-vnet") is None
    assert cloud.route_table_exists("kkp-lab", "kkp-lab-routes")
    assert cloud.security_group_exists("kkp-lab", "kkp-lab-nsg")
    assert cloud.image_exists(_image_id(cloud))
    assert cloud.marketplace_image_exists("westeurope", {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                         "sku": "server", "version": "latest"})
    grants = cloud.role_grants(cloud.scope())
    assert sorted(g.role_name for g in grants) == ["Contributor", "Reader"]
    assert azure.missing_actions(azure.REQUIRED_ACTIONS, grants) == []
    # Every call went through Entra ID once, then to Resource Manager with its token.
    log = read_request_log(state["request_log"])
    assert any(method == "POST" and path.endswith("/oauth2/v2.0/token") and status == 200
               for method, path, status in log)


def test_resource_manager_requires_a_token(healthy_lab) -> None:
    state = healthy_lab.state["cloud"]["azure"]
    context = ssl.create_default_context(cafile=state["ca_bundle"])
    url = f"{state['base_url']}/subscriptions/{state['subscription_id']}?api-version=2022-12-01"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, context=context, timeout=5)
    assert info.value.code == 401
    assert json.loads(info.value.read())["error"]["code"] == "AuthenticationFailed"


def test_finding_faults_change_their_facts(kkp_lab_factory, monkeypatch) -> None:
    cloud = _connect(kkp_lab_factory(FINDING_FAULTS), monkeypatch)
    grants = cloud.role_grants(cloud.scope())
    assert {g.role_name for g in grants} == {"Reader"}
    assert "Microsoft.Compute/virtualMachines/write" in azure.missing_actions(azure.REQUIRED_ACTIONS, grants)
    sku = cloud.vm_skus("westeurope")["Standard_D4s_v5"]
    assert (sku.zones, sku.offered_zones) == (("1", "2", "3"), ("1", "2"))
    subnet = cloud.subnet("kkp-lab", "kkp-lab-vnet", "kkp-lab-nodes")
    assert subnet is not None
    assert (subnet.address_prefixes, subnet.route_table, subnet.security_group) == \
        (("10.240.0.0/27",), None, "kkp-lab-nsg")
    assert cloud.route_table_exists("kkp-lab", "kkp-lab-routes")  # it exists, it is only not associated
    assert not cloud.image_exists(_image_id(cloud))
    assert cloud.subscription() is not None  # the rest stays healthy


def test_bad_credentials_are_refused_with_the_reason(kkp_lab_factory, monkeypatch) -> None:
    lab = kkp_lab_factory(["azure-bad-credentials"])
    secret = Path(lab.state["cloud"]["azure"]["client_secret_file"]).read_text()
    with pytest.raises(AuthenticationFailed) as info:
        _connect(lab, monkeypatch)
    assert "AADSTS7000215" in str(info.value)
    assert secret not in str(info.value)
