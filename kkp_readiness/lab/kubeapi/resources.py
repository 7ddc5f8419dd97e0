"""The resource types the lab's Kubernetes API serves: built-in kinds and the fixture's custom ones.

A ``ResourceType`` is what discovery (``/api/v1``, ``/apis/<group>/<version>``) announces and
what a REST path (``/apis/storage.k8s.io/v1/storageclasses``) resolves to. The built-in list is
the set of kinds the readiness checks read (plus what ``kubectl`` and active checks need); custom
kinds (MetalLB, cert-manager, KKP, ...) come from the fixture's ``resources`` header, exactly as
a CRD adds them to a real cluster, and each gets a matching ``CustomResourceDefinition`` object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Verbs every served resource supports.
READ_VERBS = ("get", "list", "watch")
#: Verbs of resources the active checks create and delete.
WRITE_VERBS = ("create", "delete")


@dataclass(frozen=True)
class ResourceType:
    """One resource of one group version (``storage.k8s.io/v1 storageclasses``)."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    #: Create and delete are served (namespaces, services, PVCs, pods, jobs); else 405.
    writable: bool = False
    categories: tuple[str, ...] = ()
    #: A create-only review (SelfSubjectAccessReview, SelfSubjectReview): answered, never stored.
    review: bool = False
    #: Defined by a CRD (the fixture's ``resources``): list items keep kind and apiVersion.
    custom: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """``storageclasses.storage.k8s.io``, or ``pods`` for the core group (as in API messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def verbs(self) -> tuple[str, ...]:
        if self.review:
            return ("create",)
        return READ_VERBS + WRITE_VERBS if self.writable else READ_VERBS

    @property
    def path(self) -> str:
        """The group version's root path: ``/api/v1`` or ``/apis/<group>/<version>``."""
        return f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"

    def discovery(self) -> dict[str, Any]:
        """This resource's entry in an ``APIResourceList``."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": sorted(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        return entry


def _core(kind: str, plural: str, namespaced: bool, *short: str, writable: bool = False) -> ResourceType:
    return ResourceType("", "v1", kind, plural, namespaced, tuple(short), writable, ("all",) if namespaced else ())


def _grouped(
    group: str, version: str, kind: str, plural: str, namespaced: bool, *short: str, writable: bool = False
) -> ResourceType:
    return ResourceType(group, version, kind, plural, namespaced, tuple(short), writable)


#: Kinds every lab cluster serves, whether or not the fixture has objects of them.
BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _core("Namespace", "namespaces", False, "ns", writable=True),
    _core("Node", "nodes", False, "no"),
    _core("Pod", "pods", True, "po", writable=True),
    _core("Service", "services", True, "svc", writable=True),
    _core("Endpoints", "endpoints", True, "ep"),
    _core("PersistentVolumeClaim", "persistentvolumeclaims", True, "pvc", writable=True),
    _core("PersistentVolume", "persistentvolumes", False, "pv"),
    _core("ConfigMap", "configmaps", True, "cm"),
    _core("Secret", "secrets", True),
    _core("ServiceAccount", "serviceaccounts", True, "sa"),
    _core("Event", "events", True, "ev"),
    _grouped("apps", "v1", "Deployment", "deployments", True, "deploy"),
    _grouped("apps", "v1", "DaemonSet", "daemonsets", True, "ds"),
    _grouped("apps", "v1", "StatefulSet", "statefulsets", True, "sts"),
    _grouped("batch", "v1", "Job", "jobs", True, writable=True),
    _grouped("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, "sc"),
    _grouped("storage.k8s.io", "v1", "CSIDriver", "csidrivers", False),
    _grouped("storage.k8s.io", "v1", "CSINode", "csinodes", False),
    _grouped("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    _grouped("networking.k8s.io", "v1", "Ingress", "ingresses", True, "ing"),
    _grouped("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    ResourceType(
        "authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False, review=True
    ),
    ResourceType("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, review=True),
    _grouped(
        "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False, "crd", "crds"
    ),
)


@dataclass(frozen=True)
class CustomResource:
    """A custom kind declared in the fixture header (what a CRD would add to a real cluster)."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()

    def resource_type(self) -> ResourceType:
        group, _, version = self.api_version.rpartition("/")
        return ResourceType(group, version, self.kind, self.plural, self.namespaced, self.short_names, custom=True)


def crd_object(rtype: ResourceType) -> dict[str, Any]:
    """The ``CustomResourceDefinition`` a real cluster would hold for a custom resource type."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{rtype.plural}.{rtype.group}"},
        "spec": {
            "group": rtype.group,
            "names": {
                "kind": rtype.kind,
                "listKind": rtype.list_kind,
                "plural": rtype.plural,
                "singular": rtype.singular,
                **({"shortNames": list(rtype.short_names)} if rtype.short_names else {}),
            },
            "scope": "Namespaced" if rtype.namespaced else "Cluster",
            "versions": [
                {
                    "name": rtype.version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
        "status": {
            "acceptedNames": {"kind": rtype.kind, "plural": rtype.plural},
            "conditions": [
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"},
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
            ],
            "storedVersions": [rtype.version],
        },
    }


@dataclass
class Registry:
    """Every served resource type, looked up by path segments or by an object's apiVersion/kind."""

    types: list[ResourceType] = field(default_factory=list)

    @classmethod
    def build(cls, custom: Iterable[CustomResource] = ()) -> Registry:
        registry = cls(list(BUILTIN_TYPES))
        for resource in custom:
            rtype = resource.resource_type()
            if registry.by_kind(rtype.api_version, rtype.kind) or registry.by_plural(
                rtype.group, rtype.version, rtype.plural
            ):
                raise ValueError(f"resource {rtype.qualified} ({rtype.kind}) is declared twice")
            registry.types.append(rtype)
        return registry

    @property
    def custom_types(self) -> list[ResourceType]:
        return [t for t in self.types if t not in BUILTIN_TYPES]

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return next((t for t in self.types if t.api_version == api_version and t.kind == kind), None)

    def by_plural(self, group: str, version: str, plural: str) -> ResourceType | None:
        return next((t for t in self.types if (t.group, t.version, t.plural) == (group, version, plural)), None)

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self.types if (t.group, t.version) == (group, version)]

    def groups(self) -> dict[str, list[str]]:
        """Non-core group -> its versions, in declaration order."""
        groups: dict[str, list[str]] = {}
        for rtype in self.types:
            if rtype.group and rtype.version not in groups.setdefault(rtype.group, []):
                groups[rtype.group].append(rtype.version)
        return groups


def parse_custom(entries: Iterable[Mapping[str, Any]]) -> list[CustomResource]:
    """The fixture's ``resources`` header: ``apiVersion``, ``kind``, ``plural``, ``namespaced``."""
    custom = []
    for entry in entries:
        api_version = str(entry["apiVersion"])
        if "/" not in api_version:
            raise ValueError(f"custom resource {entry.get('kind')!r} needs a group in apiVersion: {api_version!r}")
        plural = str(entry["plural"])
        if plural != plural.lower():
            raise ValueError(f"custom resource plural must be lowercase: {plural!r}")
        custom.append(
            CustomResource(
                api_version,
                str(entry["kind"]),
                plural,
                bool(entry["namespaced"]),
                tuple(entry.get("shortNames", ())),
            )
        )
    return custom
