"""The lab's OpenStack: Keystone v3, Nova, Neutron and Glance as openstacksdk calls them.

Served under one base URL with a path per service, as the catalog publishes them (a devstack
layout): ``/identity`` (Keystone, the profile's ``auth_url`` is ``<base>/identity/v3``),
``/compute/v2.1`` (Nova), ``/network`` (Neutron, ``/v2.0/...``), ``/image`` (Glance, ``/v2/...``),
``/volume/v3/<project>`` (Cinder) and ``/load-balancer`` (Octavia; only version discovery).

What is answered, with the documented shapes (docs.openstack.org/api-ref):

* version discovery of each service (``GET`` of its root);
* ``POST /identity/v3/auth/tokens``: password (user name + user domain) or application credential
  (id + secret), scoped to the project by name + domain or id; 201 with ``X-Subject-Token`` and the
  token (methods, user, project, roles, catalog); 401 with Keystone's message otherwise;
* ``GET /identity/v3/auth/tokens`` (token validation) and every other call: ``X-Auth-Token`` required;
* Nova: ``os-availability-zone``, ``flavors/detail``; Glance: ``images``;
* Neutron: ``networks`` (filters ``name``, ``router:external``, ``id``), ``networks/<id>``,
  ``subnets`` and ``subnets/<id>``, ``routers``, ``ports`` (filters ``device_id``, ``device_owner``,
  ``network_id``), ``security-groups``, ``quotas/<project>/details``,
  ``network-ip-availabilities/<id>``.

The world's objects carry the fields Neutron and Nova return, so what the SDK builds is what it
would build from a real cloud.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kkp_readiness.lab.cloudapi.server import Request, Response

ADDRESS = "127.0.3.1"
NAMES = ("openstack.kkp.lab",)
IDENTITY_MEDIA_TYPE = "application/vnd.openstack.identity-v3+json"
KEYSTONE_ERROR = {"code": 401, "title": "Unauthorized",
                  "message": "The request you have made requires authentication."}


def _id() -> str:
    return uuid.uuid4().hex


@dataclass
class Subnet:
    name: str
    cidr: str
    allocation_pools: list[dict[str, str]]
    enable_dhcp: bool = True
    dns_nameservers: list[str] = field(default_factory=list)
    gateway_ip: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Network:
    name: str
    external: bool = False
    subnets: list[Subnet] = field(default_factory=list)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Router:
    name: str
    external_network: str | None  # network name
    interfaces: list[str] = field(default_factory=list)  # subnet names
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _pool(cidr: str, first: int, last: int) -> dict[str, str]:
    net = ipaddress.ip_network(cidr)
    return {"start": str(net[first]), "end": str(net[last])}


@dataclass
class World:
    """The lab cloud: one region, one project, one user with a password and an application credential."""

    region: str = "RegionOne"
    project_name: str = "kubermatic"
    project_id: str = field(default_factory=_id)
    domain: str = "Default"
    username: str = "kkp-technical-user"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    #: What the server accepts, when a fault makes it differ from ``password`` (the file the profile reads).
    accepted_password: str | None = None
    application_credential_id: str = field(default_factory=_id)
    application_credential_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    roles: list[str] = field(default_factory=lambda: ["member", "reader", "load-balancer_member"])
    zones: dict[str, bool] = field(default_factory=lambda: {"az-1": True, "az-2": True, "az-3": True})
    networks: list[Network] = field(default_factory=lambda: [
        Network("kubermatic-network", subnets=[Subnet("kubermatic-subnet", "10.254.0.0/24",
                                                      [_pool("10.254.0.0/24", 2, 254)],
                                                      dns_nameservers=[], gateway_ip="10.254.0.1")]),
        Network("public", external=True, subnets=[Subnet("public-subnet", "203.0.113.0/24",
                                                         [_pool("203.0.113.0/24", 10, 200)], enable_dhcp=False,
                                                         gateway_ip="203.0.113.1")]),
    ])
    routers: list[Router] = field(default_factory=lambda: [
        Router("kubermatic-router", "public", ["kubermatic-subnet"])])
    #: The floating IP quota: limit and used (``-1``: unlimited).
    floatingip_quota: tuple[int, int] = (50, 3)
    flavors: list[str] = field(default_factory=lambda: ["m1.small", "m1.medium", "m1.large"])
    images: list[str] = field(default_factory=lambda: ["ubuntu-24.04", "flatcar-stable"])
    security_groups: list[str] = field(default_factory=lambda: ["default", "kubermatic-nodes"])
    #: Catalog services left out (e.g. "load-balancer" for a cloud without Octavia).
    missing_services: list[str] = field(default_factory=list)

    def network(self, name: str) -> Network:
        return next(n for n in self.networks if n.name == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lab_state(world: World, base_url: str, directory: Path, leaf: Any) -> dict[str, Any]:
    """What ``profiles/lab-openstack.yaml`` reads; the secrets go to files (mode 0600)."""
    from kkp_readiness.lab.part import write_private

    management = world.networks[0]
    return {
        "auth_url": f"{base_url}/identity/v3",
        "region": world.region,
        "domain": world.domain,
        "project_name": world.project_name,
        "project_id": world.project_id,
        "username": world.username,
        "password_file": str(write_private(directory / "openstack-password", world.password)),
        "application_credential_id": world.application_credential_id,
        "application_credential_secret_file": str(write_private(directory / "openstack-app-credential-secret",
                                                                world.application_credential_secret)),
        "network": management.name,
        "subnet_id": management.subnets[0].id,
        "subnet_cidr": management.subnets[0].cidr,
        "router": world.routers[0].name,
        "floating_ip_pool": "public",
        # What the lab profile's machine deployment names (fixed: a fault removes the object, not the name).
        "security_group": "kubermatic-nodes",
        "flavor": "m1.medium",
        "image": "ubuntu-24.04",
    }


# ---------------------------------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


class Api:
    """The request handler (see the module docstring)."""

    SERVICES = (("identity", "keystone", "/identity/v3"), ("compute", "nova", "/compute/v2.1"),
                ("network", "neutron", "/network"), ("image", "glance", "/image"),
                ("volumev3", "cinderv3", "/volume/v3/{project}"), ("load-balancer", "octavia", "/load-balancer"))

    def __init__(self, world: dict[str, Any], base_url: str) -> None:
        self.world = world
        self.base = base_url.rstrip("/")
        self.tokens: dict[str, dt.datetime] = {}

    # -- helpers --------------------------------------------------------------------------------------

    def _catalog(self) -> list[dict[str, Any]]:
        catalog = []
        for kind, name, path in self.SERVICES:
            if kind in self.world["missing_services"]:
                continue
            url = self.base + path.format(project=self.world["project_id"])
            catalog.append({"type": kind, "name": name, "id": _id(), "endpoints": [
                {"id": _id(), "interface": interface, "region": self.world["region"],
                 "region_id": self.world["region"], "url": url} for interface in ("public", "internal")]})
        return catalog

    def _authorised(self, request: Request) -> bool:
        token = request.headers.get("X-Auth-Token", "")
        expiry = self.tokens.get(token)
        return expiry is not None and expiry > _now()

    def _identity_ok(self, body: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """(the user, the method) when the identity in a token request is the world's, else (None, why)."""
        identity = (body.get("auth") or {}).get("identity") or {}
        methods = identity.get("methods") or []
        w = self.world
        if "application_credential" in methods:
            credential = identity.get("application_credential") or {}
            if credential.get("id") == w["application_credential_id"] and \
                    credential.get("secret") == w["application_credential_secret"]:
                return {"id": "u-" + w["username"], "name": w["username"]}, "application_credential"
            return None, "The request you have made requires authentication."
        if "password" in methods:
            user = (identity.get("password") or {}).get("user") or {}
            accepted = w["accepted_password"] or w["password"]
            domain = (user.get("domain") or {}).get("name") or (user.get("domain") or {}).get("id")
            if user.get("name") == w["username"] and user.get("password") == accepted and \
                    domain in (w["domain"], w["domain"].lower()):
                return {"id": "u-" + w["username"], "name": w["username"]}, "password"
            return None, "The request you have made requires authentication."
        return None, f"unsupported authentication methods {methods}"

    def _scope_ok(self, body: dict[str, Any], method: str) -> bool:
        if method == "application_credential":
            return True  # an application credential is bound to its project
        project = ((body.get("auth") or {}).get("scope") or {}).get("project") or {}
        w = self.world
        if project.get("id"):
            return project["id"] == w["project_id"]
        domain = (project.get("domain") or {}).get("name") or (project.get("domain") or {}).get("id")
        return project.get("name") == w["project_name"] and domain in (w["domain"], w["domain"].lower())

    def _token_body(self, user: dict[str, Any], method: str, expires: dt.datetime) -> dict[str, Any]:
        w = self.world
        domain = {"id": w["domain"].lower(), "name": w["domain"]}
        return {"token": {
            "methods": [method], "user": {**user, "domain": domain, "password_expires_at": None},
            "project": {"id": w["project_id"], "name": w["project_name"], "domain": domain},
            "roles": [{"id": _id(), "name": role} for role in w["roles"]],
            "catalog": self._catalog(), "is_domain": False,
            "expires_at": _stamp(expires), "issued_at": _stamp(_now()), "audit_ids": [_id()[:22]],
        }}

    def _version(self, service: str) -> Response:
        base = self.base
        documents = {
            "identity": {"versions": {"values": [{"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                                                  "links": [{"rel": "self", "href": f"{base}/identity/v3/"}],
                                                  "media-types": [{"base": "application/json",
                                                                   "type": IDENTITY_MEDIA_TYPE}]}]}},
            "compute": {"versions": [{"id": "v2.1", "status": "CURRENT", "version": "2.95", "min_version": "2.1",
                                      "updated": "2013-07-23T11:33:21Z",
                                      "links": [{"rel": "self", "href": f"{base}/compute/v2.1/"}]}]},
            "network": {"versions": [{"id": "v2.0", "status": "CURRENT",
                                      "links": [{"rel": "self", "href": f"{base}/network/v2.0/"}]}]},
            "image": {"versions": [{"id": "v2.16", "status": "CURRENT",
                                    "links": [{"rel": "self", "href": f"{base}/image/v2/"}]}]},
            "volume": {"versions": [{"id": "v3.0", "status": "CURRENT", "version": "3.70", "min_version": "3.0",
                                     "updated": "2023-08-31T00:00:00Z",
                                     "links": [{"rel": "self", "href": f"{base}/volume/v3/"}]}]},
            "load-balancer": {"versions": [{"id": "v2.0", "status": "CURRENT", "updated": "2024-03-01T00:00:00Z",
                                            "links": [{"rel": "self", "href": f"{base}/load-balancer/v2/"}]}]},
        }
        status = 300 if service in ("compute", "identity", "volume") else 200
        return Response(status, documents[service])

    # -- routing --------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return Response(404, {"error": {"message": "not found"}})
        service, rest = parts[0], parts[1:]
        if service == "identity":
            return self._identity(request, rest)
        if service not in ("compute", "network", "image", "volume", "load-balancer"):
            return Response(404, {"error": {"message": f"no service {service}"}})
        if not rest or (service == "compute" and rest == ["v2.1"] and request.method == "GET"
                        and not self._authorised(request)):
            return self._version(service)
        if not self._authorised(request):
            return Response(401, {"error": KEYSTONE_ERROR})
        if service == "compute":
            return self._compute(request, rest[1:] if rest[0] == "v2.1" else rest)
        if service == "network":
            return self._network(request, rest[1:] if rest[0] == "v2.0" else rest)
        if service == "image":
            return self._image(request, rest[1:] if rest[0] == "v2" else rest)
        return Response(404, {"error": {"message": "not found"}})

    def _identity(self, request: Request, rest: list[str]) -> Response:
        if not rest:
            return self._version("identity")
        if rest == ["v3"]:
            return Response(200, {"version": self._version("identity").body["versions"]["values"][0]})
        if rest == ["v3", "auth", "tokens"] and request.method == "POST":
            body = request.json() or {}
            user, method = self._identity_ok(body)
            if user is None:
                return Response(401, {"error": {**KEYSTONE_ERROR, "message": method}})
            if not self._scope_ok(body, method):
                return Response(401, {"error": {**KEYSTONE_ERROR, "message":
                                                "User does not have access to the requested project."}})
            token = "gAAAAA" + secrets.token_urlsafe(48)
            expires = _now() + dt.timedelta(hours=1)
            self.tokens[token] = expires
            return Response(201, self._token_body(user, method, expires), {"X-Subject-Token": token})
        if not self._authorised(request):
            return Response(401, {"error": KEYSTONE_ERROR})
        if rest == ["v3", "auth", "tokens"] and request.method in ("GET", "HEAD"):
            return Response(200, self._token_body({"id": "u-" + self.world["username"],
                                                   "name": self.world["username"]}, "password",
                                                  self.tokens[request.headers.get("X-Subject-Token", "")]))
        return Response(404, {"error": {"code": 404, "message": "not found", "title": "Not Found"}})

    def _compute(self, request: Request, rest: list[str]) -> Response:
        if rest == ["os-availability-zone"]:
            return Response(200, {"availabilityZoneInfo": [
                {"zoneName": name, "zoneState": {"available": available}, "hosts": None}
                for name, available in self.world["zones"].items()]})
        if rest in (["flavors", "detail"], ["flavors"]):
            return Response(200, {"flavors": [
                {"id": str(index), "name": name, "ram": 2048 * index, "vcpus": index, "disk": 20 * index,
                 "OS-FLV-EXT-DATA:ephemeral": 0, "swap": "", "rxtx_factor": 1.0,
                 "os-flavor-access:is_public": True, "links": []}
                for index, name in enumerate(self.world["flavors"], start=1)]})
        return Response(404, {"itemNotFound": {"code": 404, "message": "not found"}})

    def _image(self, request: Request, rest: list[str]) -> Response:
        if rest == ["images"]:
            name = request.param("name")
            images = [{"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, n)), "name": n, "status": "active",
                       "visibility": "public", "disk_format": "qcow2", "container_format": "bare"}
                      for n in self.world["images"] if name in (None, n)]
            return Response(200, {"images": images, "first": "/v2/images", "schema": "/v2/schemas/images"})
        return Response(404, {"message": "not found"})

    # -- Neutron ------------------------------------------------------------------------------------------

    def _network_body(self, network: dict[str, Any]) -> dict[str, Any]:
        return {"id": network["id"], "name": network["name"], "status": "ACTIVE", "admin_state_up": True,
                "router:external": network["external"], "shared": network["external"],
                "subnets": [s["id"] for s in network["subnets"]], "project_id": self.world["project_id"],
                "tenant_id": self.world["project_id"], "mtu": 1450, "availability_zones": ["nova"]}

    def _subnet_body(self, network: dict[str, Any], subnet: dict[str, Any]) -> dict[str, Any]:
        version = ipaddress.ip_network(subnet["cidr"]).version
        return {"id": subnet["id"], "name": subnet["name"], "network_id": network["id"], "cidr": subnet["cidr"],
                "ip_version": version, "enable_dhcp": subnet["enable_dhcp"],
                "allocation_pools": subnet["allocation_pools"], "dns_nameservers": subnet["dns_nameservers"],
                "gateway_ip": subnet["gateway_ip"], "host_routes": [], "project_id": self.world["project_id"],
                "tenant_id": self.world["project_id"]}

    def _subnets(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(n, s) for n in self.world["networks"] for s in n["subnets"]]

    def _routers(self) -> list[dict[str, Any]]:
        by_name = {n["name"]: n for n in self.world["networks"]}
        routers = []
        for router in self.world["routers"]:
            external = by_name.get(router["external_network"] or "")
            gateway = {"network_id": external["id"], "enable_snat": True,
                       "external_fixed_ips": [{"subnet_id": external["subnets"][0]["id"],
                                               "ip_address": external["subnets"][0]["allocation_pools"][0]["start"]}]
                       } if external else None
            routers.append({"id": router["id"], "name": router["name"], "status": "ACTIVE", "admin_state_up": True,
                            "external_gateway_info": gateway, "project_id": self.world["project_id"],
                            "tenant_id": self.world["project_id"]})
        return routers

    def _ports(self) -> list[dict[str, Any]]:
        subnets = {s["name"]: (n, s) for n, s in self._subnets()}
        ports = []
        for router in self.world["routers"]:
            for name in router["interfaces"]:
                network, subnet = subnets[name]
                ports.append({"id": str(uuid.uuid5(uuid.NAMESPACE_URL, router["id"] + name)), "name": "",
                              "network_id": network["id"], "device_id": router["id"],
                              "device_owner": "network:router_interface", "status": "ACTIVE",
                              "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": subnet["gateway_ip"]}],
                              "project_id": self.world["project_id"], "tenant_id": self.world["project_id"]})
        return ports

    @staticmethod
    def _filtered(items: list[dict[str, Any]], request: Request, keys: tuple[str, ...]) -> list[dict[str, Any]]:
        for key in keys:
            wanted = request.param(key)
            if wanted is not None:
                items = [i for i in items if str(i.get(key)).lower() == wanted.lower()]
        return items

    def _network(self, request: Request, rest: list[str]) -> Response:
        not_found = Response(404, {"NeutronError": {"type": "NotFound", "message": "not found", "detail": ""}})
        if rest and rest[-1].endswith(".json"):
            rest = [*rest[:-1], rest[-1].removesuffix(".json")]
        networks = [self._network_body(n) for n in self.world["networks"]]
        if rest == ["networks"]:
            return Response(200, {"networks": self._filtered(networks, request, ("id", "name", "router:external"))})
        if len(rest) == 2 and rest[0] == "networks":
            found = [n for n in networks if n["id"] == rest[1]]
            return Response(200, {"network": found[0]}) if found else not_found
        subnets = [self._subnet_body(n, s) for n, s in self._subnets()]
        if rest == ["subnets"]:
            return Response(200, {"subnets": self._filtered(subnets, request, ("id", "name", "network_id"))})
        if len(rest) == 2 and rest[0] == "subnets":
            found = [s for s in subnets if s["id"] == rest[1]]
            return Response(200, {"subnet": found[0]}) if found else not_found
        if rest == ["routers"]:
            return Response(200, {"routers": self._filtered(self._routers(), request, ("id", "name"))})
        if rest == ["ports"]:
            return Response(200, {"ports": self._filtered(self._ports(), request,
                                                          ("device_id", "device_owner", "network_id"))})
        if rest == ["security-groups"]:
            groups = [{"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, g)), "name": g, "description": "",
                       "security_group_rules": [], "project_id": self.world["project_id"],
                       "tenant_id": self.world["project_id"]} for g in self.world["security_groups"]]
            return Response(200, {"security_groups": self._filtered(groups, request, ("id", "name"))})
        if len(rest) == 3 and rest[0] == "quotas" and rest[2] == "details":
            limit, used = self.world["floatingip_quota"]
            return Response(200, {"quota": {"floatingip": {"limit": limit, "used": used, "reserved": 0},
                                            "network": {"limit": 100, "used": 2, "reserved": 0}}})
        if len(rest) == 2 and rest[0] == "network-ip-availabilities":
            # Neutron's default policy: admin only. A project user gets 403, as on most clouds.
            return Response(403, {"NeutronError": {"type": "PolicyNotAuthorized", "detail": "",
                                                   "message": "rule:get_network_ip_availability is disallowed "
                                                              "by policy"}})
        return not_found


