"""The Azure probe's pure rules: RBAC action matching, credential choice, machine deployment fields, errors."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

from kkp_readiness import redact
from kkp_readiness.cloud import azure
from kkp_readiness.cloud.errors import AuthenticationFailed, CloudProbeError, CredentialsMissing, MissingExtra
from kkp_readiness.lab.cloudapi.azure import BUILT_IN_ROLES
from kkp_readiness.profile_model import AzureSpec, TimeoutsSpec
from kkp_readiness.secrets import SecretRef

SUB = "00000000-0000-0000-0000-000000000001"


def _role(name: str, scope: str = f"/subscriptions/{SUB}/resourceGroups/rg") -> azure.RoleGrant:
    spec = BUILT_IN_ROLES[name]
    return azure.RoleGrant(f"{scope}/providers/Microsoft.Authorization/roleAssignments/x", scope, spec["id"], name,
                           (azure.Permission(tuple(spec["actions"]), tuple(spec["notActions"])),))


@pytest.mark.parametrize(("pattern", "action", "matches"), [
    ("*", "Microsoft.Compute/virtualMachines/write", True),
    ("*/read", "Microsoft.Network/routeTables/read", True),
    ("*/read", "Microsoft.Network/routeTables/write", False),
    ("Microsoft.Network/*", "microsoft.network/loadbalancers/write", True),
    ("Microsoft.Network/*", "Microsoft.Compute/disks/write", False),
    ("Microsoft.Authorization/*/Write", "Microsoft.Authorization/roleAssignments/write", True),
    ("Microsoft.Compute/virtualMachines/*", "Microsoft.Compute/virtualMachinesX/write", False),
    ("Microsoft.Compute/disks/read", "Microsoft.Compute/disks/read", True),
    ("Microsoft.Compute/disks/read", "Microsoft.Compute/disks/readx", False),
    ("Microsoft.Network/loadBalancers/*/join/action",
     "Microsoft.Network/loadBalancers/backendAddressPools/join/action", True),
    ("Microsoft.Compute/disks.read", "Microsoft.Compute/disksXread", False),  # a dot is no regex wildcard
])
def test_action_matches(pattern: str, action: str, matches: bool) -> None:
    assert azure.action_matches(pattern, action) is matches


def test_contributor_grants_every_required_action_but_not_role_assignment() -> None:
    grants = [_role("Contributor")]
    assert azure.missing_actions(azure.REQUIRED_ACTIONS, grants) == []
    assert azure.missing_actions(["Microsoft.Authorization/roleAssignments/write"], grants) == \
        ["Microsoft.Authorization/roleAssignments/write"]


def test_reader_grants_only_reads() -> None:
    missing = azure.missing_actions(azure.REQUIRED_ACTIONS, [_role("Reader")])
    assert "Microsoft.Compute/virtualMachines/write" in missing
    assert not any(a.endswith("/read") for a in missing)


def test_network_contributor_leaves_compute_missing_and_roles_add_up() -> None:
    missing = azure.missing_actions(azure.REQUIRED_ACTIONS, [_role("Network Contributor")])
    assert missing
    assert all(a.startswith("Microsoft.Compute/") for a in missing)
    custom = azure.RoleGrant("a", "/s", "d", "compute", (azure.Permission(("Microsoft.Compute/*",)),))
    assert azure.missing_actions(azure.REQUIRED_ACTIONS, [_role("Network Contributor"), custom]) == []


def test_not_actions_subtract_only_within_their_block() -> None:
    denied = azure.Permission(("*",), ("Microsoft.Compute/*",))
    allowed = azure.Permission(("Microsoft.Compute/disks/*",))
    one_block = azure.RoleGrant("a", "/s", "d", "r", (denied,))
    two_blocks = azure.RoleGrant("a", "/s", "d", "r", (denied, allowed))
    assert azure.missing_actions(["Microsoft.Compute/disks/write"], [one_block]) == ["Microsoft.Compute/disks/write"]
    assert azure.missing_actions(["Microsoft.Compute/disks/write"], [two_blocks]) == []


@pytest.mark.parametrize(("assignment", "scope", "covers"), [
    (f"/subscriptions/{SUB}", f"/subscriptions/{SUB}/resourceGroups/rg", True),
    (f"/subscriptions/{SUB}/resourceGroups/rg", f"/subscriptions/{SUB}/resourceGroups/rg", True),
    (f"/subscriptions/{SUB}/resourceGroups/RG", f"/subscriptions/{SUB}/resourceGroups/rg", True),
    (f"/subscriptions/{SUB}/resourceGroups/rg", f"/subscriptions/{SUB}", False),
    (f"/subscriptions/{SUB}/resourceGroups/rg2", f"/subscriptions/{SUB}/resourceGroups/rg", False),
    (f"/subscriptions/{SUB}/resourceGroups/r", f"/subscriptions/{SUB}/resourceGroups/rg", False),
    ("/providers/Microsoft.Management/managementGroups/mg", f"/subscriptions/{SUB}", True),
    ("/", f"/subscriptions/{SUB}", True),
])
def test_scope_covers(assignment: str, scope: str, covers: bool) -> None:
    assert azure.scope_covers(assignment, scope) is covers


COMPLETE_MD = {"subscriptionID": SUB, "tenantID": "t", "clientID": "c", "location": "westeurope",
               "resourceGroup": "rg", "vnetName": "vnet", "subnetName": "nodes", "routeTableName": "routes",
               "securityGroupName": "nsg", "vmSize": "Standard_D4s_v5", "imageID": "/subscriptions/x/images/i"}


def test_machine_deployment_complete() -> None:
    assert azure.machine_deployment_problems(COMPLETE_MD) == []
    by_ref = {**COMPLETE_MD, "tenantID": {"secretKeyRef": {"name": "azure", "key": "tenantID"}}}
    assert azure.machine_deployment_problems(by_ref) == []


def test_machine_deployment_problems() -> None:
    md = {k: v for k, v in COMPLETE_MD.items() if k not in ("routeTableName", "clientID", "imageID")}
    assert azure.machine_deployment_problems(md) == [
        "routeTableName is missing", "clientID is missing (a value or a secretKeyRef)",
        "no image: imageID or imageReference is missing"]
    reference = {**md, "routeTableName": "r", "clientID": "c", "imageReference": {"publisher": "Canonical", "sku": ""}}
    assert azure.machine_deployment_problems(reference) == [
        "imageReference.offer is missing", "imageReference.sku is missing", "imageReference.version is missing"]
    both = {**COMPLETE_MD, "imageReference": {"publisher": "p", "offer": "o", "sku": "s", "version": "latest"}}
    assert azure.machine_deployment_problems(both) == ["imageID and imageReference are both set "
                                                       "(machine-controller takes one)"]
    assert azure.machine_deployment_problems({**COMPLETE_MD, "clientSecret": "hunter2-inline"}) == [
        "clientSecret is written inline (use a secretKeyRef or the seed's preset)"]


def _spec(**fields: object) -> AzureSpec:
    return AzureSpec(location="westeurope", resource_group="rg", vnet="vnet", subnet="nodes", **fields)


def _secret(monkeypatch: pytest.MonkeyPatch, value: str = "profile-secret-value-123") -> SecretRef:
    monkeypatch.setenv("KKP_TEST_AZURE_SECRET", value)
    ref = SecretRef("${env:KKP_TEST_AZURE_SECRET}")
    ref.resolve(Path("."))
    return ref


def test_profile_secret_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tenant_id="t-profile", subscription_id=SUB, client_secret=_secret(monkeypatch))
    env = {"AZURE_TENANT_ID": "t-env", "AZURE_CLIENT_ID": "c-env", "AZURE_CLIENT_SECRET": "env-secret-value-456"}
    choice = azure.choose_credential(spec, env)
    assert (choice.kind, choice.tenant_id, choice.client_id, choice.secret) == \
        ("secret", "t-profile", "c-env", "profile-secret-value-123")
    assert "profile-secret" not in repr(choice)


def test_environment_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "env-secret-value-456",
           "AZURE_SUBSCRIPTION_ID": SUB}
    choice = azure.choose_credential(_spec(), env)
    assert (choice.kind, choice.subscription_id, choice.secret, choice.source) == \
        ("secret", SUB, "env-secret-value-456", "AZURE_CLIENT_SECRET")


def test_default_credential_without_a_secret() -> None:
    choice = azure.choose_credential(_spec(subscription_id=SUB), {})
    assert choice.kind == "default"
    assert choice.secret is None


def test_secret_without_tenant_names_the_variables() -> None:
    with pytest.raises(CredentialsMissing, match="AZURE_TENANT_ID") as info:
        azure.choose_credential(_spec(), {"AZURE_CLIENT_SECRET": "env-secret-value-456", "AZURE_CLIENT_ID": "c",
                                          "AZURE_SUBSCRIPTION_ID": SUB})
    assert "env-secret-value-456" not in str(info.value)


def test_no_subscription_names_the_variable() -> None:
    with pytest.raises(CredentialsMissing, match="AZURE_SUBSCRIPTION_ID"):
        azure.choose_credential(_spec(), {})


@pytest.mark.parametrize(("authority", "public"), [
    ("https://login.microsoftonline.com", True), ("login.microsoftonline.us", True),
    ("https://127.0.3.2:4443", False), ("https://login.azurestack.example.com/", False)])
def test_public_authority(authority: str, public: bool) -> None:
    assert azure.is_public_authority(authority) is public


def test_token_object_id() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"oid": "abc", "tid": "t"}).encode()).rstrip(b"=").decode()
    assert azure.token_object_id(f"e30.{payload}.sig") == "abc"
    assert azure.token_object_id("opaque") is None


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    loaded = SimpleNamespace(profile=SimpleNamespace(cloud=SimpleNamespace(azure=_spec(subscription_id=SUB)),
                                                     timeouts=TimeoutsSpec()),
                             resolve_path=lambda _field, value: value)
    with pytest.raises(MissingExtra, match=r"pip install 'kkp-readiness\[azure\]'"):
        azure.connect(loaded)  # type: ignore[arg-type]


def test_errors_carry_the_provider_reason_not_the_secret() -> None:
    secret = "very-secret-client-value-789"
    redact.register(secret)
    refused = ClientAuthenticationError(message=f"Authentication failed: AADSTS7000215: Invalid client secret "
                                                f"provided. ({secret})")
    mapped = azure.map_error(refused, "token")
    assert isinstance(mapped, AuthenticationFailed)
    assert "AADSTS7000215" in str(mapped)
    assert secret not in str(mapped)
    unreachable = azure.map_error(ServiceRequestError("Connection refused"), "locations")
    assert type(unreachable) is CloudProbeError
    assert "could not reach Azure" in str(unreachable)
    response = SimpleNamespace(status_code=403, reason="Forbidden", headers={}, request=None,
                               text=lambda: json.dumps({"error": {"code": "AuthorizationFailed",
                                                                  "message": "no read access"}}))
    http = HttpResponseError(message="(AuthorizationFailed) no read access", response=response)
    mapped_http = azure.map_error(http, "vnet rg/vnet")
    assert type(mapped_http) is CloudProbeError
    assert "vnet rg/vnet" in str(mapped_http)
    assert "no read access" in str(mapped_http)


def test_no_credential_anywhere_is_credentials_missing() -> None:
    from azure.identity import CredentialUnavailableError

    class Unavailable:
        def get_token(self, *scopes: str, **kwargs: object) -> None:
            raise CredentialUnavailableError(message="EnvironmentCredential: environment not configured; "
                                                     "AzureCliCredential: Azure CLI not found on path")

    choice = azure.choose_credential(_spec(subscription_id=SUB), {})
    cloud = azure.AzureCloud(_spec(subscription_id=SUB), choice, azure._RegisteringCredential(Unavailable()), {})
    with pytest.raises(CredentialsMissing, match="Azure CLI not found"):
        cloud.authenticate()


def test_default_credential_is_built_with_the_tenant_per_member() -> None:
    import azure.identity as identity

    choice = azure.CredentialChoice("default", "tenant-x", "client-y", SUB)
    credential = azure.build_credential(identity, choice, {
        "authority": "https://login.azurestack.example.com", "disable_instance_discovery": True,
        "connection_timeout": 5, "read_timeout": 5, "retry_total": 0})
    assert type(credential).__name__ == "DefaultAzureCredential"
    assert "InteractiveBrowserCredential" not in [type(c).__name__ for c in credential.credentials]
