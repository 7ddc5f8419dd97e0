"""Offline audits: save what the cluster checks read, and run the same checks from the files.

An auditor often has no access to the site's clusters; an operator does. ``kkp-readiness collect``
(:func:`collect`) reads, per seed, every object the cluster checks read, through the same
:class:`~kkp_readiness.probes.kube.ClusterReader` the checks use, and writes it as YAML; with
``--cluster-snapshot DIR`` the ``clusters`` fixture hands the checks a :class:`SnapshotReader`
instead, with exactly the reader's read interface, so the unchanged checks judge the files and
reach the same verdicts with the same messages as they did live.

Layout of a snapshot directory::

    DIR/manifest.yaml                                  profile, collected-at, tool, per seed: server,
                                                       every resource with status, count, sha256
    DIR/<seed>/version.yaml                            /version of the API server (an object)
    DIR/<seed>/core.v1.nodes.yaml                      a List with the items, as ClusterReader returns them
    DIR/<seed>/storage.k8s.io.v1.storageclasses.yaml
    DIR/<seed>/metallb.io.v1beta1.ipaddresspools.yaml  custom resources likewise
    ...

A resource is recorded in the manifest as ``collected`` (with its file), ``absent`` (a custom
resource whose CRD the cluster does not serve, found through discovery as kubectl finds it: no
file, and ``list_custom`` gives ``[]``, exactly what ``ClusterReader.list_custom`` answers the
live API's 404 with) or ``error`` (the API refused or did not answer:
reading it raises the same :class:`~kkp_readiness.errors.KubeProbeError` the live read raised, so
"could not look" stays an ``error`` offline too). Every file's sha256 is in the manifest and is
checked on reading: a snapshot edited after collection is refused, not judged.

Secrets are never collected, and anything of kind ``Secret`` that reaches the writer loses its
``data`` and ``stringData`` anyway; every string passes :func:`kkp_readiness.redact.redact_obj`.

>>> reader = SnapshotReader("audit/seed")                                  # doctest: +SKIP
>>> [n["metadata"]["name"] for n in reader.nodes()]                        # doctest: +SKIP
['cp-1', 'cp-2', 'cp-3', 'worker-1', 'worker-2', 'worker-3']
>>> LabelSelector.parse("tier in (db,cache),!canary").matches({"tier": "db"})
True
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from kkp_readiness import __version__, dex_config
from kkp_readiness.errors import KkpReadinessError, KubeProbeError
from kkp_readiness.kkp_facts import KKP_NAMESPACE
from kkp_readiness.probes.kube import ClusterAccess, ClusterReader
from kkp_readiness.redact import redact, redact_obj

if TYPE_CHECKING:
    from kkp_readiness.profile import LoadedProfile
    from kkp_readiness.profile_model import SeedSpec

FORMAT = "kkp-readiness/cluster-snapshot/v1"
MANIFEST = "manifest.yaml"
COLLECT_HINT = "collect it with kkp-readiness collect"

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class SnapshotError(KkpReadinessError):
    """The snapshot directory cannot be written (not empty, not writable); ``collect`` exits with 2."""


# ----------------------------------------------------------------------------- what is collected


@dataclass(frozen=True)
class SnapshotResource:
    """One thing the cluster checks read, and how :class:`ClusterReader` reads it.

    ``how`` is ``version`` (``reader.version()``), ``list`` (``reader.list(plural)``, a built-in
    kind, in one ``namespace`` when that is set), ``custom`` (``reader.list_custom(group, version,
    plural)``, a CRD that may be absent) or ``document`` (``reader.document(plural)``, a secret-free
    summary the reader derives, e.g. of Dex's configuration, which lives in a Secret).
    """

    how: Literal["version", "list", "custom", "document"]
    plural: str = ""
    group: str = ""
    version: str = "v1"
    namespaced: bool = False
    #: Collect only this namespace (kinds that elsewhere may hold what an auditor must not see).
    namespace: str | None = None

    @property
    def key(self) -> str:
        """Manifest key and file stem: ``version``, ``core.v1.nodes``, ``metallb.io.v1beta1.ipaddresspools``."""
        if self.how == "version":
            return "version"
        if self.how == "document":
            return f"document.{self.plural}"
        return f"{self.group or 'core'}.{self.version}.{self.plural}"

    @property
    def file(self) -> str:
        return f"{self.key}.yaml"

    @property
    def display(self) -> str:
        """As kubectl names it: ``nodes``, ``storageclasses.storage.k8s.io``, ``ipaddresspools.metallb.io/v1beta1``."""
        if self.how == "version":
            return "/version"
        if self.how == "document":
            return f"{self.plural} (derived)"
        if self.namespace:
            return f"{self.plural} in namespace {self.namespace}"
        if self.how == "custom":
            return f"{self.plural}.{self.group}/{self.version}"
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _builtin(plural: str, group: str = "", namespaced: bool = False, namespace: str | None = None) -> SnapshotResource:
    return SnapshotResource("list", plural, group, "v1", namespaced, namespace)


def _custom(group: str, version: str, plural: str) -> SnapshotResource:
    # Whether a custom resource is namespaced is what the cluster's discovery says at collect time.
    return SnapshotResource("custom", plural, group, version)


#: The single list of what ``collect`` saves: every kind, in every version, that a cluster check reads
#: (a check that reads something not listed here ends as ``error`` offline; tests/unit/test_snapshot.py
#: compares this list with what ClusterReader lists and kkp_readiness.network_facts asks for).
#: Never add Secrets: the checks do not need their data, and a snapshot travels to people who must not see it.
RESOURCES: tuple[SnapshotResource, ...] = (
    SnapshotResource("version"),
    _builtin("nodes"),
    _builtin("namespaces"),
    _builtin("pods", namespaced=True),
    _builtin("services", namespaced=True),
    _builtin("persistentvolumeclaims", namespaced=True),
    _builtin("storageclasses", "storage.k8s.io"),
    _builtin("csidrivers", "storage.k8s.io"),
    _builtin("csinodes", "storage.k8s.io"),
    # KKP's own ConfigMaps (the CA bundle); ConfigMaps elsewhere may hold what a snapshot must not carry.
    _builtin("configmaps", namespaced=True, namespace=KKP_NAMESPACE),
    # Dex's issuer and connectors, summarised from the Secret (or ConfigMap) that holds its configuration.
    SnapshotResource("document", dex_config.DOCUMENT),
    _builtin("daemonsets", "apps", namespaced=True),
    _builtin("deployments", "apps", namespaced=True),
    _builtin("statefulsets", "apps", namespaced=True),
    # MetalLB; BGPPeer is v1beta2 since MetalLB 0.13 and v1beta1 before: the checks ask both.
    _custom("metallb.io", "v1beta1", "ipaddresspools"),
    _custom("metallb.io", "v1beta1", "l2advertisements"),
    _custom("metallb.io", "v1beta1", "bgppeers"),
    _custom("metallb.io", "v1beta2", "bgppeers"),
    _custom("metallb.io", "v1beta1", "bgpadvertisements"),
    # Cilium LB-IPAM, L2 announcements and BGP, in the versions Cilium 1.14 to 1.18 serve.
    _custom("cilium.io", "v2", "ciliumloadbalancerippools"),
    _custom("cilium.io", "v2alpha1", "ciliumloadbalancerippools"),
    _custom("cilium.io", "v2alpha1", "ciliuml2announcementpolicies"),
    _custom("cilium.io", "v2alpha1", "ciliumbgppeeringpolicies"),
    _custom("cilium.io", "v2", "ciliumbgpclusterconfigs"),
    _custom("cilium.io", "v2alpha1", "ciliumbgpclusterconfigs"),
    _custom("cilium.io", "v2", "ciliumbgpadvertisements"),
    _custom("cilium.io", "v2alpha1", "ciliumbgpadvertisements"),
    # cert-manager
    _custom("cert-manager.io", "v1", "clusterissuers"),
    # KKP itself
    _custom("kubermatic.k8c.io", "v1", "seeds"),
    _custom("kubermatic.k8c.io", "v1", "kubermaticconfigurations"),
    _custom("kubermatic.k8c.io", "v1", "clusters"),
    _custom("kubermatic.k8c.io", "v1", "clustertemplates"),
)


# ----------------------------------------------------------------------------- label selectors


class LabelSelectorError(ValueError):
    """A label selector the API server would answer with 400 BadRequest."""


_SYMBOLS = frozenset({"!", "!=", "(", ")", ",", "=", "==", ">", "<"})
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_OPERATORS = ("in", "notin", "=", "==", "!=", "gt", "lt")


def _lex(selector: str) -> list[tuple[str, str]]:
    """Tokens as apimachinery's ``labels.Lexer`` makes them: (kind, literal); kind is the symbol,
    ``in``/``notin`` for the keywords, ``id`` for identifiers and ``end`` last."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(selector)
    while True:
        while i < n and selector[i] in _WHITESPACE:
            i += 1
        if i >= n:
            tokens.append(("end", ""))
            return tokens
        if selector[i] in _SPECIAL:
            # The longest run of special characters that is a symbol (``!=`` before ``!``).
            buffer, last, j = "", None, i
            while j < n and selector[j] in _SPECIAL:
                buffer += selector[j]
                if buffer in _SYMBOLS:
                    last = (buffer, j + 1)
                elif last is not None:
                    break
                j += 1
            if last is None:
                raise LabelSelectorError(f"error expected: keyword found '{buffer}'")
            tokens.append((last[0], last[0]))
            i = last[1]
            continue
        j = i
        while j < n and selector[j] not in _SPECIAL and selector[j] not in _WHITESPACE:
            j += 1
        word = selector[i:j]
        tokens.append((word if word in ("in", "notin") else "id", word))
        i = j


def _validate_key(key: str) -> None:
    """A label key is a qualified name: ``[prefix/]name`` (prefix a DNS subdomain, name up to 63)."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _SUBDOMAIN.match(prefix) or "/" in prefix):
        raise LabelSelectorError(f"key: Invalid value: {key!r}: the prefix must be a lowercase DNS subdomain")
    if not name or len(name) > 63 or not _NAME.match(name):
        raise LabelSelectorError(
            f"key: Invalid value: {key!r}: name part must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character (at most 63 characters)"
        )


def _validate_value(key: str, value: str) -> None:
    if len(value) > 63 or not _VALUE.match(value):
        raise LabelSelectorError(
            f"values[{key}]: Invalid value: {value!r}: a valid label must be an empty string or consist of "
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
            "(at most 63 characters)"
        )


@dataclass(frozen=True)
class LabelRequirement:
    """One requirement of a selector: ``key <operator> values``."""

    key: str
    operator: str  # "in", "notin", "=", "==", "!=", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """As ``labels.Requirement.Matches``: ``!=`` and ``notin`` also match objects without the label."""
        present = self.key in labels
        if self.operator in ("in", "=", "=="):
            return present and labels[self.key] in self.values
        if self.operator in ("notin", "!="):
            return not present or labels[self.key] not in self.values
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if not present:  # gt, lt: integers only
            return False
        try:
            mine, theirs = int(labels[self.key]), int(self.values[0])
        except ValueError:
            return False
        return mine > theirs if self.operator == "gt" else mine < theirs


@dataclass(frozen=True)
class LabelSelector:
    """A parsed ``labelSelector``: every requirement must match (an empty selector matches all).

    Parsing follows the API server (apimachinery ``labels.Parse``): equality (``k=v``, ``k==v``,
    ``k!=v``), set-based (``k in (a,b)``, ``k notin (a,b)``), existence (``k``, ``!k``) and the
    integer comparisons ``k>1``/``k<1``, comma-separated; keys and values are validated as labels.

    >>> LabelSelector.parse("component=etcd,tier notin (test)").matches({"component": "etcd"})
    True
    >>> LabelSelector.parse("!node-role.kubernetes.io/control-plane").matches({})
    True
    """

    requirements: tuple[LabelRequirement, ...] = ()

    @classmethod
    def parse(cls, selector: str | None) -> LabelSelector:
        try:
            return cls(tuple(_Parser(_lex(selector or "")).parse()))
        except LabelSelectorError as exc:
            raise LabelSelectorError(f"unable to parse requirement: {exc}") from None

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def select(self, objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The objects whose ``metadata.labels`` match, in their order."""
        return [o for o in objects if self.matches((o.get("metadata") or {}).get("labels"))]


class _Parser:
    """apimachinery's recursive-descent selector parser, one method per production."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0

    def _peek(self, values: bool = True) -> tuple[str, str]:
        kind, literal = self.tokens[self.position]
        # After a key, "in"/"notin" are operators; everywhere else they are ordinary identifiers.
        return ("id", literal) if values and kind in ("in", "notin") else (kind, literal)

    def _take(self, values: bool = True) -> tuple[str, str]:
        token = self._peek(values)
        self.position = min(self.position + 1, len(self.tokens) - 1)
        return token

    def parse(self) -> list[LabelRequirement]:
        requirements: list[LabelRequirement] = []
        while True:
            kind, literal = self._peek()
            if kind == "end":
                return requirements
            if kind not in ("id", "!"):
                raise LabelSelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            requirements.append(self._requirement())
            kind, literal = self._take()
            if kind == "end":
                return requirements
            if kind != ",":
                raise LabelSelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self._peek()
            if kind not in ("id", "!"):
                raise LabelSelectorError(f"found '{literal}', expected: identifier after ','")

    def _requirement(self) -> LabelRequirement:
        operator = ""
        kind, key = self._take()
        if kind == "!":
            operator = "!"
            kind, key = self._take()
        if kind != "id":
            raise LabelSelectorError(f"found '{key}', expected: identifier")
        _validate_key(key)
        if operator == "!" or self._peek()[0] in ("end", ","):
            return LabelRequirement(key, operator or "exists")
        kind, literal = self._take(values=False)
        operator = {"in": "in", "notin": "notin", "=": "=", "==": "==", "!=": "!=", ">": "gt", "<": "lt"}.get(kind, "")
        if not operator:
            raise LabelSelectorError(f"found '{literal}', expected: {', '.join(_OPERATORS)}")
        values = self._set() if operator in ("in", "notin") else self._exact()
        if operator in ("gt", "lt"):
            try:
                int(values[0])
            except ValueError:
                raise LabelSelectorError(f"for 'Gt', 'Lt' operators, the value must be an integer: {values[0]!r}") \
                    from None
        for value in values:
            _validate_value(key, value)
        return LabelRequirement(key, operator, values)

    def _exact(self) -> tuple[str, ...]:
        if self._peek()[0] in ("end", ","):
            return ("",)  # "k=" selects the empty value
        kind, literal = self._take()
        if kind != "id":
            raise LabelSelectorError(f"found '{literal}', expected: identifier")
        return (literal,)

    def _set(self) -> tuple[str, ...]:
        kind, literal = self._take()
        if kind != "(":
            raise LabelSelectorError(f"found '{literal}' expected: '('")
        kind, literal = self._peek()
        if kind == ")":
            self._take()
            return ("",)  # "k in ()" is the set of the empty value, as on the API server
        if kind not in ("id", ","):
            raise LabelSelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values: list[str] = []
        while True:
            kind, literal = self._take()
            if kind == "id":
                values.append(literal)
                following, text = self._peek()
                if following == ")":
                    self._take()
                    return tuple(sorted(set(values)))
                if following != ",":
                    raise LabelSelectorError(f"found '{text}', expected: ',' or ')'")
            elif kind == ",":
                following, _ = self._peek()
                if not values or following in (")", ","):
                    values.append("")  # "(,a)", "(a,)" and "(a,,b)" name the empty value
                if following == ")":
                    self._take()
                    return tuple(sorted(set(values)))
                if following == ",":
                    self._take()
                    values.append("")
            else:
                raise LabelSelectorError(f"found '{literal}', expected: ',', or identifier")


# ----------------------------------------------------------------------------- scrubbing


def strip_secret_data(value: Any) -> Any:
    """A copy of ``value`` in which every object of kind ``Secret`` (also the items of a ``SecretList``)
    has no ``data``, ``stringData`` or last-applied annotation (which would repeat the data)."""
    if isinstance(value, list):
        return [strip_secret_data(v) for v in value]
    if not isinstance(value, dict):
        return value
    copy = {k: strip_secret_data(v) for k, v in value.items()}
    if copy.get("kind") == "SecretList" and isinstance(copy.get("items"), list):
        copy["items"] = [strip_secret_data({"kind": "Secret", **i}) if isinstance(i, dict) else i
                         for i in copy["items"]]
    if copy.get("kind") == "Secret":
        copy.pop("data", None)
        copy.pop("stringData", None)
        annotations = (copy.get("metadata") or {}).get("annotations")
        if isinstance(annotations, dict):
            annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return copy


def scrub(value: Any) -> Any:
    """What may be written: no Secret data, no resolved secret of the profile anywhere."""
    return redact_obj(strip_secret_data(value))


# ----------------------------------------------------------------------------- collect


def _served(reader: Any, resource: SnapshotResource,
            discovered: dict[tuple[str, str], dict[str, bool] | None] | None = None) -> bool | None:
    """Whether the cluster serves a custom resource, from discovery (as kubectl learns it): None when
    the group version or the resource is unknown (its CRD is not installed), else whether it is namespaced.

    ``discovered`` caches one discovery request per group version for the seed.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    discovered = {} if discovered is None else discovered
    group_version = (resource.group, resource.version)
    if group_version not in discovered:
        api = client.CustomObjectsApi(reader._client())

        def discover(**kwargs: Any) -> Any:
            try:
                return api.get_api_resources(resource.group, resource.version, **kwargs)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

        # Through the reader's own call: same timeout, same typed errors (401, 403, unreachable).
        found = reader._call("get", f"/apis/{resource.group}/{resource.version}", "", discover)
        discovered[group_version] = None if found is None else {
            entry.name: bool(entry.namespaced) for entry in found.resources or []
        }
    served = discovered[group_version]
    return None if served is None else served.get(resource.plural)


def _list_custom(reader: Any, resource: SnapshotResource) -> list[dict[str, Any]]:
    """The items of a served custom resource, through ``reader.list_custom`` where the reader has it."""
    if hasattr(reader, "list_custom"):
        return list(reader.list_custom(resource.group, resource.version, resource.plural))
    # A reader from before ClusterReader.list_custom: the same request, through its error handling.
    from kubernetes import client

    api = client.CustomObjectsApi(reader._client())
    result = reader._call("list", resource.plural, resource.group, api.list_cluster_custom_object,
                          group=resource.group, version=resource.version, plural=resource.plural)
    return list(result.get("items") or [])


def _dump(document: Any, header: str) -> bytes:
    text = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return (header + text).encode("utf-8")


def collect_seed(reader: Any, directory: Path) -> dict[str, Any]:
    """Read every declared resource of one seed and write its files into ``directory``.

    Returns the seed's manifest entry; a resource that could not be read is recorded with the
    reader's error message (and no file) instead of stopping the others.
    """
    directory.mkdir(parents=True, exist_ok=True)
    try:
        server: str | None = reader.server
    except KkpReadinessError:
        server = None
    entries: dict[str, dict[str, Any]] = {}
    discovered: dict[tuple[str, str], dict[str, bool] | None] = {}
    for resource in RESOURCES:
        if resource.plural == "secrets":  # the rule above, enforced where it matters
            continue
        entry: dict[str, Any] = {"resource": resource.display, "status": "", "how": resource.how}
        if resource.how != "version":
            entry.update(group=resource.group, version=resource.version, plural=resource.plural,
                         namespaced=resource.namespaced)
        if resource.namespace:
            entry["namespace"] = resource.namespace
        try:
            if resource.how == "version":
                document: Any = scrub(reader.version())
            elif resource.how == "document":
                document = scrub(reader.document(resource.plural))
            else:
                if resource.how == "custom":
                    namespaced = _served(reader, resource, discovered)
                    if namespaced is None:
                        entries[resource.key] = {**entry, "status": "absent"}
                        continue
                    entry["namespaced"] = namespaced
                    items = _list_custom(reader, resource)
                else:
                    items = reader.list(resource.plural, namespace=resource.namespace)
                document = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                            "items": scrub(items)}
                entry["count"] = len(document["items"])
        except Exception as exc:  # every reason a read failed is recorded; the other resources still run
            reason = str(exc) if isinstance(exc, KubeProbeError) else f"{type(exc).__name__}: {exc}"
            entries[resource.key] = {**entry, "status": "error", "error": redact(reason)}
            continue
        header = (f"# {resource.display} of {server or 'the seed'}, collected by kkp-readiness {__version__}"
                  " (kkp-readiness collect); a snapshot for --cluster-snapshot\n")
        data = _dump(document, header)
        (directory / resource.file).write_bytes(data)
        entries[resource.key] = {**entry, "status": "collected", "file": resource.file,
                                 "sha256": hashlib.sha256(data).hexdigest()}
    errors = {e["error"] for e in entries.values() if e["status"] == "error"}
    return {"server": server, "complete": not errors, "resources": entries}


