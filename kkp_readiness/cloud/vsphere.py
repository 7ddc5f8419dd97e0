"""vSphere probes: the vCenter session (VSPHERE-001), privileges (002), inventory (003), networks (004) and
the machine deployment's objects (012), asked through pyvmomi's vim25 SOAP client.

Settings: the profile's ``cloud.vsphere`` fields, else govc's variables (``GOVC_URL``, ``GOVC_USERNAME``,
``GOVC_PASSWORD``, ``GOVC_TLS_CA_CERTS``, ``GOVC_TLS_KNOWN_HOSTS``). The certificate is always verified:
against the CA bundle, against a pinned SHA-1/SHA-256/SHA-512 thumbprint, or (neither given) against the
system store; ``GOVC_INSECURE`` is refused. The certificate is looked at first, with an own TLS handshake,
so a certificate that does not verify is a finding of VSPHERE-001 (``CertificateFacts``) and no
password is ever sent to such an endpoint; the other checks then end as ``error``.

Inventory paths: a name that does not start with ``/`` is taken relative to where vCenter keeps that kind
of object in the datacenter (``/<dc>/host/<cluster>``, ``/<dc>/datastore/<name>``,
``/<dc>/network/<name>``, ``/<dc>/vm/<folder or template>``, ``<cluster path>/Resources/<pool>``),
as govc and machine-controller resolve them; absolute paths are used as given.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from kkp_readiness import redact
from kkp_readiness.cloud.errors import AuthenticationFailed, CloudProbeError, CredentialsMissing
from kkp_readiness.cloud.extras import require
from kkp_readiness.errors import TlsProbeError
from kkp_readiness.probes import tls

DEFAULT_PORT = 443
DEFAULT_PATH = "/sdk"
TRUTHY = {"1", "true", "yes", "on", "y", "t"}
#: Inventory types accepted for each profile object.
TYPES = {
    "datacenter": ("Datacenter",),
    "cluster": ("ClusterComputeResource",),
    "datastore": ("Datastore", "StoragePod"),
    "datastore_cluster": ("StoragePod",),
    "resource_pool": ("ResourcePool",),
    "folder": ("Folder",),
    "network": ("Network", "DistributedVirtualPortgroup", "OpaqueNetwork"),
    "template": ("VirtualMachine",),
}
#: machine-controller's vSphere cloudProviderSpec fields a MachineDeployment needs (VSPHERE-012); one of each tuple.
MACHINE_FIELDS: tuple[tuple[str, ...], ...] = (
    ("templateVMName",), ("datacenter",), ("cluster",), ("folder",), ("datastore", "datastoreCluster"),
    ("networks", "vmNetName"), ("cpus",), ("memoryMB",), ("diskSizeGB",),
)
NUMERIC_FIELDS = ("cpus", "memoryMB", "diskSizeGB")


# --- settings ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Where and how to log in (the password is registered with ``redact`` when read)."""

    host: str
    port: int
    path: str
    username: str
    password: str = field(repr=False)
    ca_bundle: str | None = None
    thumbprint: str | None = None

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}{self.path}"


def normalize_thumbprint(value: str) -> str:
    """Hex without colons, lower case; SHA-1, SHA-256 or SHA-512 length.

    >>> normalize_thumbprint("AB:CD" + ":00" * 18)
    'abcd000000000000000000000000000000000000'
    """
    hexed = value.strip().replace(":", "").lower()
    if len(hexed) not in (40, 64, 128) or any(c not in "0123456789abcdef" for c in hexed):
        raise CloudProbeError(f"the vCenter thumbprint {value!r} is not a SHA-1, SHA-256 or SHA-512 hex digest")
    return hexed


