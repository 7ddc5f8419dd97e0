"""Azure, as KKP's machine-controller and the Azure cloud provider see it: facts read with the Azure SDKs.

Credentials, in azure-identity's order of conventions: the profile's ``client_secret`` reference (with
``tenant_id`` and ``client_id`` from the profile or ``AZURE_TENANT_ID`` / ``AZURE_CLIENT_ID``), else
``AZURE_CLIENT_SECRET`` with those variables (what EnvironmentCredential reads), else
``DefaultAzureCredential`` without its interactive members (workload identity, managed identity, the
Azure CLI). A non-public ``authority_host`` (a sovereign cloud, Azure Stack, the lab) is used with
MSAL's instance discovery disabled; ``ca_bundle`` is trusted by the identity and the management
clients alike. Every call is bounded by ``timeouts.http`` and never retried; the secret and every
access token are registered with ``redact`` before they are used.

What the probes read: the subscription, its locations and their zones, the Compute resource SKUs
of a location (zones per VM size), the resource group, VNet, subnet, route table, network security
group, images, and the principal's role assignments with their role definitions. Probes return
facts (dataclasses) or ``None`` for "does not exist"; the checks in ``tests_infra/test_azure.py``
judge them. Pure helpers (``action_matches``, ``missing_actions``, ``machine_deployment_problems``)
carry the rules.

>>> action_matches("Microsoft.Authorization/*/Write", "microsoft.authorization/roleAssignments/write")
True
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from kkp_readiness import redact
from kkp_readiness.cloud.errors import AuthenticationFailed, CloudProbeError, CredentialsMissing
from kkp_readiness.cloud.extras import require
from kkp_readiness.profile import LoadedProfile
from kkp_readiness.profile_model import AzureSpec

T = TypeVar("T")

#: Entra ID hosts of the public and national clouds: MSAL's instance discovery knows them.
PUBLIC_AUTHORITIES = frozenset({"login.microsoftonline.com", "login.chinacloudapi.cn", "login.microsoftonline.us",
                                "login.partner.microsoftonline.cn"})
SUBSCRIPTIONS_API = "2022-12-01"
SKUS_API = "2021-07-01"
COMPUTE_API = "2024-07-01"

#: What machine-controller (VMs, disks, NICs, public IPs, availability sets) and the Azure cloud provider
#: (load balancers, public IPs, route tables, security groups) do in the resource group.
REQUIRED_ACTIONS: tuple[str, ...] = (
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Compute/virtualMachines/read", "Microsoft.Compute/virtualMachines/write",
    "Microsoft.Compute/virtualMachines/delete",
    "Microsoft.Compute/disks/read", "Microsoft.Compute/disks/write", "Microsoft.Compute/disks/delete",
    "Microsoft.Compute/availabilitySets/read", "Microsoft.Compute/availabilitySets/write",
    "Microsoft.Network/networkInterfaces/read", "Microsoft.Network/networkInterfaces/write",
    "Microsoft.Network/networkInterfaces/delete", "Microsoft.Network/networkInterfaces/join/action",
    "Microsoft.Network/loadBalancers/read", "Microsoft.Network/loadBalancers/write",
    "Microsoft.Network/loadBalancers/delete", "Microsoft.Network/loadBalancers/backendAddressPools/join/action",
    "Microsoft.Network/publicIPAddresses/read", "Microsoft.Network/publicIPAddresses/write",
    "Microsoft.Network/publicIPAddresses/delete", "Microsoft.Network/publicIPAddresses/join/action",
    "Microsoft.Network/routeTables/read", "Microsoft.Network/routeTables/write",
    "Microsoft.Network/routeTables/routes/read", "Microsoft.Network/routeTables/routes/write",
    "Microsoft.Network/routeTables/routes/delete",
    "Microsoft.Network/networkSecurityGroups/read", "Microsoft.Network/networkSecurityGroups/write",
    "Microsoft.Network/networkSecurityGroups/join/action",
    "Microsoft.Network/virtualNetworks/read", "Microsoft.Network/virtualNetworks/subnets/read",
    "Microsoft.Network/virtualNetworks/subnets/join/action",
)

#: machine-controller's Azure cloudProviderSpec fields every machine deployment needs (its docs/cloud-provider.md).
#: The credentials may be values or ``secretKeyRef`` objects (or come from the seed's preset: then absent).
MD_REQUIRED_FIELDS: tuple[str, ...] = ("location", "resourceGroup", "vnetName", "subnetName", "routeTableName",
                                       "securityGroupName", "vmSize")
MD_CREDENTIAL_FIELDS: tuple[str, ...] = ("subscriptionID", "tenantID", "clientID")
MD_IMAGE_FIELDS: tuple[str, ...] = ("imageID", "imageReference")
IMAGE_REFERENCE_FIELDS: tuple[str, ...] = ("publisher", "offer", "sku", "version")


# --- facts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    display_name: str
    state: str
    tenant_id: str


@dataclass(frozen=True)
class Location:
    """A location the subscription may use, with its logical availability zones."""

    name: str
    display_name: str
    zones: tuple[str, ...]


@dataclass(frozen=True)
class VmSku:
    """A VM size in one location: the zones it lists and those restricted for this subscription."""

    name: str
    location: str
    zones: tuple[str, ...]
    restricted_zones: tuple[str, ...] = ()
    #: A restriction of the whole location (NotAvailableForSubscription): the size cannot be used there.
    location_restricted: bool = False
    reasons: tuple[str, ...] = ()

    @property
    def offered_zones(self) -> tuple[str, ...]:
        if self.location_restricted:
            return ()
        return tuple(z for z in self.zones if z not in self.restricted_zones)


@dataclass(frozen=True)
class Subnet:
    """A subnet with what is associated with it (names and IDs of the route table and security group)."""

    name: str
    vnet: str
    resource_group: str
    address_prefixes: tuple[str, ...]
    route_table_id: str | None
    security_group_id: str | None

    @property
    def route_table(self) -> str | None:
        return resource_name(self.route_table_id)

    @property
    def security_group(self) -> str | None:
        return resource_name(self.security_group_id)


@dataclass(frozen=True)
class Vnet:
    name: str
    resource_group: str
    location: str
    address_space: tuple[str, ...]
    subnets: tuple[str, ...]


@dataclass(frozen=True)
class Permission:
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()

    def grants(self, action: str) -> bool:
        return any(action_matches(p, action) for p in self.actions) \
            and not any(action_matches(p, action) for p in self.not_actions)


@dataclass(frozen=True)
class RoleGrant:
    """A role assignment of the principal that applies at the scope asked for, with its role's permissions."""

    assignment_id: str
    scope: str
    role_definition_id: str
    role_name: str
    permissions: tuple[Permission, ...] = field(default=())