@dataclass
class CollectResult:
    """What ``collect`` wrote, and what it could not read (seed -> resource -> reason)."""

    directory: Path
    manifest: dict[str, Any]
    problems: dict[str, dict[str, str]] = field(default_factory=dict)

    def report_lines(self) -> list[tuple[bool, str]]:
        """(is_problem, line) for the terminal: one line per seed, one per distinct reason it failed."""
        lines: list[tuple[bool, str]] = []
        for seed, entry in self.manifest["seeds"].items():
            resources = entry["resources"].values()
            counts = {status: sum(1 for r in resources if r["status"] == status)
                      for status in ("collected", "absent", "error")}
            lines.append((False, f"seed {seed}: {counts['collected']} collected, {counts['absent']} absent "
                                 f"(CRD not installed), {counts['error']} unreadable, from "
                                 f"{entry['server'] or '(no server)'} into {self.directory / seed}"))
            by_reason: dict[str, list[str]] = {}
            for key, reason in self.problems.get(seed, {}).items():
                by_reason.setdefault(reason, []).append(key)
            for reason, keys in by_reason.items():
                what = "every resource" if len(keys) == len(RESOURCES) else ", ".join(keys)
                lines.append((True, f"seed {seed} could not be read ({what}): {reason}"))
        return lines


