"""The lab's vCenter: the vim25 SOAP API at ``POST /sdk``, as pyvmomi calls it for the VSPHERE checks.

What is answered, in the shapes vCenter serialises (SOAP 1.1 envelopes, ``xsi:type`` on every
``anyType`` value, ``type`` attributes on managed object references, faults as HTTP 500 with the
vim25 fault in ``detail``):

* ``GET /sdk/vimServiceVersions.xml``: the version document pyVim's ``SmartConnect`` negotiates with;
* ``RetrieveServiceContent`` (no session needed), ``Login`` (a wrong user or password: ``InvalidLogin``
  with vCenter's message; success sets the ``vmware_soap_session`` cookie), ``Logout``;
* with the cookie only (else ``NotAuthenticated``): ``SearchIndex.FindByInventoryPath``,
  ``ViewManager.CreateContainerView`` / ``DestroyView``, ``PropertyCollector.RetrievePropertiesEx`` /
  ``RetrieveProperties`` for objects named directly (``ObjectSpec.obj``, ``PropertySpec.pathSet``) and for a
  container view's members (the one traversal served: ``view``), ``AuthorizationManager``'s
  ``HasUserPrivilegeOnEntities`` and ``FetchUserPrivilegeOnEntities``.

The world is one datacenter with a compute cluster (two hosts, a resource pool), datastores, port
groups (which of them the cluster's hosts are attached to), VM folders and a template VM, plus the
privileges the user holds on each object. Faults remove objects or privileges before the server starts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import uuid
from dataclasses import asdict, dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from kkp_readiness.lab.cloudapi.server import Request, Response

ADDRESS = "127.0.3.4"
NAMES = ("vcenter.kkp.lab",)
API_VERSION = "8.0.3.0"
PRIOR_VERSIONS = ("8.0.2.0", "8.0.1.0", "8.0.0.0", "7.0.3.0", "7.0.2.0", "7.0.1.0", "7.0.0.0", "6.7.3", "6.7")
COOKIE = "vmware_soap_session"
SSO_DOMAIN = "VSPHERE.LOCAL"
XML = "text/xml; charset=utf-8"

#: The privileges the healthy lab user holds on every object (what the KKP roles give; see
#: kkp_readiness/data/vsphere_privileges.yaml). Faults take some away per object.
def _documented() -> dict[str, list[str]]:
    from kkp_readiness.cloud.vsphere import load_privileges

    return {kind: sorted(privs) for kind, privs in load_privileges().items()}


@dataclass
class World:
    """The vCenter inventory and the technical user of the lab."""

    user: str = "kkp-lab@vsphere.local"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    #: The password the profile is given (written to the password file); None: the user's own.
    given_password: str | None = None
    datacenter: str = "dc-1"
    cluster: str = "cluster-1"
    hosts: list[str] = field(default_factory=lambda: ["esx-1.kkp.lab", "esx-2.kkp.lab"])
    resource_pool: str = "kkp"
    datastores: list[str] = field(default_factory=lambda: ["ssd-datastore-1", "hdd-datastore-1"])
    datastore_cluster: str | None = "kkp-storage-pod"
    #: Port groups of the datacenter, and which of them the cluster's hosts are attached to.
    networks: list[str] = field(default_factory=lambda: ["kkp-management", "kkp-tenant-a", "vm-network"])
    cluster_networks: list[str] = field(default_factory=lambda: ["kkp-management", "kkp-tenant-a", "vm-network"])
    #: VM folders below the datacenter's ``vm`` folder.
    folders: list[str] = field(default_factory=lambda: ["kubermatic", "kkp-machines", "templates"])
    #: Template VMs, by path below the ``vm`` folder.
    templates: list[str] = field(default_factory=lambda: ["templates/ubuntu-22.04-template"])
    #: Privileges held per object kind (vcenter, datacenter, cluster, resource_pool, datastore, network, folder).
    privileges: dict[str, list[str]] = field(default_factory=_documented)
    #: Privileges taken away on single objects: inventory path -> privilege ids.
    denied: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["inventory"] = _inventory(self)
        return data


def _inventory(world: World) -> list[dict[str, Any]]:
    """Every managed object: moid, type, name, inventory path, object kind (for the privileges), properties."""
    dc = f"/{world.datacenter}"
    objects: list[dict[str, Any]] = [
        {"moid": "group-d1", "type": "Folder", "path": "/", "name": "Datacenters", "kind": "vcenter"},
        {"moid": "datacenter-3", "type": "Datacenter", "path": dc, "name": world.datacenter, "kind": "datacenter"},
        {"moid": "group-v4", "type": "Folder", "path": f"{dc}/vm", "name": "vm", "kind": "folder"},
        {"moid": "group-h5", "type": "Folder", "path": f"{dc}/host", "name": "host", "kind": None},
        {"moid": "group-s6", "type": "Folder", "path": f"{dc}/datastore", "name": "datastore", "kind": None},
        {"moid": "group-n7", "type": "Folder", "path": f"{dc}/network", "name": "network", "kind": None},
    ]
    cluster = f"{dc}/host/{world.cluster}"
    network_ids = {name: f"network-{20 + i}" for i, name in enumerate(world.networks)}
    host_ids = [f"host-{10 + i}" for i in range(len(world.hosts))]
    attached = [network_ids[n] for n in world.cluster_networks if n in network_ids]
    objects.append({"moid": "domain-c8", "type": "ClusterComputeResource", "path": cluster, "name": world.cluster,
                    "kind": "cluster", "props": {"network": ("Network", attached), "host": ("HostSystem", host_ids)}})
    objects.append({"moid": "resgroup-9", "type": "ResourcePool", "path": f"{cluster}/Resources",
                    "name": "Resources", "kind": "resource_pool"})
    for moid, host in zip(host_ids, world.hosts, strict=True):
        objects.append({"moid": moid, "type": "HostSystem", "path": f"{cluster}/{host}", "name": host,
                        "kind": None, "props": {"network": ("Network", attached)}})
    if world.resource_pool:
        objects.append({"moid": "resgroup-30", "type": "ResourcePool", "path": f"{cluster}/Resources/"
                        f"{world.resource_pool}", "name": world.resource_pool, "kind": "resource_pool"})
    for i, name in enumerate(world.datastores):
        objects.append({"moid": f"datastore-{40 + i}", "type": "Datastore", "path": f"{dc}/datastore/{name}",
                        "name": name, "kind": "datastore"})
    if world.datastore_cluster:
        objects.append({"moid": "group-p50", "type": "StoragePod", "path": f"{dc}/datastore/"
                        f"{world.datastore_cluster}", "name": world.datastore_cluster, "kind": "datastore"})
    for name, moid in network_ids.items():
        objects.append({"moid": moid, "type": "Network", "path": f"{dc}/network/{name}", "name": name,
                        "kind": "network"})
    for i, name in enumerate(world.folders):
        objects.append({"moid": f"group-v{60 + i}", "type": "Folder", "path": f"{dc}/vm/{name}", "name": name,
                        "kind": "folder"})
    for i, path in enumerate(world.templates):
        objects.append({"moid": f"vm-{70 + i}", "type": "VirtualMachine", "path": f"{dc}/vm/{path}",
                        "name": path.rsplit("/", 1)[-1], "kind": "folder",
                        "props": {"config.template": ("boolean", True)}})
    for obj in objects:
        obj.setdefault("props", {})
        obj["props"]["name"] = ("string", obj["name"])
        obj["props"] = {k: list(v) for k, v in obj["props"].items()}
    return objects


def lab_state(world: World, base_url: str, directory: Path, leaf: Any) -> dict[str, Any]:
    """What ``profiles/lab-vsphere.yaml`` reads; the password goes to a file (mode 0600)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from kkp_readiness.lab.part import write_private

    der = leaf.certificate.public_bytes(Encoding.DER)
    dc = world.datacenter
    return {
        "endpoint": base_url,
        "username": world.user,
        "password_file": str(write_private(directory / "vsphere-password", world.given_password or world.password)),
        "thumbprint": hashlib.sha256(der).hexdigest(),
        "datacenter": dc,
        "cluster": world.cluster,
        "datastore": world.datastores[0],
        "datastore_cluster": world.datastore_cluster,
        "resource_pool": world.resource_pool,
        "folder": f"/{dc}/vm/kubermatic",
        "machine_folder": f"/{dc}/vm/kkp-machines",
        "networks": list(world.networks[:2]),
        "template": "ubuntu-22.04-template",
        "template_path": f"/{dc}/vm/templates/ubuntu-22.04-template",
    }