def faults() -> list[Any]:
    """The OpenStack faults; each is judged under ``profiles/lab-openstack.yaml``."""
    from kkp_readiness.lab.faults import Fault

    shown = {"extends": "lab-openstack"}

    def edit(change: Any) -> Any:
        return lambda plan: change(plan.world("openstack"))

    def zone_missing(world: World) -> None:
        del world.zones["az-3"]

    def no_pool(world: World) -> None:
        world.networks = [n for n in world.networks if not n.external]
        for router in world.routers:
            router.external_network = None

    def small_subnet(world: World) -> None:
        subnet = world.networks[0].subnets[0]
        subnet.cidr, subnet.gateway_ip = "10.254.0.0/27", "10.254.0.1"
        subnet.allocation_pools = [_pool(subnet.cidr, 2, 30)]

    def no_dhcp(world: World) -> None:
        world.networks[0].subnets[0].enable_dhcp = False

    def no_router(world: World) -> None:
        world.routers[0].interfaces = []

    def member_only(world: World) -> None:
        world.roles = ["reader"]

    def no_flavor(world: World) -> None:
        world.flavors = [f for f in world.flavors if f != "m1.medium"]

    def wrong_password(world: World) -> None:
        world.accepted_password = secrets.token_urlsafe(18)

    return [
        Fault("openstack-bad-credentials", "cloud", "Keystone refuses the profile's password (it was changed): "
              "every OpenStack check ends as error with Keystone's reason.", touches=("cloud:openstack:password",),
              shown_with=shown, apply=edit(wrong_password)),
        Fault("openstack-missing-role", "cloud", "The user holds only the reader role in the project, not member.",
              breaks=("OPENSTACK-002",), touches=("cloud:openstack:roles",), shown_with=shown, apply=edit(member_only)),
        Fault("openstack-zone-missing", "cloud", "Nova lists az-1 and az-2 only; the profile plans az-3 too.",
              breaks=("OPENSTACK-003",), touches=("cloud:openstack:zones",), shown_with=shown,
              apply=edit(zone_missing)),
        Fault("openstack-no-router-interface", "cloud", "The router has no interface on the machines' subnet: "
              "it is not attached to the external network.", breaks=("OPENSTACK-004",),
              touches=("cloud:openstack:router",), shown_with=shown, apply=edit(no_router)),
        Fault("openstack-no-floating-ip-pool", "cloud", "No external network exists: the floating IP pool `public` "
              "is missing (and the router has no gateway).", breaks=("OPENSTACK-004", "OPENSTACK-005", "OPENSTACK-011"),
              touches=("cloud:openstack:external",), shown_with=shown, apply=edit(no_pool)),
        Fault("openstack-subnet-too-small", "cloud", "The machines' subnet is a /27: 29 addresses for the planned "
              "machines.", breaks=("OPENSTACK-006",), touches=("cloud:openstack:subnet-size",), shown_with=shown,
              apply=edit(small_subnet)),
        Fault("openstack-subnet-no-dhcp", "cloud", "DHCP is off on the machines' subnet.", breaks=("OPENSTACK-007",),
              touches=("cloud:openstack:dhcp",), shown_with=shown, apply=edit(no_dhcp)),
        Fault("openstack-flavor-missing", "cloud", "The flavor the machine deployment names (m1.medium) does not "
              "exist.", breaks=("OPENSTACK-011",), touches=("cloud:openstack:flavors",), shown_with=shown,
              apply=edit(no_flavor)),
    ]