# --- pure rules -----------------------------------------------------------------------------------


def action_matches(pattern: str, action: str) -> bool:
    """Whether an Azure RBAC action pattern (``*`` anywhere, case-insensitive) covers ``action``.

    >>> action_matches("*/read", "Microsoft.Network/routeTables/read")
    True
    >>> action_matches("Microsoft.Compute/*", "Microsoft.Network/loadBalancers/write")
    False
    """
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, action, flags=re.IGNORECASE) is not None


def missing_actions(required: Iterable[str], grants: Iterable[RoleGrant]) -> list[str]:
    """The ``required`` actions no permission block of any grant allows (notActions subtract per block).

    >>> contributor = RoleGrant("a", "/s", "d", "Contributor", (Permission(("*",), ("Microsoft.Authorization/*",)),))
    >>> missing_actions(["Microsoft.Compute/disks/write", "Microsoft.Authorization/locks/write"], [contributor])
    ['Microsoft.Authorization/locks/write']
    """
    permissions = [p for g in grants for p in g.permissions]
    return [a for a in required if not any(p.grants(a) for p in permissions)]


def scope_covers(assignment_scope: str, scope: str) -> bool:
    """An assignment at ``assignment_scope`` applies at ``scope`` (it is the same or a parent: root, management
    group, subscription, resource group)."""
    parent = assignment_scope.rstrip("/").lower()
    if parent in ("", "/") or parent.startswith("/providers/microsoft.management/managementgroups/"):
        return True
    child = scope.rstrip("/").lower()
    return child == parent or child.startswith(parent + "/")


def resource_name(resource_id: str | None) -> str | None:
    return resource_id.rstrip("/").rsplit("/", 1)[-1] if resource_id else None


