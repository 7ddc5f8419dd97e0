"""OpenStack, as KKP's machine-controller and the OpenStack CCM see it: facts read with openstacksdk.

Credentials are assembled as the ``openstack`` CLI does it, by openstacksdk's own config loader:
the ``clouds.yaml`` entry ``cloud.openstack.cloud`` (or ``$OS_CLOUD``) names, else the ``OS_*``
variables of an openrc file, and the profile's fields on top (a profile value always wins).
Passwords, application credential secrets and the token are registered with ``redact`` before
the first request. Every call is bounded by ``timeouts.http`` and never retried.

Probes return data; the checks in ``tests_infra/test_openstack.py`` judge it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from kkp_readiness import redact
from kkp_readiness.cloud.errors import AuthenticationFailed, CloudProbeError, CredentialsMissing
from kkp_readiness.cloud.extras import require
from kkp_readiness.profile import LoadedProfile
from kkp_readiness.profile_model import OpenstackSpec

#: The catalog services whose endpoints KKP's machine-controller and the OpenStack CCM call.
KKP_SERVICES = ("identity", "compute", "network", "volumev3", "load-balancer")


@dataclass(frozen=True)
class CatalogEndpoint:
    service: str
    interface: str
    region: str
    url: str


@dataclass(frozen=True)
class TokenFacts:
    """What Keystone said about the token it issued (OPENSTACK-001..003)."""

    user: str
    project_id: str
    project_name: str
    roles: tuple[str, ...]
    methods: tuple[str, ...]
    catalog: tuple[CatalogEndpoint, ...]

    @property
    def regions(self) -> set[str]:
        return {e.region for e in self.catalog}

    def public_endpoints(self, region: str | None) -> dict[str, str]:
        """Service type -> public URL in ``region`` (any region when None)."""
        found: dict[str, str] = {}
        for entry in self.catalog:
            if entry.interface == "public" and (region is None or entry.region == region):
                found.setdefault(entry.service, entry.url)
        return found


@dataclass(frozen=True)
class SubnetFacts:
    id: str
    name: str
    network_id: str
    cidr: str
    enable_dhcp: bool
    allocation_pools: tuple[tuple[str, str], ...]
    dns_nameservers: tuple[str, ...]
    gateway_ip: str | None

    def pool_addresses(self) -> int:
        """Addresses the allocation pools hand out (what machines can get)."""
        import ipaddress

        return sum(int(ipaddress.ip_address(end)) - int(ipaddress.ip_address(start)) + 1
                   for start, end in self.allocation_pools)


@dataclass(frozen=True)
class NetworkFacts:
    id: str
    name: str
    external: bool
    subnet_ids: tuple[str, ...]


@dataclass(frozen=True)
class RouterFacts:
    id: str
    name: str
    external_network_id: str | None
    interface_subnet_ids: tuple[str, ...]


@dataclass(frozen=True)
class Quota:
    limit: int
    used: int

    @property
    def free(self) -> int | None:
        """Free units; None when unlimited (-1)."""
        return None if self.limit < 0 else max(self.limit - self.used, 0)


@dataclass(frozen=True)
class Credentials:
    """The openstacksdk configuration (a ``CloudRegion``) and where its parts came from (for messages; no secret)."""

    region: Any
    sources: tuple[str, ...]


def _profile_options(loaded: LoadedProfile, spec: OpenstackSpec) -> dict[str, Any]:
    """The profile's explicit values as openstacksdk options (``auth`` keys as Keystone names them)."""
    auth: dict[str, Any] = {}
    for key in ("auth_url", "project_name", "project_id", "username", "application_credential_id"):
        if getattr(spec, key):
            auth[key] = getattr(spec, key)
    if spec.password is not None:
        auth["password"] = spec.password.reveal()
    if spec.application_credential_secret is not None:
        auth["application_credential_secret"] = spec.application_credential_secret.reveal()
    if spec.domain:
        auth["user_domain_name"] = auth["project_domain_name"] = spec.domain
    options: dict[str, Any] = {"auth": auth} if auth else {}
    if spec.region:
        options["region_name"] = spec.region
    ca_bundle = loaded.resolve_path(("cloud", "openstack", "ca_bundle"), spec.ca_bundle)
    if ca_bundle:
        options["cacert"] = ca_bundle
    if spec.application_credential_id:
        options["auth_type"] = "v3applicationcredential"
        for key in ("username", "password", "project_name", "project_id", "user_domain_name", "project_domain_name"):
            auth.pop(key, None)
    elif spec.username:
        options["auth_type"] = "v3password"
    return options