# --- SOAP ----------------------------------------------------------------------------------------------

ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n<soapenv:Body>\n{body}\n</soapenv:Body>\n'
            '</soapenv:Envelope>')

VERSIONS = ('<?xml version="1.0" encoding="UTF-8" ?>\n<namespaces version="1.0">\n <namespace>\n'
            '  <name>urn:vim25</name>\n  <version>{version}</version>\n  <priorVersions>\n{prior}'
            '  </priorVersions>\n </namespace>\n</namespaces>\n')


def _moref(tag: str, kind: str, moid: str, xsi: bool = False) -> str:
    typed = ' xsi:type="ManagedObjectReference"' if xsi else ""
    return f'<{tag} type="{kind}"{typed}>{escape(moid)}</{tag}>'


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element if _local(child.tag) == name]


def _text(element: ElementTree.Element, name: str) -> str | None:
    found = _children(element, name)
    return found[0].text if found else None


class SoapFault(Exception):
    """A vim25 fault: the faultstring and the detail element."""

    def __init__(self, fault: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.fault, self.message, self.detail = fault, message, detail

    def response(self) -> Response:
        body = (f'<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{escape(self.message)}'
                f'</faultstring><detail><{self.fault}Fault xmlns="urn:vim25" xsi:type="{self.fault}">{self.detail}'
                f'</{self.fault}Fault></detail></soapenv:Fault>')
        return Response(500, ENVELOPE.format(body=body), content_type=XML)


class Api:
    """The vim25 endpoint of the lab's vCenter."""

    def __init__(self, world: dict[str, Any], base_url: str) -> None:
        self.world = world
        self.base_url = base_url
        self.objects = {o["moid"]: o for o in world["inventory"]}
        self.by_path = {o["path"]: o for o in world["inventory"]}
        self.sessions: dict[str, str] = {}
        self.views: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        self.instance_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, NAMES[0]))

    def handle(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/sdk/vimServiceVersions.xml":
            prior = "".join(f"   <version>{v}</version>\n" for v in PRIOR_VERSIONS)
            return Response(200, VERSIONS.format(version=API_VERSION, prior=prior), content_type=XML)
        if request.path != "/sdk":
            return Response(404, "Not Found", content_type="text/plain")
        if request.method != "POST":
            return Response(405, "Method Not Allowed", content_type="text/plain")
        try:
            envelope = ElementTree.fromstring(request.body)
            body = next(e for e in envelope if _local(e.tag) == "Body")
            call = next(iter(body))
        except (ElementTree.ParseError, StopIteration):
            return SoapFault("InvalidRequest", "Unable to parse the request body.").response()
        method = _local(call.tag)
        headers: dict[str, str] = {}
        try:
            if method == "RetrieveServiceContent":
                result = self._service_content()
            elif method == "Login":
                result, cookie = self._login(call)
                headers["Set-Cookie"] = f'{COOKIE}="{cookie}"; Path=/; HttpOnly; Secure;'
            else:
                session = self._session(request)
                result = self._dispatch(method, call, session)
        except SoapFault as fault:
            return fault.response()
        body_xml = f'<{method}Response xmlns="urn:vim25">{result}</{method}Response>'
        return Response(200, ENVELOPE.format(body=body_xml), headers=headers, content_type=XML)

    # --- sessions ---

    def _session(self, request: Request) -> str:
        cookie = SimpleCookie()
        try:
            cookie.load(request.headers.get("Cookie") or "")
        except Exception:  # a malformed cookie is no session
            cookie = SimpleCookie()
        morsel = cookie.get(COOKIE)
        with self.lock:
            user = self.sessions.get(morsel.value) if morsel else None
        if user is None:
            raise SoapFault("NotAuthenticated", "The session is not authenticated.",
                            _moref("object", "Folder", "group-d1") + "<privilegeId>System.View</privilegeId>")
        return user

    def _login(self, call: ElementTree.Element) -> tuple[str, str]:
        user, password = _text(call, "userName") or "", _text(call, "password") or ""
        if user.lower() != self.world["user"].lower() or not secrets.compare_digest(password, self.world["password"]):
            raise SoapFault("InvalidLogin", "Cannot complete login due to an incorrect user name or password.")
        key = str(uuid.uuid4())
        cookie = secrets.token_hex(20)
        session_user = f"{SSO_DOMAIN}\\{self.world['user'].split('@')[0]}"
        with self.lock:
            self.sessions[cookie] = session_user
        now = _now()
        return (f'<returnval><key>{key}</key><userName>{escape(session_user)}</userName>'
                f'<fullName>{escape(self.world["user"])}</fullName><loginTime>{now}</loginTime>'
                f'<lastActiveTime>{now}</lastActiveTime><locale>en</locale><messageLocale>en</messageLocale>'
                f'<extensionSession>false</extensionSession><ipAddress>127.0.0.1</ipAddress>'
                f'<userAgent>pyvmomi</userAgent><callCount>0</callCount></returnval>'), cookie

    def _service_content(self) -> str:
        refs = [("rootFolder", "Folder", "group-d1"), ("propertyCollector", "PropertyCollector", "propertyCollector"),
                ("viewManager", "ViewManager", "ViewManager")]
        about = (f'<about><name>VMware vCenter Server</name><fullName>VMware vCenter Server {API_VERSION[:5]} '
                 f'build-24022515 (kkp lab)</fullName><vendor>VMware, Inc.</vendor><version>{API_VERSION[:5]}'
                 f'</version><build>24022515</build><localeVersion>INTL</localeVersion><localeBuild>000</localeBuild>'
                 f'<osType>linux-x64</osType><productLineId>vpx</productLineId><apiType>VirtualCenter</apiType>'
                 f'<apiVersion>{API_VERSION}</apiVersion><instanceUuid>{self.instance_uuid}</instanceUuid>'
                 f'<licenseProductName>VMware VirtualCenter Server</licenseProductName>'
                 f'<licenseProductVersion>8.0</licenseProductVersion></about>')
        more = [("setting", "OptionManager", "VpxSettings"), ("userDirectory", "UserDirectory", "UserDirectory"),
                ("sessionManager", "SessionManager", "SessionManager"),
                ("authorizationManager", "AuthorizationManager", "AuthorizationManager"),
                ("searchIndex", "SearchIndex", "SearchIndex")]
        return ("<returnval>" + "".join(_moref(t, k, m) for t, k, m in refs) + about
                + "".join(_moref(t, k, m) for t, k, m in more) + "</returnval>")

    # --- calls needing a session ---

    def _dispatch(self, method: str, call: ElementTree.Element, user: str) -> str:
        if method == "Logout":
            return ""
        if method == "FindByInventoryPath":
            found = self.by_path.get((_text(call, "inventoryPath") or "").rstrip("/") or "/")
            return _moref("returnval", found["type"], found["moid"]) if found else ""
        if method == "CreateContainerView":
            return self._create_view(call)
        if method == "DestroyView":
            with self.lock:
                self.views.pop(_children(call, "_this")[0].text or "", None)
            return ""
        if method in ("RetrievePropertiesEx", "RetrieveProperties"):
            return self._properties(call, method == "RetrievePropertiesEx")
        if method == "HasUserPrivilegeOnEntities":
            return self._has_privileges(call)
        if method == "FetchUserPrivilegeOnEntities":
            return self._fetch_privileges(call)
        raise SoapFault("NotSupported", f"The lab vCenter does not implement {method}.")

    def _create_view(self, call: ElementTree.Element) -> str:
        container = self._entity(_children(call, "container")[0])
        types = {t.text for t in _children(call, "type")}
        recursive = (_text(call, "recursive") or "false") == "true"
        base = container["path"].rstrip("/") + "/"
        members = [o["moid"] for o in self.world["inventory"] if o["path"].startswith(base)
                   and (recursive or "/" not in o["path"][len(base):]) and (not types or o["type"] in types)]
        moid = f"session[{uuid.uuid4()}]{uuid.uuid4().hex[:8]}"
        with self.lock:
            self.views[moid] = members
        return _moref("returnval", "ContainerView", moid)

    def _entity(self, element: ElementTree.Element) -> dict[str, Any]:
        if element.get("type") == "ContainerView" and element.text in self.views:
            return {"moid": element.text, "type": "ContainerView", "props": {}, "view": self.views[element.text]}
        obj = self.objects.get(element.text or "")
        if obj is None or obj["type"] != element.get("type"):
            raise SoapFault("ManagedObjectNotFound", f"The object '{element.get('type')}:{element.text}' has already "
                            "been deleted or has not been completely created",
                            _moref("obj", element.get("type") or "ManagedEntity", element.text or ""))
        return obj

    def _granted(self, obj: dict[str, Any]) -> set[str]:
        held = set(self.world["privileges"].get(obj["kind"] or "", []))
        held |= {"System.Anonymous", "System.Read", "System.View"}
        return held - set(self.world["denied"].get(obj["path"], []))

    def _properties(self, call: ElementTree.Element, extended: bool) -> str:
        objects = []
        for spec in _children(call, "specSet"):
            wanted = {(_text(p, "type") or ""): [x.text or "" for x in _children(p, "pathSet")]
                      for p in _children(spec, "propSet")}
            for object_spec in _children(spec, "objectSet"):
                obj = self._entity(_children(object_spec, "obj")[0])
                # The one traversal served: a ContainerView's "view" (ObjectSpec skip=true, TraversalSpec path=view).
                selected = [self.objects[m] for m in obj.get("view", [])] \
                    if any(_text(s, "path") == "view" for s in _children(object_spec, "selectSet")) else []
                skip = (_text(object_spec, "skip") or "false") == "true"
                for each in ([] if skip else [obj]) + selected:
                    paths = wanted.get(each["type"], [])
                    props = "".join(self._property(each, path) for path in paths if path in each["props"])
                    objects.append(_moref("obj", each["type"], each["moid"]) + props)
        if extended:
            return "<returnval>" + "".join(f"<objects>{o}</objects>" for o in objects) + "</returnval>" if objects \
                else ""
        return "".join(f"<returnval>{o}</returnval>" for o in objects)

    @staticmethod
    def _property(obj: dict[str, Any], path: str) -> str:
        kind, value = obj["props"][path]
        if isinstance(value, list):
            items = "".join(_moref("ManagedObjectReference", kind, v, xsi=True) for v in value)
            val = f'<val xsi:type="ArrayOfManagedObjectReference">{items}</val>'
        elif kind == "boolean":
            val = f'<val xsi:type="xsd:boolean">{"true" if value else "false"}</val>'
        else:
            val = f'<val xsi:type="xsd:{kind}">{escape(str(value))}</val>'
        return f"<propSet><name>{escape(path)}</name>{val}</propSet>"

    def _has_privileges(self, call: ElementTree.Element) -> str:
        privileges = [p.text or "" for p in _children(call, "privId")]
        out = []
        for element in _children(call, "entities"):
            obj = self._entity(element)
            granted = self._granted(obj)
            availability = "".join(f"<privAvailability><privId>{escape(p)}</privId><isGranted>"
                                   f"{'true' if p in granted else 'false'}</isGranted></privAvailability>"
                                   for p in privileges)
            out.append(f"<returnval>{_moref('entity', obj['type'], obj['moid'])}{availability}</returnval>")
        return "".join(out)

    def _fetch_privileges(self, call: ElementTree.Element) -> str:
        out = []
        for element in _children(call, "entities"):
            obj = self._entity(element)
            privileges = "".join(f"<privileges>{escape(p)}</privileges>" for p in sorted(self._granted(obj)))
            out.append(f"<returnval>{_moref('entity', obj['type'], obj['moid'])}{privileges}</returnval>")
        return "".join(out)


# --- faults ------------------------------------------------------------------------------------------------


def faults() -> list[Any]:
    """The vSphere faults; each is judged under ``profiles/lab-vsphere.yaml``."""
    from kkp_readiness.lab.faults import Fault

    shown = {"extends": "lab-vsphere"}

    def edit(change: Any) -> Any:
        return lambda plan: change(plan.world("vsphere"))

    def bad_password(world: World) -> None:
        world.given_password = secrets.token_urlsafe(18)  # the profile's password file gets another one

    def missing_privilege(world: World) -> None:
        world.denied[f"/{world.datacenter}/datastore/{world.datastores[0]}"] = ["Datastore.FileManagement"]

    def folder_missing(world: World) -> None:
        world.folders = [f for f in world.folders if f != "kubermatic"]

    def network_missing(world: World) -> None:
        world.cluster_networks = [n for n in world.cluster_networks if n != "kkp-tenant-a"]

    def template_missing(world: World) -> None:
        world.templates = []

    return [
        Fault("vsphere-bad-password", "cloud", "vCenter refuses the profile's password for the technical user "
              "(an error of the VSPHERE checks, not a finding).", touches=("cloud:vsphere:password",),
              shown_with=shown, apply=edit(bad_password)),
        Fault("vsphere-missing-privilege", "cloud", "The technical user lacks Datastore.FileManagement (Low level "
              "file operations) on the datastore.", breaks=("VSPHERE-002",), touches=("cloud:vsphere:privileges",),
              shown_with=shown, apply=edit(missing_privilege)),
        Fault("vsphere-folder-missing", "cloud", "The VM folder the profile names does not exist.",
              breaks=("VSPHERE-003",), touches=("cloud:vsphere:folders",), shown_with=shown,
              apply=edit(folder_missing)),
        Fault("vsphere-network-missing", "cloud", "The port group kkp-tenant-a exists but the compute cluster's "
              "hosts are not attached to it.", breaks=("VSPHERE-004",), touches=("cloud:vsphere:cluster-networks",),
              shown_with=shown, apply=edit(network_missing)),
        Fault("vsphere-template-missing", "cloud", "The template VM the machine deployment clones does not exist.",
              breaks=("VSPHERE-012",), touches=("cloud:vsphere:templates",), shown_with=shown,
              apply=edit(template_missing)),
    ]