def parse_endpoint(url: str) -> tuple[str, int, str, str | None, str | None]:
    """(host, port, path, user, password) of a vCenter URL or bare host, as govc reads ``GOVC_URL``."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if parts.scheme != "https":
        raise CloudProbeError(f"the vCenter endpoint {url!r} is not HTTPS; vCenter's API is only checked over HTTPS")
    if not parts.hostname:
        raise CloudProbeError(f"the vCenter endpoint {url!r} names no host")
    path = parts.path.rstrip("/") or DEFAULT_PATH
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, parts.port or DEFAULT_PORT, path, user, password


def known_hosts_thumbprint(path: str, host: str, port: int) -> str | None:
    """The thumbprint govc's known_hosts file (``GOVC_TLS_KNOWN_HOSTS``: "host[:port] thumbprint" lines) pins."""
    names = {host, f"{host}:{port}"}
    for line in Path(path).expanduser().read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("#") and fields[0] in names:
            return fields[1]
    return None


def govc_insecure(environ: Mapping[str, str]) -> bool:
    return environ.get("GOVC_INSECURE", "").strip().lower() in TRUTHY


def settings_from(spec: Any, environ: Mapping[str, str], password: str | None = None,
                  ca_bundle: str | None = None) -> Settings:
    """The settings from the profile's ``VsphereSpec`` (password and CA path resolved by the caller), else GOVC_*."""
    if govc_insecure(environ):
        raise CloudProbeError("GOVC_INSECURE is set, but the readiness checks never skip certificate verification: "
                              "unset it and give the vCenter CA bundle (cloud.vsphere.ca_bundle or GOVC_TLS_CA_CERTS) "
                              "or its thumbprint (cloud.vsphere.thumbprint or GOVC_TLS_KNOWN_HOSTS)")
    url = spec.endpoint or environ.get("GOVC_URL")
    if not url:
        raise CredentialsMissing("no vCenter endpoint: set cloud.vsphere.endpoint in the profile or GOVC_URL")
    host, port, path, url_user, url_password = parse_endpoint(url)
    if url_password:
        redact.register(url_password)
    username = spec.username or environ.get("GOVC_USERNAME") or url_user
    password = password or environ.get("GOVC_PASSWORD") or url_password
    if not username or not password:
        raise CredentialsMissing("no vCenter credentials: set cloud.vsphere.username and password in the profile, "
                                 "or GOVC_USERNAME and GOVC_PASSWORD")
    redact.register(password)
    ca_bundle = ca_bundle or environ.get("GOVC_TLS_CA_CERTS") or None
    thumbprint = spec.thumbprint
    if not thumbprint and environ.get("GOVC_TLS_KNOWN_HOSTS"):
        thumbprint = known_hosts_thumbprint(environ["GOVC_TLS_KNOWN_HOSTS"], host, port)
    return Settings(host, port, path, username, password, ca_bundle,
                    normalize_thumbprint(thumbprint) if thumbprint else None)


# --- the privileges KKP documents ---------------------------------------------------------------------------


@cache
def _privilege_document() -> dict[str, Any]:
    text = resources.files("kkp_readiness").joinpath("data/vsphere_privileges.yaml").read_text()
    return yaml.safe_load(text)


def privileges_source() -> str:
    return _privilege_document()["source"]


def load_privileges() -> dict[str, frozenset[str]]:
    """Object kind (vcenter, datacenter, cluster, resource_pool, datastore, network, folder) -> privilege ids."""
    return {kind: frozenset(entry["privileges"]) for kind, entry in _privilege_document()["objects"].items()}


def missing_privileges(required: Mapping[str, frozenset[str]], granted: Mapping[str, Mapping[str, bool]]) -> \
        dict[str, list[str]]:
    """Per object: the required privileges not granted (unknown ones count as missing).

    >>> missing_privileges({"ds": frozenset({"Datastore.Browse", "Datastore.AllocateSpace"})},
    ...                    {"ds": {"Datastore.Browse": True, "Datastore.AllocateSpace": False}})
    {'ds': ['Datastore.AllocateSpace']}
    """
    out = {}
    for label, privileges in required.items():
        held = granted.get(label, {})
        missing = sorted(p for p in privileges if not held.get(p, False))
        if missing:
            out[label] = missing
    return out


