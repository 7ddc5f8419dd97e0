"""Cluster fixtures: the objects a lab Kubernetes API serves, and the plan faults edit.

A fixture (``kkp_readiness/lab/clusters/<name>.yaml``) is one YAML mapping::

    version: v1.31.4                  # what /version and the fixture's kubelets report
    created: "2025-06-02T08:00:00Z"   # creationTimestamp of objects that set none
    tokens:                           # bearer tokens; values are generated at each start
      - {name: reader, user: "system:serviceaccount:kkp-readiness:reader"}
      - {name: restricted, user: "...", forbidden: [storageclasses.storage.k8s.io]}
    lb_pool: ["127.0.0.10-127.0.0.20"]                # for the simulated LoadBalancer controller
    controllers: {load_balancer: true, volume_binder: true}
    resources:                        # custom kinds, as CRDs would add them
      - {apiVersion: metallb.io/v1beta1, kind: IPAddressPool, plural: ipaddresspools, namespaced: true}
    objects:                          # ordinary Kubernetes objects (kind, apiVersion, metadata, ...)
      - {apiVersion: v1, kind: Namespace, metadata: {name: default}}
    includes: [kkp-installation.yaml] # more resources and objects, from files beside this one

``includes`` keeps one concern per file: the bare cluster a KubeOne run leaves, and what the KKP
installer adds to it, each readable on its own.

Faults edit a ``KubePlan`` (the loaded ``Cluster`` plus how the part runs it) before the part
writes the cluster file the server process reads.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kkp_readiness.errors import LabError
from kkp_readiness.lab.kubeapi.resources import CustomResource, parse_custom

#: Where the cluster fixtures live.
CLUSTERS_DIR = Path(__file__).resolve().parents[1] / "clusters"
HEALTHY_FIXTURE = CLUSTERS_DIR / "healthy.yaml"
#: What the KKP installer adds to the healthy cluster (included by healthy.yaml).
INSTALLATION_FIXTURE = CLUSTERS_DIR / "kkp-installation.yaml"

#: libyaml's loader when PyYAML was built with it: ten times faster on the fixture.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Token names every fixture defines: full read (and write) access, and one with forbidden resources.
READER = "reader"
RESTRICTED = "restricted"


@dataclass
class TokenSpec:
    """A bearer token, the user it authenticates as and the resources it may not touch."""

    name: str
    user: str
    token: str = ""
    #: Qualified resources (``storageclasses.storage.k8s.io``, ``pods``) denied for every verb.
    forbidden: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "user": self.user, "token": self.token, "forbidden": list(self.forbidden)}


@dataclass
class Cluster:
    """The content of a cluster fixture, mutable so that faults can edit it."""

    version: str
    created: str
    tokens: list[TokenSpec]
    lb_pool: list[str]
    controllers: dict[str, bool]
    resources: list[CustomResource]
    objects: list[dict[str, Any]]

    # -- reading and writing ---------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cluster:
        try:
            return cls(
                version=str(data["version"]),
                created=str(data.get("created", "2025-01-01T00:00:00Z")),
                tokens=[
                    TokenSpec(str(t["name"]), str(t["user"]), str(t.get("token", "")), tuple(t.get("forbidden", ())))
                    for t in data.get("tokens", ())
                ],
                lb_pool=[str(r) for r in data.get("lb_pool", ())],
                controllers={
                    "load_balancer": bool(data.get("controllers", {}).get("load_balancer", True)),
                    "volume_binder": bool(data.get("controllers", {}).get("volume_binder", True)),
                },
                resources=parse_custom(data.get("resources", ())),
                objects=[_stored(copy.deepcopy(o)) for o in data.get("objects", ())],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LabError(f"invalid cluster fixture: {exc!r}") from exc

    @classmethod
    def load(cls, path: Path | str = HEALTHY_FIXTURE) -> Cluster:
        """Read a fixture (YAML) or the cluster file the part writes for the server (JSON)."""
        path = Path(path)
        try:
            text = path.read_text()
            data = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_LOADER)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise LabError(f"cannot read cluster fixture {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise LabError(f"cluster fixture {path} is not a YAML mapping")
        for name in data.pop("includes", None) or ():
            part = cls.read_fixture(path.parent / name)
            unknown = set(part) - {"resources", "objects"}
            if unknown:
                raise LabError(f"included fixture {name} may hold only resources and objects, not {sorted(unknown)}")
            for key in ("resources", "objects"):
                data[key] = [*(data.get(key) or ()), *(part.get(key) or ())]
        return cls.from_dict(data)

    @staticmethod
    def read_fixture(path: Path) -> dict[str, Any]:
        """One fixture file's mapping as written (``includes`` not followed)."""
        try:
            data = yaml.load(path.read_text(), Loader=_LOADER)
        except (OSError, yaml.YAMLError) as exc:
            raise LabError(f"cannot read cluster fixture {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise LabError(f"cluster fixture {path} is not a YAML mapping")
        return data

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created": self.created,
            "tokens": [t.to_dict() for t in self.tokens],
            "lb_pool": list(self.lb_pool),
            "controllers": dict(self.controllers),
            "resources": [
                {
                    "apiVersion": r.api_version,
                    "kind": r.kind,
                    "plural": r.plural,
                    "namespaced": r.namespaced,
                    **({"shortNames": list(r.short_names)} if r.short_names else {}),
                }
                for r in self.resources
            ],
            "objects": copy.deepcopy(self.objects),
        }

    # -- tokens ----------------------------------------------------------------------------------

    def token(self, name: str) -> TokenSpec:
        for spec in self.tokens:
            if spec.name == name:
                return spec
        raise LabError(f"the cluster fixture has no token named {name!r}")

    def generate_tokens(self) -> None:
        """Give every token without a value a fresh random one (a new value per lab start)."""
        for spec in self.tokens:
            if not spec.token:
                spec.token = f"kkp-lab-{spec.name}-{secrets.token_urlsafe(24)}"

    # -- editing, for faults ---------------------------------------------------------------------

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") == kind]

    def find(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        for obj in self.objects:
            meta = obj.get("metadata", {})
            if obj.get("kind") == kind and meta.get("name") == name and meta.get("namespace") == namespace:
                return obj
        where = f" in namespace {namespace!r}" if namespace else ""
        raise LabError(f"the cluster fixture has no {kind} {name!r}{where}")

    def remove_where(self, predicate: Callable[[dict[str, Any]], bool]) -> int:
        before = len(self.objects)
        self.objects = [o for o in self.objects if not predicate(o)]
        return before - len(self.objects)

    def remove(self, kind: str, name: str, namespace: str | None = None) -> None:
        target = self.find(kind, name, namespace)
        self.objects = [o for o in self.objects if o is not target]


def _stored(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the API server stores it: a Secret's ``stringData`` merged into ``data``
    (base64), so that fixtures keep Secrets readable and the server answers as a real one does."""
    if obj.get("kind") == "Secret" and "stringData" in obj:
        data = obj.setdefault("data", {})
        for key, value in (obj.pop("stringData") or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    return obj


@dataclass
class KubePlan:
    """What the ``kubeapi`` part starts; faults edit it before anything is written or started."""

    cluster: Cluster = field(default_factory=Cluster.load)
    #: False: no server is started, the kubeconfigs point at a closed port (kube-unreachable).
    serve: bool = True
    #: Which token the main kubeconfig carries (kube-forbidden-storageclasses: the restricted one).
    kubeconfig_token: str = READER
    #: Whose CA certificates KKP's CA bundle ConfigMap holds: "lab" (the CA that issued the ingress
    #: certificate) or "unrelated" (another CA's, as after pasting the wrong file).
    kkp_ca_bundle: str = "lab"
    #: StorageClasses whose volumes the lab's kubelet creates on a throttled disk (kube-fast-volumes-slow).
    slow_volume_classes: set[str] = field(default_factory=set)