def credentials(loaded: LoadedProfile, environ: dict[str, str] | None = None) -> Credentials:
    """The merged configuration: clouds.yaml entry or ``OS_*`` variables, overridden by the profile."""
    spec = loaded.profile.cloud.openstack
    assert spec is not None
    environ = dict(os.environ if environ is None else environ)
    config = require("openstack.config.loader", "openstack")
    options = _profile_options(loaded, spec)
    name = spec.cloud or environ.get("OS_CLOUD")
    sources = []
    if name:
        sources.append(f"clouds.yaml entry {name}")
    if any(k.startswith("OS_") and k != "OS_CLOUD" for k in environ):
        sources.append("OS_* variables")
    if options:
        sources.append("profile cloud.openstack")
    try:
        loader = config.OpenStackConfig(load_yaml_config=bool(name), load_envvars=True)
        region = loader.get_one(cloud=name, validate=True, **options)
    except Exception as exc:  # openstacksdk raises its own config errors (OpenStackConfigException, KeyError)
        raise CredentialsMissing(f"the OpenStack credentials could not be assembled from "
                                 f"{', '.join(sources) or 'anywhere'}: {exc}") from None
    auth = dict(region.config.get("auth") or {})
    if not auth.get("auth_url"):
        raise CredentialsMissing("no Keystone URL: set cloud.openstack.auth_url, a clouds.yaml entry "
                                 "(cloud.openstack.cloud or $OS_CLOUD) or OS_AUTH_URL")
    for key in ("password", "application_credential_secret", "token"):
        if auth.get(key):
            redact.register(str(auth[key]))
    return Credentials(region, tuple(sources))


def _reason(exc: Exception) -> str:
    """The provider's own words: Keystone's and Neutron's JSON messages are in the exception text."""
    text = str(exc).strip() or type(exc).__name__
    return redact.redact(text)[:500]


def _http_status(exc: BaseException | None) -> int | None:
    """The HTTP status behind an exception, looking through the chain (openstacksdk wraps keystoneauth's)."""
    while exc is not None:
        for attribute in ("status_code", "http_status"):
            value = getattr(exc, attribute, None)
            if isinstance(value, int):
                return value
        exc = exc.__cause__ or exc.__context__
    return None