# --- paths ------------------------------------------------------------------------------------------------------


def _under(base: str, value: str) -> str:
    return value.rstrip("/") if value.startswith("/") else f"{base}/{value.strip('/')}"


def datacenter_path(datacenter: str) -> str:
    return _under("", datacenter)


def object_path(kind: str, value: str, datacenter: str, cluster: str | None = None) -> str:
    """The inventory path of a profile value (see the module docstring).

    >>> object_path("resource_pool", "kkp", "dc-1", "cluster-1")
    '/dc-1/host/cluster-1/Resources/kkp'
    >>> object_path("folder", "/dc-1/vm/kubermatic", "dc-1")
    '/dc-1/vm/kubermatic'
    """
    dc = datacenter_path(datacenter)
    if kind == "datacenter":
        return dc
    if kind == "cluster":
        return _under(f"{dc}/host", value)
    if kind in ("datastore", "datastore_cluster"):
        return _under(f"{dc}/datastore", value)
    if kind == "network":
        return _under(f"{dc}/network", value)
    if kind in ("folder", "template"):
        return _under(f"{dc}/vm", value)
    if kind == "resource_pool":
        return _under(f"{object_path('cluster', cluster or '', datacenter)}/Resources", value)
    raise ValueError(kind)


def machine_value(spec: Mapping[str, Any], name: str) -> Any:
    """A cloudProviderSpec field; machine-controller's ``{value: ...}`` form is unwrapped."""
    value = spec.get(name)
    if isinstance(value, Mapping) and "value" in value:
        value = value["value"]
    return value


