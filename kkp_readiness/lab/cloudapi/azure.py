"""The lab's Azure: Microsoft Entra ID (the OAuth endpoints MSAL calls) and Azure Resource Manager.

Served at one address for both (``authority_host`` and ``resource_manager`` of the ``lab-azure``
profile are the same URL), so the real clients run unchanged: azure-identity's ClientSecretCredential
(MSAL, with instance discovery disabled as for any non-public authority) and the azure-mgmt clients
with ``base_url``. Only the calls the AZURE checks make exist, each in its documented shape:

* Entra ID: ``GET /{tenant}/v2.0/.well-known/openid-configuration``, ``POST /{tenant}/oauth2/v2.0/token``
  (client credentials; errors as ``{"error", "error_description": "AADSTS...: ..."}``).
* ARM (a bearer token from that endpoint required, ``api-version`` required): the subscription, its
  locations (with ``availabilityZoneMappings``), the Compute resource SKUs of a location, resource
  groups, virtual networks and subnets, route tables, network security groups, managed images,
  marketplace image versions, role assignments (``$filter=atScope()`` / ``assignedTo('{id}')``) and
  role definitions. Errors as ``{"error": {"code", "message"}}``.

>>> world = World()
>>> sorted(world.skus[world.location])[:1]
['Standard_B2s']
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kkp_readiness.lab.cloudapi.server import Request, Response

ADDRESS = "127.0.3.2"
NAMES = ("login.azure.kkp.lab", "management.azure.kkp.lab")

#: Built-in role definition IDs (the same in every tenant).
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
BUILT_IN_ROLES: dict[str, dict[str, Any]] = {
    "Contributor": {
        "id": CONTRIBUTOR,
        "description": "Grants full access to manage all resources, but does not allow you to assign roles in "
                       "Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
        "actions": ["*"],
        "notActions": ["Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                       "Microsoft.Authorization/elevateAccess/Action", "Microsoft.Blueprint/blueprintAssignments/write",
                       "Microsoft.Blueprint/blueprintAssignments/delete", "Microsoft.Compute/galleries/share/action",
                       "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete"],
    },
    "Reader": {"id": READER, "description": "View all resources, but does not allow you to make any changes.",
               "actions": ["*/read"], "notActions": []},
    "Network Contributor": {
        "id": NETWORK_CONTRIBUTOR, "description": "Lets you manage networks, but not access to them.",
        "actions": ["Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.Network/*",
                    "Microsoft.ResourceHealth/availabilityStatuses/read", "Microsoft.Resources/deployments/*",
                    "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*"],
        "notActions": [],
    },
}


def _uuid() -> str:
    return str(uuid.uuid4())


def _default_skus() -> dict[str, dict[str, dict[str, list[str]]]]:
    full = {"zones": ["1", "2", "3"], "restricted_zones": []}
    return {"westeurope": {size: dict(full) for size in ("Standard_B2s", "Standard_D2s_v5", "Standard_D4s_v5")},
            "northeurope": {"Standard_D4s_v5": dict(full)}}


@dataclass
class Subnet:
    prefix: str
    route_table: str | None = None
    security_group: str | None = None


@dataclass
class World:
    """The lab tenant and subscription: one resource group with a VNet, as a KKP site on Azure prepares it."""

    tenant_id: str = field(default_factory=_uuid)
    subscription_id: str = field(default_factory=_uuid)
    subscription_name: str = "kkp-lab"
    client_id: str = field(default_factory=_uuid)
    #: The service principal's object ID (the ``oid`` of its tokens, the ``principalId`` of its assignments).
    object_id: str = field(default_factory=_uuid)
    #: The secret the profile's file holds.
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    #: The secret Entra ID accepts (None: the same as ``client_secret``).
    accepted_secret: str | None = None
    location: str = "westeurope"
    #: location -> logical zones (availabilityZoneMappings); a location left out is not enabled for the subscription.
    locations: dict[str, list[str]] = field(default_factory=lambda: {"westeurope": ["1", "2", "3"],
                                                                       "northeurope": ["1", "2", "3"]})
    #: location -> VM size -> {"zones": offered, "restricted_zones": NotAvailableForSubscription there}.
    skus: dict[str, dict[str, dict[str, list[str]]]] = field(default_factory=_default_skus)
    planned_zones: list[str] = field(default_factory=lambda: ["1", "2", "3"])
    vm_sizes: list[str] = field(default_factory=lambda: ["Standard_D4s_v5"])
    resource_group: str = "kkp-lab"
    vnet: str = "kkp-lab-vnet"
    vnet_address_space: list[str] = field(default_factory=lambda: ["10.240.0.0/16"])
    subnet: str = "kkp-lab-nodes"
    subnets: dict[str, Subnet] = field(default_factory=lambda: {
        "kkp-lab-nodes": Subnet("10.240.0.0/24", "kkp-lab-routes", "kkp-lab-nsg"),
        "kkp-lab-bastion": Subnet("10.240.255.0/27", None, "kkp-lab-nsg"),
    })
    route_tables: list[str] = field(default_factory=lambda: ["kkp-lab-routes"])
    security_groups: list[str] = field(default_factory=lambda: ["kkp-lab-nsg"])
    #: The route table and security group the profile plans for the subnet.
    route_table: str = "kkp-lab-routes"
    security_group: str = "kkp-lab-nsg"
    #: Managed images in the resource group (Microsoft.Compute/images).
    images: list[str] = field(default_factory=lambda: ["kkp-ubuntu-2404"])
    image: str = "kkp-ubuntu-2404"
    #: Marketplace images: "publisher/offer/sku" -> versions.
    marketplace: dict[str, list[str]] = field(default_factory=lambda: {
        "Canonical/ubuntu-24_04-lts/server": ["24.04.202501140", "24.04.202502210"]})
    vm_size: str = "Standard_D4s_v5"
    #: The service principal's role assignments: role name (BUILT_IN_ROLES) and scope ("resource-group" or
    #: "subscription").
    role_assignments: list[dict[str, str]] = field(default_factory=lambda: [
        {"role": "Contributor", "scope": "resource-group"}, {"role": "Reader", "scope": "subscription"}])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- helpers --------------------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _aad_error(status: int, error: str, code: str, text: str) -> Response:
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    trace = _uuid()
    return Response(status, {
        "error": error, "error_description": f"{code}: {text} Trace ID: {trace} Correlation ID: {_uuid()} "
                                             f"Timestamp: {stamp}",
        "error_codes": [int(code.removeprefix("AADSTS"))], "timestamp": stamp, "trace_id": trace,
        "correlation_id": _uuid()})


def _arm_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"error": {"code": code, "message": message}}, headers=headers or {})


def _not_found(kind: str, name: str, group: str) -> Response:
    return _arm_error(404, "ResourceNotFound",
                      f"The Resource '{kind}/{name}' under resource group '{group}' was not found. For more details "
                      "please go to https://aka.ms/ARMResourceNotFoundFix")


class Api:
    """Entra ID and Resource Manager for one ``World.to_dict()``."""

    def __init__(self, world: dict[str, Any], base_url: str) -> None:
        self.w = world
        self.base_url = base_url.rstrip("/")
        self.tokens: set[str] = set()
        sub, rg = world["subscription_id"], world["resource_group"]
        self.sub_id = f"/subscriptions/{sub}"
        self.rg_id = f"{self.sub_id}/resourceGroups/{rg}"
        self.resources: dict[str, dict[str, Any]] = {}
        self._build()

    # --- the ARM resources, by lower-case ID ------------------------------------------------------

    def _put(self, resource: dict[str, Any]) -> None:
        self.resources[resource["id"].lower()] = resource

    def role_definition_id(self, role: str) -> str:
        return f"{self.sub_id}/providers/Microsoft.Authorization/roleDefinitions/{BUILT_IN_ROLES[role]['id']}"

    def _build(self) -> None:
        w, rg_id, location = self.w, self.rg_id, self.w["location"]
        net = f"{rg_id}/providers/Microsoft.Network"
        self._put({"id": rg_id, "name": w["resource_group"], "type": "Microsoft.Resources/resourceGroups",
                   "location": location, "properties": {"provisioningState": "Succeeded"}})
        for name in w["route_tables"]:
            self._put({"id": f"{net}/routeTables/{name}", "name": name, "type": "Microsoft.Network/routeTables",
                       "location": location, "etag": f'W/"{_uuid()}"',
                       "properties": {"provisioningState": "Succeeded", "disableBgpRoutePropagation": False,
                                      "routes": [], "subnets": []}})
        for name in w["security_groups"]:
            self._put({"id": f"{net}/networkSecurityGroups/{name}", "name": name, "location": location,
                       "type": "Microsoft.Network/networkSecurityGroups", "etag": f'W/"{_uuid()}"',
                       "properties": {"provisioningState": "Succeeded", "securityRules": [],
                                      "defaultSecurityRules": [], "subnets": []}})
        vnet_id = f"{net}/virtualNetworks/{w['vnet']}"
        subnets = []
        for name, spec in w["subnets"].items():
            properties: dict[str, Any] = {"provisioningState": "Succeeded", "addressPrefix": spec["prefix"],
                                          "privateEndpointNetworkPolicies": "Disabled",
                                          "privateLinkServiceNetworkPolicies": "Enabled"}
            if spec["route_table"]:
                table = self.resources.get(f"{net}/routeTables/{spec['route_table']}".lower())
                properties["routeTable"] = {"id": f"{net}/routeTables/{spec['route_table']}"}
                if table:
                    table["properties"]["subnets"].append({"id": f"{vnet_id}/subnets/{name}"})
            if spec["security_group"]:
                properties["networkSecurityGroup"] = {"id": f"{net}/networkSecurityGroups/{spec['security_group']}"}
            subnet = {"id": f"{vnet_id}/subnets/{name}", "name": name, "etag": f'W/"{_uuid()}"',
                      "type": "Microsoft.Network/virtualNetworks/subnets", "properties": properties}
            subnets.append(subnet)
            self._put(subnet)
        self._put({"id": vnet_id, "name": w["vnet"], "type": "Microsoft.Network/virtualNetworks", "location": location,
                   "etag": f'W/"{_uuid()}"',
                   "properties": {"provisioningState": "Succeeded", "resourceGuid": _uuid(),
                                  "addressSpace": {"addressPrefixes": w["vnet_address_space"]},
                                  "subnets": subnets, "virtualNetworkPeerings": [],
                                  "enableDdosProtection": False}})
        for name in w["images"]:
            self._put({"id": f"{rg_id}/providers/Microsoft.Compute/images/{name}", "name": name, "location": location,
                       "type": "Microsoft.Compute/images",
                       "properties": {"provisioningState": "Succeeded", "hyperVGeneration": "V2",
                                     "storageProfile": {"osDisk": {"osType": "Linux", "osState": "Generalized"}}}})
        for role, spec in BUILT_IN_ROLES.items():
            self._put({"id": self.role_definition_id(role), "name": spec["id"],
                       "type": "Microsoft.Authorization/roleDefinitions",
                       "properties": {"roleName": role, "type": "BuiltInRole", "description": spec["description"],
                                      "assignableScopes": ["/"],
                                      "permissions": [{"actions": spec["actions"], "notActions": spec["notActions"],
                                                       "dataActions": [], "notDataActions": []}]}})
        self.assignments = []
        for entry in w["role_assignments"]:
            scope = self.rg_id if entry["scope"] == "resource-group" else self.sub_id
            guid = _uuid()
            self.assignments.append({
                "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}", "name": guid,
                "type": "Microsoft.Authorization/roleAssignments",
                "properties": {"roleDefinitionId": self.role_definition_id(entry["role"]), "scope": scope,
                               "principalId": w["object_id"], "principalType": "ServicePrincipal",
                               "createdOn": "2025-01-07T09:12:44.0000000Z"}})

    # --- dispatch ---------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        lower = [p.lower() for p in parts]
        if len(parts) >= 2 and lower[0] != "subscriptions":
            return self._entra(request, parts, lower)
        return self._arm(request, parts, lower)

    # --- Entra ID ---------------------------------------------------------------------------------

    def _entra(self, request: Request, parts: list[str], lower: list[str]) -> Response:
        tenant = parts[0]
        if tenant.lower() not in (self.w["tenant_id"].lower(), "organizations", "common"):
            return _aad_error(400, "invalid_tenant", "AADSTS90002",
                              f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
                              "are signing into the correct cloud.")
        issuer_base = f"{self.base_url}/{self.w['tenant_id']}"
        if lower[1:] == ["v2.0", ".well-known", "openid-configuration"] and request.method == "GET":
            return Response(200, {
                "token_endpoint": f"{issuer_base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                          "client_secret_basic"],
                "jwks_uri": f"{issuer_base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"], "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{issuer_base}/v2.0", "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self.base_url}/oidc/userinfo",
                "authorization_endpoint": f"{issuer_base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{issuer_base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True, "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{issuer_base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "oid", "tid"],
                "kerberos_endpoint": f"{issuer_base}/kerberos", "tenant_region_scope": "EU",
                "cloud_instance_name": "kkp.lab", "cloud_graph_host_name": "graph.kkp.lab",
                "msgraph_host": "graph.kkp.lab", "rbac_url": "https://pas.kkp.lab"})
        if lower[1:] == ["oauth2", "v2.0", "token"] and request.method == "POST":
            return self._token(request.form())
        return _aad_error(404, "invalid_request", "AADSTS900561", "The endpoint only accepts the documented requests.")

    def _token(self, form: dict[str, str]) -> Response:
        w = self.w
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", "AADSTS70003",
                              "The app requested an unsupported grant type.")
        if form.get("client_id", "").lower() != w["client_id"].lower():
            return _aad_error(400, "unauthorized_client", "AADSTS700016",
                              f"Application with identifier '{form.get('client_id')}' was not found in the directory "
                              f"'{w['subscription_name']}'. This can happen if the application has not been installed "
                              "by the administrator of the tenant.")
        accepted = w["accepted_secret"] or w["client_secret"]
        if not secrets.compare_digest(form.get("client_secret", ""), accepted):
            return _aad_error(401, "invalid_client", "AADSTS7000215",
                              "Invalid client secret provided. Ensure the secret being sent in the request is the "
                              f"client secret value, not the client secret ID, for a secret added to app "
                              f"'{w['client_id']}'.")
        scopes = form.get("scope", "").split()
        if len(scopes) != 1 or scopes[0] not in (f"{self.base_url}/.default", f"{self.base_url}//.default"):
            return _aad_error(400, "invalid_scope", "AADSTS1002012",
                              f"The provided value for scope {form.get('scope')} is not valid. Client credential "
                              "flows must have a scope value with /.default suffixed to the resource identifier.")
        now = int(time.time())
        claims = {"aud": self.base_url + "/", "iss": f"https://sts.kkp.lab/{w['tenant_id']}/", "iat": now,
                  "nbf": now, "exp": now + 3599, "appid": w["client_id"], "idtyp": "app", "oid": w["object_id"],
                  "sub": w["object_id"], "tid": w["tenant_id"], "ver": "1.0"}
        token = f"{_b64({'typ': 'JWT', 'alg': 'RS256', 'kid': 'lab'})}.{_b64(claims)}.{secrets.token_urlsafe(32)}"
        self.tokens.add(token)
        return Response(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                              "access_token": token})

    # --- Resource Manager -------------------------------------------------------------------------

    def _arm(self, request: Request, parts: list[str], lower: list[str]) -> Response:
        auth = request.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return _arm_error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                              "missing.", {"WWW-Authenticate": f'Bearer authorization_uri="{self.base_url}/'
                                                                 f'{self.w["tenant_id"]}", error="invalid_token"'})
        if auth.removeprefix("Bearer ") not in self.tokens:
            return _arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.",
                              {"WWW-Authenticate": f'Bearer authorization_uri="{self.base_url}/'
                                                   f'{self.w["tenant_id"]}", error="invalid_token"'})
        if request.method != "GET":
            return _arm_error(405, "MethodNotAllowed", "The lab stand-in only reads.")
        if not request.param("api-version"):
            return _arm_error(400, "MissingApiVersionParameter",
                              "The api-version query parameter (?api-version=) is required for all requests.")
        if len(parts) < 2:
            return _arm_error(404, "NotFound", "No subscriptions listing in the lab.")
        if lower[1] != self.w["subscription_id"].lower():
            return _arm_error(404, "SubscriptionNotFound", f"The subscription '{parts[1]}' could not be found.")
        rest = lower[2:]
        if not rest:
            return Response(200, self._subscription())
        if rest == ["locations"]:
            return Response(200, {"value": [self._location(n, z) for n, z in self.w["locations"].items()]})
        if rest == ["providers", "microsoft.compute", "skus"]:
            return Response(200, {"value": self._skus(request.param("$filter") or "")})
        if len(rest) == 13 and rest[:3] == ["providers", "microsoft.compute", "locations"] \
                and rest[4] == "publishers" and rest[12] == "versions":
            return self._image_versions(parts[2:])
        if "microsoft.authorization" in rest and lower[-1] == "roleassignments":
            return self._assignments("/" + "/".join(parts[:-3]), request.param("$filter") or "")
        if len(rest) >= 2 and rest[0] == "resourcegroups" \
                and rest[1] != self.w["resource_group"].lower():
            return _arm_error(404, "ResourceGroupNotFound", f"Resource group '{parts[3]}' could not be found.")
        if len(rest) >= 2 and rest[-2] == "roledefinitions":
            for role in BUILT_IN_ROLES:
                if BUILT_IN_ROLES[role]["id"] == lower[-1]:
                    return Response(200, self.resources[self.role_definition_id(role).lower()])
            return _arm_error(404, "RoleDefinitionDoesNotExist",
                              f"The specified role definition with ID '{parts[-1]}' does not exist.")
        resource = self.resources.get(request.path.rstrip("/").lower())
        if resource is not None:
            return Response(200, resource)
        if len(parts) >= 8 and lower[4] == "providers":
            kind = "/".join([parts[5], *parts[6::2]])
            return _not_found(kind, "/".join(parts[7::2]), parts[3])
        return _arm_error(404, "NotFound", f"No such resource: {request.path}")

    def _subscription(self) -> dict[str, Any]:
        w = self.w
        return {"id": self.sub_id, "authorizationSource": "RoleBased", "managedByTenants": [],
                "subscriptionId": w["subscription_id"], "tenantId": w["tenant_id"],
                "displayName": w["subscription_name"], "state": "Enabled",
                "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                         "spendingLimit": "Off"}}

    def _location(self, name: str, zones: list[str]) -> dict[str, Any]:
        return {"id": f"{self.sub_id}/locations/{name}", "name": name, "type": "Region",
                "displayName": name.title(), "regionalDisplayName": f"(Europe) {name.title()}",
                "metadata": {"regionType": "Physical", "regionCategory": "Recommended", "geography": "Europe",
                             "geographyGroup": "Europe", "physicalLocation": name.title()},
                "availabilityZoneMappings": [{"logicalZone": z, "physicalZone": f"{name}-az{z}"} for z in zones]}

    def _skus(self, filter_text: str) -> list[dict[str, Any]]:
        wanted = None
        if "location eq" in filter_text:
            wanted = filter_text.split("location eq", 1)[1].strip().strip("'\"").lower()
        out = []
        for location, sizes in self.w["skus"].items():
            if wanted is not None and location.lower() != wanted:
                continue
            for size, spec in sizes.items():
                restrictions = []
                if spec["restricted_zones"]:
                    restrictions.append({"type": "Zone", "values": [location],
                                         "restrictionInfo": {"locations": [location],
                                                             "zones": spec["restricted_zones"]},
                                         "reasonCode": "NotAvailableForSubscription"})
                out.append({"resourceType": "virtualMachines", "name": size, "tier": "Standard",
                            "size": size.removeprefix("Standard_"), "family": "standardDSv5Family",
                            "locations": [location],
                            "locationInfo": [{"location": location, "zones": spec["zones"], "zoneDetails": []}],
                            "capabilities": [{"name": "vCPUs", "value": "4"}, {"name": "MemoryGB", "value": "16"}],
                            "restrictions": restrictions})
        return out

    def _image_versions(self, parts: list[str]) -> Response:
        # providers/Microsoft.Compute/locations/{loc}/publishers/{p}/artifacttypes/vmimage/offers/{o}/skus/{s}/versions
        location, publisher, offer, sku = parts[3], parts[5], parts[9], parts[11]
        for key, versions in self.w["marketplace"].items():
            if key.lower() == f"{publisher}/{offer}/{sku}".lower():
                base = (f"{self.sub_id}/providers/Microsoft.Compute/locations/{location}/publishers/{publisher}"
                        f"/artifacttypes/vmimage/offers/{offer}/skus/{sku}/versions")
                return Response(200, [{"location": location, "name": v, "id": f"{base}/{v}"} for v in versions])
        return _arm_error(404, "ArtifactNotFound", f"Artifact: VMImage was not found. (publisher {publisher}, offer "
                                                   f"{offer}, sku {sku})")

    def _assignments(self, scope: str, filter_text: str) -> Response:
        scope_l = scope.lower().rstrip("/")
        principal = None
        if "assignedto(" in filter_text.lower():
            principal = filter_text.split("'")[1].lower()
        at_scope = "atscope()" in filter_text.lower()
        out = []
        for assignment in self.assignments:
            a_scope = assignment["properties"]["scope"].lower()
            above = scope_l.startswith(a_scope)
            below = a_scope.startswith(scope_l)
            if at_scope and not above:
                continue
            if not (above or below):
                continue
            if principal is not None and assignment["properties"]["principalId"].lower() != principal:
                continue
            out.append(assignment)
        return Response(200, {"value": out})


def lab_state(world: World, base_url: str, directory: Path, leaf: Any) -> dict[str, Any]:
    """What ``profiles/lab-azure.yaml`` reads as ``${lab:cloud.azure.KEY}``; the secret only as a file."""
    from kkp_readiness.lab.part import write_private

    secret_file = write_private(directory / "azure-client-secret", world.client_secret)
    subnet = world.subnets.get(world.subnet)
    return {
        "tenant_id": world.tenant_id, "subscription_id": world.subscription_id, "client_id": world.client_id,
        "object_id": world.object_id, "client_secret_file": str(secret_file),
        "authority_host": base_url, "resource_manager": base_url,
        "location": world.location, "zones": list(world.planned_zones), "vm_sizes": list(world.vm_sizes),
        "vm_size": world.vm_size, "resource_group": world.resource_group, "vnet": world.vnet,
        "subnet": world.subnet, "subnet_cidr": subnet.prefix if subnet else "10.240.0.0/24",
        "route_table": world.route_table, "security_group": world.security_group,
        "image_id": (f"/subscriptions/{world.subscription_id}/resourceGroups/{world.resource_group}"
                     f"/providers/Microsoft.Compute/images/{world.image}"),
    }


# --- faults ---------------------------------------------------------------------------------------


def _bad_credentials(plan: Any) -> None:
    plan.world("azure").accepted_secret = secrets.token_urlsafe(24)


def _missing_role(plan: Any) -> None:
    plan.world("azure").role_assignments = [{"role": "Reader", "scope": "resource-group"},
                                            {"role": "Reader", "scope": "subscription"}]


def _zone_missing(plan: Any) -> None:
    world = plan.world("azure")
    for size in world.vm_sizes:
        world.skus[world.location][size]["restricted_zones"] = ["3"]


def _subnet_no_route_table(plan: Any) -> None:
    world = plan.world("azure")
    world.subnets[world.subnet].route_table = None


def _subnet_too_small(plan: Any) -> None:
    world = plan.world("azure")
    world.subnets[world.subnet].prefix = "10.240.0.0/27"


def _md_image_missing(plan: Any) -> None:
    world = plan.world("azure")
    world.images = [i for i in world.images if i != world.image]


def faults() -> list[Any]:
    from kkp_readiness.lab.faults import Fault

    shown = {"extends": "lab-azure"}
    return [
        Fault("azure-bad-credentials", part="cloud",
              description="Entra ID refuses the service principal's secret (expired or rotated): every Azure "
                          "check ends as error with the AADSTS reason.",
              breaks=(), touches=("cloud:azure:credentials",), shown_with=shown, apply=_bad_credentials),
        Fault("azure-missing-role", part="cloud",
              description="the service principal holds only Reader (no Contributor on the resource group).",
              breaks=("AZURE-002",), touches=("cloud:azure:roles",), shown_with=shown, apply=_missing_role),
        Fault("azure-zone-missing", part="cloud",
              description="the planned VM size is not offered in zone 3 of the location (NotAvailableForSubscription).",
              breaks=("AZURE-003",), touches=("cloud:azure:skus",), shown_with=shown, apply=_zone_missing),
        Fault("azure-subnet-no-route-table", part="cloud",
              description="the node subnet has no route table associated.",
              breaks=("AZURE-004",), touches=("cloud:azure:subnet-route-table",), shown_with=shown,
              apply=_subnet_no_route_table),
        Fault("azure-subnet-too-small", part="cloud",
              description="the node subnet is a /27: too small for the planned machines.",
              breaks=("AZURE-005",), touches=("cloud:azure:subnet-prefix",), shown_with=shown,
              apply=_subnet_too_small),
        Fault("azure-md-image-missing", part="cloud",
              description="the managed image the machine deployment's imageID names does not exist.",
              breaks=("AZURE-008",), touches=("cloud:azure:images",), shown_with=shown, apply=_md_image_missing),
    ]