def machine_deployment_problems(spec: Mapping[str, Any]) -> list[str]:
    """What machine-controller would miss in an Azure ``cloudProviderSpec`` (field names as in its YAML).

    >>> machine_deployment_problems({"location": "westeurope"})[:2]
    ['resourceGroup is missing', 'vnetName is missing']
    """
    problems = [f"{name} is missing" for name in MD_REQUIRED_FIELDS if not _present(spec.get(name))]
    problems += [f"{name} is missing (a value or a secretKeyRef)" for name in MD_CREDENTIAL_FIELDS
                 if not _present(spec.get(name))]
    if isinstance(spec.get("clientSecret"), str) and not spec["clientSecret"].startswith("${"):
        problems.append("clientSecret is written inline (use a secretKeyRef or the seed's preset)")
    image_fields = [name for name in MD_IMAGE_FIELDS if _present(spec.get(name))]
    if not image_fields:
        problems.append("no image: imageID or imageReference is missing")
    elif len(image_fields) > 1:
        problems.append("imageID and imageReference are both set (machine-controller takes one)")
    elif image_fields == ["imageReference"]:
        reference = spec["imageReference"]
        if not isinstance(reference, Mapping):
            problems.append("imageReference must hold publisher, offer, sku and version")
        else:
            problems += [f"imageReference.{name} is missing" for name in IMAGE_REFERENCE_FIELDS
                         if not _present(reference.get(name))]
    return problems


def _present(value: Any) -> bool:
    if isinstance(value, Mapping):
        return bool(value)
    return value is not None and str(value).strip() != ""


def token_object_id(token: str) -> str | None:
    """The ``oid`` claim of an Entra ID access token (read, not verified: Entra ID issued it to us)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    return claims.get("oid") if isinstance(claims, dict) else None


# --- credentials ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialChoice:
    """Which credential ``connect`` builds: ``secret`` (a service principal) or ``default`` (the chain)."""

    kind: str
    tenant_id: str | None
    client_id: str | None
    subscription_id: str
    secret: str | None = field(default=None, repr=False)
    source: str = ""


def choose_credential(spec: AzureSpec, environ: Mapping[str, str]) -> CredentialChoice:
    """The credential the profile and the ``AZURE_*`` variables give (pure; the profile wins)."""
    tenant = spec.tenant_id or environ.get("AZURE_TENANT_ID") or None
    client = spec.client_id or environ.get("AZURE_CLIENT_ID") or None
    subscription = spec.subscription_id or environ.get("AZURE_SUBSCRIPTION_ID") or None
    if not subscription:
        raise CredentialsMissing("no Azure subscription: set cloud.azure.subscription_id or AZURE_SUBSCRIPTION_ID")
    if spec.client_secret is not None:
        secret, source = spec.client_secret.reveal(), f"cloud.azure.client_secret ({spec.client_secret})"
    elif environ.get("AZURE_CLIENT_SECRET"):
        secret, source = environ["AZURE_CLIENT_SECRET"], "AZURE_CLIENT_SECRET"
    else:
        return CredentialChoice("default", tenant, client, subscription,
                                source="DefaultAzureCredential (workload identity, managed identity, Azure CLI)")
    missing = [name for name, value in (("cloud.azure.tenant_id or AZURE_TENANT_ID", tenant),
                                        ("cloud.azure.client_id or AZURE_CLIENT_ID", client)) if not value]
    if missing:
        raise CredentialsMissing(f"a client secret is given ({source}) but not {' and '.join(missing)}")
    return CredentialChoice("secret", tenant, client, subscription, secret, source)


def is_public_authority(authority_host: str) -> bool:
    host = urlsplit(authority_host if "://" in authority_host else f"https://{authority_host}").hostname or ""
    return host.lower() in PUBLIC_AUTHORITIES


# --- errors ---------------------------------------------------------------------------------------


def provider_reason(exc: BaseException) -> str:
    """The provider's own words from an azure-core / azure-identity exception, scrubbed of secrets."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    text = f"{code}: {message}" if code and message else getattr(exc, "message", None) or str(exc) or type(exc).__name__
    status = getattr(exc, "status_code", None)
    text = " ".join(str(text).split())
    return redact.redact(f"HTTP {status}: {text}" if status and f"HTTP {status}" not in text else text)