def machine_spec_problems(spec: Mapping[str, Any]) -> list[str]:
    """Missing or invalid cloudProviderSpec fields (names as machine-controller reads them).

    >>> machine_spec_problems({"templateVMName": "t", "datacenter": "dc", "cluster": "c", "folder": "/dc/vm/f",
    ...     "datastoreCluster": "p", "vmNetName": "n", "cpus": 2, "memoryMB": 4096, "diskSizeGB": 0})
    ['diskSizeGB must be a positive integer (is 0)']
    """
    problems = []
    for names in MACHINE_FIELDS:
        if not any(machine_value(spec, n) not in (None, "", []) for n in names):
            problems.append(f"{' or '.join(names)} missing")
    for name in NUMERIC_FIELDS:
        value = machine_value(spec, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            problems.append(f"{name} must be a positive integer (is {value!r})")
    return problems


def machine_networks(spec: Mapping[str, Any]) -> list[str]:
    names = [machine_value({"n": n}, "n") for n in (machine_value(spec, "networks") or [])]
    if machine_value(spec, "vmNetName"):
        names.append(machine_value(spec, "vmNetName"))
    return [str(n) for n in names if n]


# --- facts --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateFacts:
    """What the vCenter endpoint's TLS handshake showed, and whether it is trusted."""

    endpoint: str
    trusted_by: str  # "ca_bundle", "thumbprint", "ca_bundle+thumbprint" or "system store"
    verified: bool
    sha256: str
    sha1: str
    subject: str
    problem: str | None = None
    pinned: str | None = None


@dataclass(frozen=True)
class InventoryObject:
    """A profile object looked up by inventory path."""

    kind: str
    path: str
    found_type: str | None = None
    moid: str | None = None

    @property
    def exists(self) -> bool:
        return self.found_type is not None and self.found_type in TYPES[self.kind]

    @property
    def problem(self) -> str | None:
        if self.found_type is None:
            return f"{self.kind} {self.path} not found"
        if not self.exists:
            return f"{self.path} is a {self.found_type}, not a {' or '.join(TYPES[self.kind])}"
        return None


@dataclass(frozen=True)
class NetworkFacts:
    """The profile's networks and the networks the compute cluster's hosts are attached to."""

    cluster: InventoryObject
    networks: list[InventoryObject]
    attached: list[str]  # names of the networks on the cluster
    attached_ids: list[str]

    def problems(self) -> list[str]:
        out = []
        for network in self.networks:
            if network.problem:
                out.append(network.problem)
            elif network.moid not in self.attached_ids:
                out.append(f"network {network.path} exists but is not available on cluster {self.cluster.path}")
        return out


@dataclass(frozen=True)
class PrivilegeFacts:
    """The privileges the user holds on each profile object (the privilege-check API's answer)."""

    user: str
    checked: dict[str, dict[str, bool]]  # "<kind> <path>" -> privilege -> granted
    required: dict[str, list[str]]
    missing: dict[str, list[str]]
    not_found: list[str]


@dataclass(frozen=True)
class MachineDeploymentFacts:
    """The machine deployment's cloudProviderSpec: missing fields and the objects it refers to."""

    spec: dict[str, Any]
    field_problems: list[str]
    objects: list[InventoryObject]

    def problems(self) -> list[str]:
        return self.field_problems + [o.problem for o in self.objects if o.problem]


# --- TLS ------------------------------------------------------------------------------------------------------


class CertificatePinMismatch(ssl.SSLError):
    """The peer's certificate does not have the pinned thumbprint."""


def thumbprints(der: bytes) -> dict[int, str]:
    return {len(h): h for h in (hashlib.sha1(der).hexdigest(), hashlib.sha256(der).hexdigest(),
                                hashlib.sha512(der).hexdigest())}


class PinnedContext(ssl.SSLContext):
    """An SSL context that also checks the peer certificate's thumbprint after every handshake.

    Why not pyvmomi's ``thumbprint=``: it checks the pin only after the normal verification failed and
    then switches the shared context to CERT_NONE, so later pooled connections would go unchecked.
    """

    pin: str | None = None

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:  # type: ignore[override]
        sock = super().wrap_socket(*args, **kwargs)
        if self.pin:
            der = sock.getpeercert(binary_form=True) or b""
            if thumbprints(der).get(len(self.pin)) != self.pin:
                sock.close()
                raise CertificatePinMismatch(f"the certificate's thumbprint is not the pinned {self.pin}")
        return sock


def ssl_context(settings: Settings) -> PinnedContext:
    context = PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.ca_bundle:
        context.load_verify_locations(cafile=settings.ca_bundle)
    elif settings.thumbprint:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_default_certs()
    context.pin = settings.thumbprint
    return context


def trusted_by(settings: Settings) -> str:
    if settings.ca_bundle and settings.thumbprint:
        return "ca_bundle+thumbprint"
    return "ca_bundle" if settings.ca_bundle else "thumbprint" if settings.thumbprint else "system store"


def probe_certificate(settings: Settings, timeout: float) -> CertificateFacts:
    """Handshake with the endpoint: the certificate's thumbprints and whether the profile's trust accepts it.

    The presented certificate comes from ``probes.tls`` (an inspection handshake, nothing sent), the
    verdict from a pin comparison or from an ordinary verifying handshake (``tls.client_accepts``).
    """
    try:
        observed = tls.fetch_presented_chain(settings.host, settings.port, settings.host, timeout)
    except TlsProbeError as exc:
        raise CloudProbeError(f"vCenter {settings.endpoint} did not answer a TLS handshake: {exc}") from None
    der = observed.chain_der[0] if observed.chain_der else b""
    prints = thumbprints(der)
    subject = observed.leaf.subject if observed.chain else "(no certificate)"
    problem = None
    if settings.thumbprint and prints.get(len(settings.thumbprint)) != settings.thumbprint:
        problem = (f"thumbprint {prints.get(len(settings.thumbprint))} (SHA-{_bits(settings.thumbprint)}), "
                   f"not the pinned {settings.thumbprint}")
    elif settings.ca_bundle or not settings.thumbprint:
        try:
            accepted, reason = tls.client_accepts(settings.host, settings.port, settings.host, settings.ca_bundle,
                                                  timeout)
        except TlsProbeError as exc:
            raise CloudProbeError(f"vCenter {settings.endpoint} did not complete a TLS handshake: {exc}") from None
        if not accepted:
            source = f"the CA bundle {settings.ca_bundle}" if settings.ca_bundle else "the system's CA store"
            problem = f"not verified against {source}: {reason}"
    return CertificateFacts(settings.endpoint, trusted_by(settings), problem is None, prints[64], prints[40],
                            subject, problem, settings.thumbprint)


def _bits(thumbprint: str) -> int:
    return {40: 1, 64: 256, 128: 512}[len(thumbprint)]


# --- the session ----------------------------------------------------------------------------------------------


class VsphereCloud:
    """The vCenter as the checks see it: the certificate, and (if trusted) a logged-in session."""

    def __init__(self, settings: Settings, certificate: CertificateFacts, spec: Any = None, si: Any = None,
                 session_user: str | None = None) -> None:
        self.settings = settings
        self.certificate = certificate
        self.spec = spec
        self.si = si
        self.session_user = session_user
        self._found: dict[str, InventoryObject] = {}

    # --- helpers ---

    def _content(self) -> Any:
        if self.si is None:
            raise CloudProbeError(f"no vCenter session: the certificate of {self.settings.endpoint} is not trusted "
                                  f"({self.certificate.problem}); see VSPHERE-001")
        return self.si.RetrieveContent()

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        vmodl = require("pyVmomi", "vsphere").vmodl
        try:
            return function(*args, **kwargs)
        except vmodl.MethodFault as exc:
            raise CloudProbeError(f"vCenter {self.settings.endpoint} refused {what}: {exc.msg or type(exc).__name__}"
                                  ) from None
        except (OSError, ssl.SSLError) as exc:
            raise CloudProbeError(f"vCenter {self.settings.endpoint} did not answer {what}: {exc}") from None

    def lookup(self, kind: str, path: str) -> InventoryObject:
        """The object at ``path`` (SearchIndex.FindByInventoryPath)."""
        key = f"{kind} {path}"
        if key not in self._found:
            content = self._content()
            found = self._call(f"FindByInventoryPath({path})", content.searchIndex.FindByInventoryPath, path)
            self._found[key] = InventoryObject(kind, path, type(found).__name__.rsplit(".", 1)[-1] if found else None,
                                               found._moId if found else None)
        return self._found[key]

    def find_vm_by_name(self, datacenter: str, name: str) -> InventoryObject:
        """A VM or template named ``name`` anywhere below the datacenter's VM folder (as govc's finder
        resolves a bare name): a recursive ContainerView of VirtualMachines and their names."""
        path = object_path("template", name, datacenter)
        direct = self.lookup("template", path)
        if direct.found_type is not None:
            return direct
        vm_folder = self.lookup("folder", f"{datacenter_path(datacenter)}/vm")
        if not vm_folder.exists:
            return direct
        pyvmomi = require("pyVmomi", "vsphere")
        vim, query = pyvmomi.vim, pyvmomi.vmodl.query.PropertyCollector
        content = self._content()
        view = self._call("CreateContainerView", content.viewManager.CreateContainerView,
                          self._entity(vm_folder), [vim.VirtualMachine], True)
        try:
            spec = query.FilterSpec(
                objectSet=[query.ObjectSpec(obj=view, skip=True, selectSet=[
                    query.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)])],
                propSet=[query.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])])
            result = self._call("RetrievePropertiesEx(name)", content.propertyCollector.RetrievePropertiesEx,
                                [spec], query.RetrieveOptions())
        finally:
            self._call("DestroyView", view.DestroyView)
        for found in (result.objects if result else []):
            if any(p.name == "name" and p.val == name for p in found.propSet):
                return InventoryObject("template", f"{vm_folder.path}/.../{name}", "VirtualMachine", found.obj._moId)
        return direct

    def _entity(self, obj: InventoryObject) -> Any:
        vim = require("pyVmomi", "vsphere").vim
        return getattr(vim, obj.found_type)(obj.moid, self.si._stub)

    def _paths(self) -> dict[str, str]:
        spec = self.spec
        out = {"datacenter": object_path("datacenter", spec.datacenter, spec.datacenter),
               "cluster": object_path("cluster", spec.cluster, spec.datacenter),
               "datastore": object_path("datastore", spec.datastore, spec.datacenter)}
        if spec.resource_pool:
            out["resource_pool"] = object_path("resource_pool", spec.resource_pool, spec.datacenter, spec.cluster)
        if spec.folder:
            out["folder"] = object_path("folder", spec.folder, spec.datacenter)
        return out

    # --- facts ---

    def inventory(self) -> list[InventoryObject]:
        """VSPHERE-003: the datacenter, cluster, datastore (or datastore cluster), resource pool and folder."""
        return [self.lookup(kind, path) for kind, path in self._paths().items()]

    def networks(self) -> NetworkFacts:
        """VSPHERE-004: the profile's networks, and those the cluster (its hosts) is attached to."""
        vmodl = require("pyVmomi", "vsphere").vmodl
        vim = require("pyVmomi", "vsphere").vim
        spec = self.spec
        cluster = self.lookup("cluster", object_path("cluster", spec.cluster, spec.datacenter))
        networks = [self.lookup("network", object_path("network", n.name, spec.datacenter)) for n in spec.networks]
        attached_ids: list[str] = []
        names: list[str] = []
        if cluster.exists:
            pc = self._content().propertyCollector
            query = vmodl.query.PropertyCollector
            filter_spec = query.FilterSpec(objectSet=[query.ObjectSpec(obj=self._entity(cluster))],
                                           propSet=[query.PropertySpec(type=vim.ClusterComputeResource,
                                                                       pathSet=["network"])])
            result = self._call("RetrievePropertiesEx(network)", pc.RetrievePropertiesEx, [filter_spec],
                                query.RetrieveOptions())
            refs = [v for o in (result.objects if result else []) for p in o.propSet for v in p.val]
            attached_ids = [r._moId for r in refs]
            if refs:
                names_spec = query.FilterSpec(objectSet=[query.ObjectSpec(obj=r) for r in refs],
                                              propSet=[query.PropertySpec(type=vim.Network, pathSet=["name"])])
                named = self._call("RetrievePropertiesEx(name)", pc.RetrievePropertiesEx, [names_spec],
                                   query.RetrieveOptions())
                names = [p.val for o in (named.objects if named else []) for p in o.propSet]
        return NetworkFacts(cluster, networks, names, attached_ids)

    def privileges(self) -> PrivilegeFacts:
        """VSPHERE-002: AuthorizationManager.HasUserPrivilegeOnEntities for each object and its documented list."""
        content = self._content()
        documented = load_privileges()
        spec = self.spec
        objects = [InventoryObject("folder", "/", "Folder", content.rootFolder._moId)]
        objects += self.inventory()
        objects += [self.lookup("network", object_path("network", n.name, spec.datacenter)) for n in spec.networks]
        checked: dict[str, dict[str, bool]] = {}
        required: dict[str, list[str]] = {}
        not_found = []
        for obj in objects:
            kind = "vcenter" if obj.path == "/" else obj.kind
            label = f"{'vCenter' if kind == 'vcenter' else kind} {obj.path}"
            if not obj.exists:
                not_found.append(label)
                continue
            wanted = sorted(documented[kind])
            required[label] = wanted
            answer = self._call(f"HasUserPrivilegeOnEntities({label})",
                                content.authorizationManager.HasUserPrivilegeOnEntities,
                                entities=[self._entity(obj)], userName=self.session_user, privId=wanted)
            checked[label] = {a.privId: bool(a.isGranted) for e in answer for a in e.privAvailability}
        missing = missing_privileges({k: frozenset(v) for k, v in required.items()}, checked)
        return PrivilegeFacts(self.session_user or self.settings.username, checked, required, missing, not_found)

    def machine_deployment(self) -> MachineDeploymentFacts | None:
        """VSPHERE-012: the cloudProviderSpec's fields, and each object it names (template VM included)."""
        if self.spec.machine_deployment is None:
            return None
        md = dict(self.spec.machine_deployment.model_dump())
        problems = machine_spec_problems(md)
        dc = machine_value(md, "datacenter")
        objects = []
        if dc:
            refs = [("datacenter", dc), ("cluster", machine_value(md, "cluster")),
                    ("folder", machine_value(md, "folder")), ("datastore", machine_value(md, "datastore")),
                    ("datastore_cluster", machine_value(md, "datastoreCluster")),
                    ("resource_pool", machine_value(md, "resourcePool")),
                    ("template", machine_value(md, "templateVMName"))]
            refs += [("network", n) for n in machine_networks(md)]
            cluster = machine_value(md, "cluster")
            for kind, value in refs:
                if kind == "template" and value and "/" not in str(value):
                    objects.append(self.find_vm_by_name(str(dc), str(value)))
                elif value and (kind != "resource_pool" or cluster):
                    objects.append(self.lookup(kind, object_path(kind, str(value), str(dc), cluster)))
        return MachineDeploymentFacts(md, problems, objects)

    def close(self) -> None:
        if self.si is not None:
            with contextlib.suppress(Exception):
                self.si.RetrieveContent().sessionManager.Logout()
            self.si = None