def seed_access(loaded: LoadedProfile, seed: SeedSpec) -> ClusterAccess:
    """How to reach one seed, in this order: the seed's ``kubeconfig`` (and ``context``) from the
    profile, ``$KUBECONFIG``, ``~/.kube/config``, the in-cluster service account.

    It lives in the package (not in ``fixtures/``) because ``kkp-readiness collect`` runs where only
    the package is installed, and must reach the seeds exactly as the checks' ``clusters`` fixture does.
    """
    profile = loaded.profile
    index = profile.seeds.index(seed)
    kubeconfig = loaded.resolve_path(("seeds", index, "kubeconfig"), seed.kubeconfig)
    if kubeconfig is None:
        kubeconfig = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
    if kubeconfig is None and (Path.home() / ".kube" / "config").is_file():
        kubeconfig = str(Path.home() / ".kube" / "config")
    if kubeconfig is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        kubeconfig = f"(none: set seeds[{index}].kubeconfig in the profile or $KUBECONFIG)"
    return ClusterAccess(kubeconfig, seed.context, profile.timeouts.kube)


def collect(loaded: LoadedProfile, out: Path, readers: Sequence[tuple[str, Any]] | None = None,
            collected_at: str | None = None) -> CollectResult:
    """Write a snapshot of every seed of the profile into ``out``.

    ``readers`` (seed name, reader) replaces the live :class:`ClusterReader` per seed (tests).
    ``out`` must be new or empty: mixing seeds of two collections would misreport a site.
    The manifest is written last, so a directory without one is an interrupted collection.
    """
    from kkp_readiness.report.run import git_commit, now_iso

    if readers is None:
        readers = [(seed.name, ClusterReader(seed_access(loaded, seed))) for seed in loaded.profile.seeds]

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SnapshotError(f"{out} exists and is not an empty directory; choose a new --out directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SnapshotError(f"cannot create {out}: {exc}") from None
    seeds: dict[str, Any] = {}
    problems: dict[str, dict[str, str]] = {}
    for name, reader in readers:
        seeds[name] = collect_seed(reader, out / name)
        failed = {k: e["error"] for k, e in seeds[name]["resources"].items() if e["status"] == "error"}
        if failed:
            problems[name] = failed
    manifest = {
        "format": FORMAT,
        "kind": "ClusterSnapshot",
        "profile": loaded.name,
        "profile_path": str(loaded.path),
        "profile_sha256": loaded.sha256,
        "collected_at": collected_at or now_iso(),
        "tool_version": __version__,
        "tool_commit": git_commit(),
        "seeds": seeds,
    }
    data = _dump(scrub(manifest), "# kkp-readiness cluster snapshot; run the cluster checks on it with "
                                  "pytest --cluster-snapshot=<this directory>\n")
    (out / MANIFEST).write_bytes(data)
    return CollectResult(out, manifest, problems)


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a snapshot directory; :class:`SnapshotError` when there is none or it is not one."""
    path = Path(directory) / MANIFEST
    try:
        manifest = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except OSError as exc:
        raise SnapshotError(f"{directory} is not a cluster snapshot: cannot read {path}: {exc.strerror}; "
                            f"make one with kkp-readiness collect") from None
    except yaml.YAMLError as exc:
        raise SnapshotError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SnapshotError(f"{path} is not a kkp-readiness cluster snapshot manifest (format {FORMAT})")
    return manifest


# ----------------------------------------------------------------------------- read back


class SnapshotReader:
    """One seed's snapshot behind exactly :class:`~kkp_readiness.probes.kube.ClusterReader`'s read interface.

    Lists are filtered as the API server filters them (namespace of namespaced kinds, label
    selectors), so that a check asking for ``pods`` in ``kube-system`` with ``component=etcd`` gets
    what it got live. What the snapshot lacks raises :class:`KubeProbeError` (an ``error``, never a
    ``fail``): the check could not look.

    >>> etcd = SnapshotReader("audit/seed").list("pods", "kube-system", "component=etcd")  # doctest: +SKIP
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.seed = self.directory.name
        self._entries: dict[str, dict[str, Any]] | None = None
        self._server: str | None = None
        self._documents: dict[str, Any] = {}
        self._cache: dict[tuple[Any, ...], Any] = {}

    # ------------------------------------------------------------------ index

    def _index(self) -> dict[str, dict[str, Any]]:
        """The seed's resource entries from the manifest; without one, the declared resources whose
        files exist (a hand-assembled snapshot is still readable, just unchecked)."""
        if self._entries is None:
            root = self.directory.parent
            if (root / MANIFEST).exists():
                try:
                    manifest = read_manifest(root)
                except SnapshotError as exc:
                    raise KubeProbeError(str(exc)) from None
                seed = (manifest.get("seeds") or {}).get(self.seed)
                if seed is None:
                    raise KubeProbeError(f"the snapshot {root} has no seed {self.seed}; {COLLECT_HINT}")
                self._server = seed.get("server")
                self._entries = dict(seed.get("resources") or {})
            else:
                self._entries = {
                    r.key: {"how": r.how, "group": r.group, "version": r.version, "plural": r.plural,
                            "namespaced": r.namespaced, "status": "collected", "file": r.file,
                            **({"namespace": r.namespace} if r.namespace else {})}
                    for r in RESOURCES if (self.directory / r.file).is_file()
                }
        return self._entries

    def _find(self, how: str, plural: str = "", group: str | None = None, version: str | None = None,
              ) -> tuple[str, dict[str, Any]] | None:
        for key, entry in self._index().items():
            if entry.get("how") != how:
                continue
            if how == "version" or (entry.get("plural") == plural
                                    and (group is None or entry.get("group") == group)
                                    and (version is None or entry.get("version") == version)):
                return key, entry
        return None

    def _document(self, key: str, entry: dict[str, Any], display: str) -> Any:
        """The file's content, after checking it against the manifest's sha256; recorded errors re-raised."""
        status = entry.get("status")
        if status == "error":
            raise KubeProbeError(entry.get("error") or f"{display} could not be read when the snapshot was taken")
        if key not in self._documents:
            path = self.directory / (entry.get("file") or f"{key}.yaml")
            try:
                data = path.read_bytes()
            except OSError:
                raise KubeProbeError(f"the snapshot has no {display}; {COLLECT_HINT} "
                                     f"({path} is missing)") from None
            expected = entry.get("sha256")
            if expected and hashlib.sha256(data).hexdigest() != expected:
                raise KubeProbeError(f"the snapshot file {path} does not match the sha256 in its manifest: it was "
                                     f"changed after it was collected; {COLLECT_HINT} again")
            try:
                self._documents[key] = yaml.load(data.decode("utf-8"), Loader=_Loader)
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise KubeProbeError(f"the snapshot file {path} is not valid YAML: {exc}") from None
        return self._documents[key]

    def _items(self, key: str, entry: dict[str, Any], display: str, namespace: str | None,
               label_selector: str | None) -> list[dict]:
        """The items, filtered like the live list with the same arguments (its own cached result per call).

        A namespace narrows namespaced kinds only. ``list`` ignores it for cluster-scoped kinds, as
        ``ClusterReader.list`` does; ``list_custom`` asks the API for the namespaced path, which a
        cluster-scoped resource does not have (404), so ``ClusterReader.list_custom`` answers ``[]``.
        """
        cache_key = (key, namespace, label_selector)
        if cache_key not in self._cache:
            custom_cluster_scoped = entry.get("how") == "custom" and not entry.get("namespaced")
            if entry.get("status") == "absent" or (namespace is not None and custom_cluster_scoped):
                self._cache[cache_key] = []
                return self._cache[cache_key]
            document = self._document(key, entry, display)
            items = list((document or {}).get("items") or [])
            if namespace is not None and entry.get("namespaced"):
                items = [i for i in items if (i.get("metadata") or {}).get("namespace") == namespace]
            if label_selector:
                try:
                    items = LabelSelector.parse(label_selector).select(items)
                except LabelSelectorError as exc:
                    raise KubeProbeError(f"list {display} failed with HTTP 400: {exc}") from None
            self._cache[cache_key] = items
        return self._cache[cache_key]

    # ------------------------------------------------------------------ the reader's interface

    @property
    def server(self) -> str:
        """The API server the snapshot was collected from (for messages that name it)."""
        self._index()
        return self._server or f"snapshot {self.directory}"

    def version(self) -> dict[str, Any]:
        """``/version`` of the API server, as collected."""
        found = self._find("version")
        if found is None:
            raise KubeProbeError(f"the snapshot has no /version; {COLLECT_HINT}")
        return self._document(found[0], found[1], "/version")

    def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None) -> list[dict]:
        """Every object of ``resource`` (optionally in one namespace, with a label selector)."""
        found = self._find("list", resource)
        if found is None:
            raise KubeProbeError(f"the snapshot has no {resource}; {COLLECT_HINT}")
        only = found[1].get("namespace")
        if only and namespace != only:
            raise KubeProbeError(f"the snapshot holds the {resource} of namespace {only} only, not "
                                 f"{'all namespaces' if namespace is None else 'of ' + namespace}")
        return self._items(found[0], found[1], resource, namespace, label_selector)

    def document(self, name: str) -> Any:
        """A derived document (``ClusterReader.document``), as collected."""
        found = self._find("document", name)
        if found is None:
            raise KubeProbeError(f"the snapshot has no {name}; {COLLECT_HINT}")
        return self._document(found[0], found[1], name)

    def nodes(self) -> list[dict]:
        return self.list("nodes")

    def storage_classes(self) -> list[dict]:
        return self.list("storageclasses")

    def list_custom(self, group: str, version: str, plural: str, namespace: str | None = None) -> list[dict]:
        """Every object of a custom resource (in all namespaces, or one); ``[]`` when its CRD was not
        installed ("absent"), as ``ClusterReader.list_custom`` answers the API's 404."""
        display = f"{plural}.{group}/{version}"
        found = self._find("custom", plural, group, version)
        if found is None:
            raise KubeProbeError(f"the snapshot has no {display}; {COLLECT_HINT}")
        return self._items(found[0], found[1], display, namespace, None)