def map_error(exc: BaseException, what: str) -> CloudProbeError:
    """An SDK exception as the probe error a check ends with (``error``), carrying the provider's reason."""
    core = require("azure.core.exceptions", "azure")
    reason = provider_reason(exc)
    if isinstance(exc, core.ClientAuthenticationError) and getattr(exc, "status_code", None) in (None, 400, 401):
        return AuthenticationFailed(f"{what}: Entra ID or Resource Manager refused the credentials: {reason}")
    if isinstance(exc, core.ServiceRequestError):
        return CloudProbeError(f"{what}: could not reach Azure: {reason}")
    return CloudProbeError(f"{what}: {reason}")


class _RegisteringCredential:
    """A credential whose access tokens are registered with ``redact`` before anyone uses them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last_token: str | None = None

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        token = self.inner.get_token(*scopes, **kwargs)
        redact.register(token.token)
        self.last_token = token.token
        return token

    def close(self) -> None:
        getattr(self.inner, "close", lambda: None)()


# --- the session ----------------------------------------------------------------------------------


class AzureCloud:
    """An authenticated session: the credential, the management clients and the probes.

    >>> cloud = connect(loaded_profile)            # doctest: +SKIP
    >>> cloud.subscription().state                  # doctest: +SKIP
    'Enabled'
    """

    def __init__(self, spec: AzureSpec, choice: CredentialChoice, credential: Any, options: dict[str, Any]) -> None:
        self.spec = spec
        self.choice = choice
        self.subscription_id = choice.subscription_id
        self.credential = credential
        self.options = options
        self.resource_manager = str(spec.resource_manager).rstrip("/")
        self.object_id: str | None = None
        self._clients: dict[str, Any] = {}

    # --- plumbing ---------------------------------------------------------------------------------

    def _client(self, kind: str) -> Any:
        if kind not in self._clients:
            if kind == "resource":
                cls = require("azure.mgmt.resource.resources", "azure").ResourceManagementClient
            elif kind == "network":
                cls = require("azure.mgmt.network", "azure").NetworkManagementClient
            else:
                cls = require("azure.mgmt.authorization", "azure").AuthorizationManagementClient
            self._clients[kind] = cls(self.credential, self.subscription_id, base_url=self.resource_manager,
                                      credential_scopes=[f"{self.resource_manager}/.default"], **self.options)
        return self._clients[kind]

    def _call(self, what: str, fn: Callable[[], T], missing: T | None = None, allow_missing: bool = False) -> T | None:
        core = require("azure.core.exceptions", "azure")
        try:
            return fn()
        except core.AzureError as exc:
            if allow_missing and (isinstance(exc, core.ResourceNotFoundError)
                                  or getattr(exc, "status_code", None) == 404):
                return missing
            raise map_error(exc, what) from None

    def _arm_get(self, what: str, path: str, api_version: str, allow_missing: bool = False,
                 **params: str) -> Any:
        """GET a Resource Manager path with the management pipeline (auth, CA, timeouts) of the resource client."""
        rest = require("azure.core.rest", "azure")
        core = require("azure.core.exceptions", "azure")
        query = {"api-version": api_version, **params}
        request = rest.HttpRequest("GET", f"{self.resource_manager}{path}", params=query)

        def send() -> Any:
            response = self._client("resource").send_request(request)
            if response.status_code == 404 and allow_missing:
                return None
            if response.status_code >= 400:
                raise core.HttpResponseError(response=response)
            return response.json()

        return self._call(what, send)

    def _paged(self, what: str, pager: Callable[[], Iterable[Any]]) -> list[Any]:
        return self._call(what, lambda: list(pager())) or []

    # --- probes -----------------------------------------------------------------------------------

    def authenticate(self) -> None:
        """Obtain a token for Resource Manager (``AuthenticationFailed`` with Entra ID's reason otherwise)."""
        core = require("azure.core.exceptions", "azure")
        identity = require("azure.identity", "azure")
        try:
            self.credential.get_token(f"{self.resource_manager}/.default")
        except identity.CredentialUnavailableError as exc:
            raise CredentialsMissing(f"no Azure credential: neither cloud.azure.client_secret nor AZURE_CLIENT_SECRET "
                                     f"is set, and {self.choice.source} found none: {provider_reason(exc)}") from None
        except core.AzureError as exc:
            raise map_error(exc, f"token for {self.resource_manager} ({self.choice.source})") from None
        except Exception as exc:  # azure-identity's CredentialUnavailableError is a ClientAuthenticationError
            raise AuthenticationFailed(f"token for {self.resource_manager}: {provider_reason(exc)}") from None
        self.object_id = token_object_id(self.credential.last_token or "")

    def subscription(self) -> Subscription | None:
        data = self._arm_get(f"subscription {self.subscription_id}", f"/subscriptions/{self.subscription_id}",
                             SUBSCRIPTIONS_API, allow_missing=True)
        if data is None:
            return None
        return Subscription(data.get("subscriptionId", ""), data.get("displayName", ""), data.get("state", ""),
                            data.get("tenantId", ""))

    def locations(self) -> list[Location]:
        data = self._arm_get("locations", f"/subscriptions/{self.subscription_id}/locations", SUBSCRIPTIONS_API)
        return [Location(item["name"], item.get("displayName", item["name"]),
                         tuple(sorted(m["logicalZone"] for m in item.get("availabilityZoneMappings") or [])))
                for item in (data or {}).get("value", [])]

    def vm_skus(self, location: str) -> dict[str, VmSku]:
        """The virtual machine SKUs of ``location``, by name (Compute resource SKUs, zones and restrictions)."""
        data = self._arm_get(f"VM sizes of {location}",
                             f"/subscriptions/{self.subscription_id}/providers/Microsoft.Compute/skus", SKUS_API,
                             **{"$filter": f"location eq '{location}'"})
        found: dict[str, VmSku] = {}
        for item in (data or {}).get("value", []):
            if item.get("resourceType") != "virtualMachines":
                continue
            info = next((i for i in item.get("locationInfo") or [] if i.get("location", "").lower()
                         == location.lower()), None)
            if info is None:
                continue
            restricted_zones: list[str] = []
            location_restricted = False
            reasons = []
            for restriction in item.get("restrictions") or []:
                reasons.append(f"{restriction.get('type')}: {restriction.get('reasonCode')}")
                if restriction.get("type") == "Zone":
                    restricted_zones += (restriction.get("restrictionInfo") or {}).get("zones") or []
                elif restriction.get("type") == "Location":
                    location_restricted = True
            found[item["name"]] = VmSku(item["name"], location, tuple(sorted(info.get("zones") or [])),
                                        tuple(sorted(restricted_zones)), location_restricted, tuple(reasons))
        return found

    def resource_group_exists(self, name: str) -> bool:
        client = self._client("resource")
        return self._call(f"resource group {name}", lambda: client.resource_groups.get(name) is not None,
                          missing=False, allow_missing=True) or False

    def vnet(self, resource_group: str, name: str) -> Vnet | None:
        client = self._client("network")
        found = self._call(f"virtual network {resource_group}/{name}",
                           lambda: client.virtual_networks.get(resource_group, name), allow_missing=True)
        if found is None:
            return None
        space = found.address_space.address_prefixes if found.address_space else []
        return Vnet(found.name, resource_group, found.location or "", tuple(space or ()),
                    tuple(s.name for s in found.subnets or []))

    def subnet(self, resource_group: str, vnet: str, name: str) -> Subnet | None:
        client = self._client("network")
        found = self._call(f"subnet {resource_group}/{vnet}/{name}",
                           lambda: client.subnets.get(resource_group, vnet, name), allow_missing=True)
        if found is None:
            return None
        prefixes = tuple(found.address_prefixes or ()) or ((found.address_prefix,) if found.address_prefix else ())
        return Subnet(found.name, vnet, resource_group, prefixes,
                      found.route_table.id if found.route_table else None,
                      found.network_security_group.id if found.network_security_group else None)

    def route_table_exists(self, resource_group: str, name: str) -> bool:
        client = self._client("network")
        return self._call(f"route table {resource_group}/{name}",
                          lambda: client.route_tables.get(resource_group, name) is not None,
                          missing=False, allow_missing=True) or False

    def security_group_exists(self, resource_group: str, name: str) -> bool:
        client = self._client("network")
        return self._call(f"network security group {resource_group}/{name}",
                          lambda: client.network_security_groups.get(resource_group, name) is not None,
                          missing=False, allow_missing=True) or False

    def image_exists(self, image_id: str) -> bool:
        """A managed image (or gallery image version) by its resource ID."""
        path = "/" + image_id.strip("/")
        return self._arm_get(f"image {image_id}", path, COMPUTE_API, allow_missing=True) is not None

    def marketplace_image_exists(self, location: str, reference: Mapping[str, Any]) -> bool:
        """A marketplace image: ``version`` (or any version for ``latest``) of publisher/offer/sku in ``location``."""
        parts = [quote(str(reference.get(k, "")), safe="") for k in ("publisher", "offer", "sku")]
        path = (f"/subscriptions/{self.subscription_id}/providers/Microsoft.Compute/locations/{location}"
                f"/publishers/{parts[0]}/artifacttypes/vmimage/offers/{parts[1]}/skus/{parts[2]}/versions")
        versions = self._arm_get(f"marketplace image {'/'.join(parts)}", path, COMPUTE_API, allow_missing=True)
        if not versions:
            return False
        names = {v.get("name") for v in versions}
        version = str(reference.get("version", "latest"))
        return version.lower() == "latest" or version in names

    def scope(self, kind: str | None = None) -> str:
        """The scope the role assignments must grant at: the subscription or the resource group."""
        sub = f"/subscriptions/{self.subscription_id}"
        if (kind or self.spec.role_scope) == "subscription":
            return sub
        return f"{sub}/resourceGroups/{self.spec.resource_group}"

    def role_grants(self, scope: str) -> list[RoleGrant]:
        """The principal's role assignments that apply at ``scope``, with their role definitions' permissions."""
        if not self.object_id:
            raise CloudProbeError("the access token names no object ID (oid): cannot list the principal's "
                                  "role assignments")
        client = self._client("authorization")
        assignments = self._paged(
            f"role assignments at {scope}",
            lambda: client.role_assignments.list_for_scope(scope, filter=f"assignedTo('{self.object_id}')"))
        grants = []
        definitions: dict[str, Any] = {}
        for assignment in assignments:
            if not scope_covers(assignment.scope or "", scope):
                continue
            definition_id = assignment.role_definition_id
            if definition_id not in definitions:
                definitions[definition_id] = self._call(
                    f"role definition {definition_id}",
                    lambda d=definition_id: client.role_definitions.get_by_id(d))
            definition = definitions[definition_id]
            permissions = tuple(Permission(tuple(p.actions or ()), tuple(p.not_actions or ()))
                                for p in (definition.permissions or []))
            grants.append(RoleGrant(assignment.id, assignment.scope, definition_id,
                                    definition.role_name or resource_name(definition_id) or "", permissions))
        return grants


def connect(loaded: LoadedProfile) -> AzureCloud:
    """An authenticated Azure session for the profile (``CloudProbeError`` if it cannot be had)."""
    spec = loaded.profile.cloud.azure
    if spec is None:
        raise CredentialsMissing("the profile has no cloud.azure section")
    identity = require("azure.identity", "azure")
    for module in ("azure.mgmt.resource.resources", "azure.mgmt.network", "azure.mgmt.authorization"):
        require(module, "azure")
    choice = choose_credential(spec, os.environ)
    if choice.secret:
        redact.register(choice.secret)
    timeout = loaded.profile.timeouts.http
    options: dict[str, Any] = {"connection_timeout": timeout, "read_timeout": timeout, "retry_total": 0}
    ca_bundle = loaded.resolve_path(("cloud", "azure", "ca_bundle"), spec.ca_bundle)
    if ca_bundle:
        options["connection_verify"] = ca_bundle
    authority = str(spec.authority_host).rstrip("/")
    identity_options: dict[str, Any] = {**options, "authority": authority}
    if not is_public_authority(authority):
        identity_options["disable_instance_discovery"] = True
    cloud = AzureCloud(spec, choice, _RegisteringCredential(build_credential(identity, choice, identity_options)),
                       options)
    cloud.authenticate()
    return cloud


def build_credential(identity: Any, choice: CredentialChoice, options: dict[str, Any]) -> Any:
    """The azure-identity credential for ``choice`` (nothing is requested yet)."""
    if choice.kind == "secret":
        return identity.ClientSecretCredential(choice.tenant_id, choice.client_id, choice.secret, **options)
    extra: dict[str, Any] = {}
    if choice.tenant_id:  # DefaultAzureCredential takes a tenant per member, not one tenant_id
        extra.update(workload_identity_tenant_id=choice.tenant_id, shared_cache_tenant_id=choice.tenant_id)
    if choice.client_id:
        extra.update(workload_identity_client_id=choice.client_id, managed_identity_client_id=choice.client_id)
    return identity.DefaultAzureCredential(exclude_interactive_browser_credential=True, **options, **extra)