def _login(settings: Settings, timeout: float) -> tuple[Any, str]:
    """A logged-in ServiceInstance and the session's user name (as vCenter writes it)."""
    pyvmomi = require("pyVmomi", "vsphere")
    connect = require("pyVim.connect", "vsphere")
    vim, vmodl = pyvmomi.vim, pyvmomi.vmodl
    try:
        stub = connect.SmartStubAdapter(host=settings.host, port=settings.port, path=settings.path,
                                        sslContext=ssl_context(settings), httpConnectionTimeout=timeout)
        si = vim.ServiceInstance("ServiceInstance", stub)
        content = si.RetrieveContent()
        session = content.sessionManager.Login(settings.username, settings.password, None)
    except vim.fault.InvalidLogin as exc:
        raise AuthenticationFailed(f"vCenter {settings.endpoint} refused the login of {settings.username}: "
                                   f"{exc.msg}") from None
    except vmodl.MethodFault as exc:
        raise CloudProbeError(f"vCenter {settings.endpoint} refused the session: {exc.msg or type(exc).__name__}"
                              ) from None
    except CertificatePinMismatch as exc:
        raise CloudProbeError(f"vCenter {settings.endpoint}: {exc}") from None
    except Exception as exc:  # pyVim raises a bare Exception for a server that is not a vCenter
        raise CloudProbeError(f"vCenter {settings.endpoint} could not be asked: {exc}") from None
    cookie = getattr(stub, "cookie", None)
    if cookie:
        redact.register(cookie)
        value = cookie.split(";", 1)[0].split("=", 1)[-1].strip('"')
        if value:
            redact.register(value)
    return si, session.userName


def connect(loaded: Any, environ: Mapping[str, str] | None = None) -> VsphereCloud:
    """The vCenter of the profile: its certificate, and a session if the certificate is trusted."""
    environ = os.environ if environ is None else environ
    spec = loaded.profile.cloud.vsphere
    if spec is None:
        raise CloudProbeError("the profile's cloud provider is vsphere but cloud.vsphere is not set")
    require("pyVmomi", "vsphere")
    password = spec.password.reveal() if spec.password is not None else None
    ca_bundle = loaded.resolve_path(("cloud", "vsphere", "ca_bundle"), spec.ca_bundle)
    settings = settings_from(spec, environ, password, ca_bundle)
    timeout = float(loaded.profile.timeouts.http)
    certificate = probe_certificate(settings, timeout)
    if not certificate.verified:
        return VsphereCloud(settings, certificate, spec)
    si, user = _login(settings, timeout)
    return VsphereCloud(settings, certificate, spec, si, user)