class OpenstackCloud:
    """An authenticated session; each method is one question to the cloud (cached)."""

    def __init__(self, connection: Any, spec: OpenstackSpec, sources: tuple[str, ...]) -> None:
        self.connection = connection
        self.spec = spec
        self.sources = sources
        self._cache: dict[Any, Any] = {}
        self.exceptions = require("openstack.exceptions", "openstack")

    def _ask(self, key: Any, what: str, call: Any) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = call()
            except self.exceptions.NotFoundException:
                self._cache[key] = None
            except self.exceptions.SDKException as exc:
                raise CloudProbeError(f"OpenStack did not answer {what}: {_reason(exc)}") from None
            except Exception as exc:  # keystoneauth's connection errors
                raise CloudProbeError(f"OpenStack did not answer {what}: {_reason(exc)}") from None
        return self._cache[key]

    def token(self) -> TokenFacts:
        def read() -> TokenFacts:
            access = self.connection.session.auth.get_access(self.connection.session)
            catalog = tuple(CatalogEndpoint(service["type"], endpoint.get("interface", ""),
                                            endpoint.get("region_id") or endpoint.get("region") or "",
                                            endpoint["url"])
                            for service in access.service_catalog.catalog
                            for endpoint in service.get("endpoints", []))
            methods = tuple((access._data.get("token") or {}).get("methods") or ())  # not exposed otherwise
            return TokenFacts(access.username or "", access.project_id or "", access.project_name or "",
                              tuple(access.role_names or ()), methods, catalog)
        return self._ask("token", "the token request", read)

    def zones(self) -> dict[str, bool]:
        """Nova's availability zones: name -> available."""
        return self._ask("zones", "the availability zone list (Nova os-availability-zone)", lambda: {
            z.name: bool((z.state or {}).get("available")) for z in self.connection.compute.availability_zones()})

    def network(self, name_or_id: str) -> NetworkFacts | None:
        def read() -> NetworkFacts | None:
            found = self.connection.network.find_network(name_or_id, ignore_missing=True)
            return None if found is None else NetworkFacts(found.id, found.name, bool(found.is_router_external),
                                                           tuple(found.subnet_ids or ()))
        return self._ask(("network", name_or_id), f"the network {name_or_id}", read)

    def external_networks(self) -> list[NetworkFacts]:
        return self._ask("external", "the external network list", lambda: [
            NetworkFacts(n.id, n.name, True, tuple(n.subnet_ids or ()))
            for n in self.connection.network.networks(is_router_external=True)])

    def subnet(self, subnet_id: str) -> SubnetFacts | None:
        def read() -> SubnetFacts:
            s = self.connection.network.get_subnet(subnet_id)
            return SubnetFacts(s.id, s.name or "", s.network_id, s.cidr, bool(s.is_dhcp_enabled),
                               tuple((p["start"], p["end"]) for p in s.allocation_pools or ()),
                               tuple(s.dns_nameservers or ()), s.gateway_ip)
        return self._ask(("subnet", subnet_id), f"the subnet {subnet_id}", read)

    def routers(self) -> list[RouterFacts]:
        def read() -> list[RouterFacts]:
            routers = []
            for router in self.connection.network.routers():
                gateway = router.external_gateway_info or {}
                ports = self.connection.network.ports(device_id=router.id, device_owner="network:router_interface")
                subnets = tuple(ip["subnet_id"] for port in ports for ip in port.fixed_ips or ())
                routers.append(RouterFacts(router.id, router.name, gateway.get("network_id"), subnets))
            return routers
        return self._ask("routers", "the router list", read)

    def floating_ip_quota(self) -> Quota | None:
        def read() -> Quota:
            quota = self.connection.network.get_quota(self.token().project_id, details=True)
            entry = quota.floating_ips if hasattr(quota, "floating_ips") else quota["floatingip"]
            return Quota(int(entry["limit"]), int(entry["used"]))
        return self._ask("fip-quota", "the floating IP quota", read)

    def ip_availability(self, network_id: str) -> tuple[int, int] | None:
        """(total, used) IPs of a network, or None where policy hides it (Neutron: admin only by default)."""
        def read() -> tuple[int, int] | None:
            try:
                found = self.connection.network.get_network_ip_availability(network_id)
            except self.exceptions.ForbiddenException:
                return None
            return int(found.total_ips), int(found.used_ips)
        return self._ask(("ip-availability", network_id), f"the IP availability of {network_id}", read)

    def flavors(self) -> set[str]:
        return self._ask("flavors", "the flavor list", lambda: {f.name for f in self.connection.compute.flavors()})

    def image_exists(self, name_or_id: str) -> bool:
        return self._ask(("image", name_or_id), f"the image {name_or_id}", lambda: self.connection.image.find_image(
            name_or_id, ignore_missing=True) is not None)

    def security_groups(self) -> set[str]:
        return self._ask("security-groups", "the security group list",
                         lambda: {g.name for g in self.connection.network.security_groups()})


def connect(loaded: LoadedProfile) -> OpenstackCloud:
    """Authenticate (one token request), or raise a ``CloudProbeError`` with Keystone's reason."""
    spec = loaded.profile.cloud.openstack
    assert spec is not None
    openstack = require("openstack", "openstack")
    keystone_errors = require("keystoneauth1.exceptions", "openstack")
    found = credentials(loaded)
    region = found.region
    region.config["api_timeout"] = loaded.profile.timeouts.http
    region.config["connect_retries"] = 0
    region.config["status_code_retries"] = 0
    try:
        connection = openstack.connection.Connection(config=region)
        token = connection.authorize()
    except keystone_errors.Unauthorized as exc:
        raise AuthenticationFailed(f"Keystone refused the credentials from {', '.join(found.sources)} at "
                                   f"{region.config['auth'].get('auth_url')}: {_reason(exc)}") from None
    except keystone_errors.MissingRequiredOptions as exc:
        raise CredentialsMissing(f"the OpenStack credentials are incomplete: {_reason(exc)}") from None
    except Exception as exc:  # openstacksdk wraps keystoneauth's errors; a 401 is still a refusal
        if _http_status(exc) == 401:
            raise AuthenticationFailed(f"Keystone at {region.config['auth'].get('auth_url')} refused the credentials "
                                       f"from {', '.join(found.sources)}: {_reason(exc)}") from None
        raise CloudProbeError(f"Keystone at {region.config['auth'].get('auth_url')} did not issue a token: "
                              f"{_reason(exc)}") from None
    redact.register(str(token))
    return OpenstackCloud(connection, spec, found.sources)
