"""Offline audits without a cluster: the label-selector matcher, the Secret scrubbing, and a snapshot
written from a fake reader and read back through ``SnapshotReader``."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import yaml

from kkp_readiness import redact, snapshot
from kkp_readiness.errors import KubeProbeError
from kkp_readiness.probes import kube
from kkp_readiness.snapshot import (
    RESOURCES,
    LabelSelector,
    LabelSelectorError,
    SnapshotError,
    SnapshotReader,
    collect,
    strip_secret_data,
)

# ----------------------------------------------------------------------------- label selectors

LABELS = {"app": "etcd", "tier": "control-plane", "node-role.kubernetes.io/control-plane": "", "replicas": "3"}

MATCHES = [
    # equality-based
    ("app=etcd", True),
    ("app==etcd", True),
    ("app=nginx", False),
    ("app!=nginx", True),
    ("app!=etcd", False),
    ("missing!=x", True),  # != also matches objects without the label
    ("missing=x", False),
    ("node-role.kubernetes.io/control-plane=", True),  # "k=" is the empty value
    ("app=", False),
    # set-based
    ("app in (etcd,nginx)", True),
    ("app in (nginx, dex)", False),
    ("app notin (nginx,dex)", True),
    ("app notin (etcd)", False),
    ("missing notin (x)", True),
    ("missing in (x)", False),
    ("node-role.kubernetes.io/control-plane in ()", True),  # "()" is the set of the empty value
    ("app in (,etcd)", True),
    # existence
    ("app", True),
    ("!app", False),
    ("missing", False),
    ("!missing", True),
    ("node-role.kubernetes.io/control-plane", True),
    # integer comparisons, as the API server parses them
    ("replicas>2", True),
    ("replicas<3", False),
    ("app>1", False),
    ("missing<5", False),
    # combinations, whitespace, keywords used as names and values
    ("app=etcd,tier in (control-plane,worker),!missing", True),
    (" app = etcd , tier notin ( worker ) ", True),
    ("app=etcd,missing", False),
    ("", True),
]


@pytest.mark.parametrize(("selector", "expected"), MATCHES, ids=[s or "<empty>" for s, _ in MATCHES])
def test_selector_matches_like_the_api_server(selector: str, expected: bool) -> None:
    assert LabelSelector.parse(selector).matches(LABELS) is expected


def test_keywords_are_ordinary_names_outside_the_operator_position() -> None:
    assert LabelSelector.parse("in=notin").matches({"in": "notin"})
    assert LabelSelector.parse("notin in (in)").matches({"notin": "in"})


def test_requirements_are_parsed_with_their_operator() -> None:
    parsed = LabelSelector.parse("a=1,b!=2,c in (y,x),d notin (z),e,!f,g>4")
    assert [(r.key, r.operator, r.values) for r in parsed.requirements] == [
        ("a", "=", ("1",)), ("b", "!=", ("2",)), ("c", "in", ("x", "y")), ("d", "notin", ("z",)),
        ("e", "exists", ()), ("f", "!", ()), ("g", "gt", ("4",)),
    ]


BAD = [
    "app in etcd",            # a set needs parentheses
    "app in (etcd",           # unclosed
    "app in (a b)",           # missing comma
    "=etcd",                  # no key
    "app etcd",               # no operator
    "app=etcd,",              # trailing comma
    "app=etcd extra",
    "!app=etcd",              # a negated key takes no value
    "app>x",                  # comparisons take integers
    "-bad=1",                 # a label key starts with an alphanumeric character
    "Example.COM/app=1",      # a key prefix is a lowercase DNS subdomain
    f"app={'v' * 64}",        # a label value has at most 63 characters
    "app=a b",
    "app=x&y",
]


@pytest.mark.parametrize("selector", BAD)
def test_invalid_selectors_are_refused_as_the_api_server_refuses_them(selector: str) -> None:
    with pytest.raises(LabelSelectorError, match="unable to parse requirement"):
        LabelSelector.parse(selector)


@pytest.mark.parametrize("selector", [s for s, _ in MATCHES if "()" not in s and ">" not in s and "<" not in s])
def test_agrees_with_the_lab_api_server(selector: str) -> None:
    """The lab's test server implements the same grammar independently (without the rarely used
    ``in ()`` and integer comparisons): both must select the same objects."""
    from kkp_readiness.lab.kubeapi.selectors import label_matcher

    objects = [{"metadata": {"labels": labels}} for labels in
               (LABELS, {}, {"app": "nginx"}, {"app": "etcd", "tier": "worker"}, {"missing": "x", "in": "notin"})]
    assert LabelSelector.parse(selector).select(objects) == [o for o in objects if label_matcher(selector)(o)]


# ----------------------------------------------------------------------------- secrets


def test_secret_data_is_stripped_wherever_a_secret_appears() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": {"password": "aHVudGVyMg=="},
              "stringData": {"token": "t0k3n"},
              "metadata": {"name": "s", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{..}",
                                                        "keep": "me"}}}
    document = {"kind": "List", "items": [secret, {"kind": "ConfigMap", "data": {"a": "b"}}],
                "nested": {"kind": "SecretList", "items": [{"metadata": {"name": "x"}, "data": {"k": "dg=="}}]}}
    clean = strip_secret_data(document)
    assert "data" not in clean["items"][0]
    assert "stringData" not in clean["items"][0]
    assert clean["items"][0]["metadata"]["annotations"] == {"keep": "me"}
    assert clean["items"][1]["data"] == {"a": "b"}  # a ConfigMap keeps its data
    assert "data" not in clean["nested"]["items"][0]
    assert "data" in secret, "the input is not modified"


def test_the_declared_list_never_collects_secrets() -> None:
    assert not [r for r in RESOURCES if r.plural == "secrets" or "secret" in r.key]
    # ConfigMaps of KKP's own namespace only (the CA bundle): elsewhere they may hold credentials.
    assert [(r.plural, r.namespace) for r in RESOURCES if r.plural == "configmaps"] == [("configmaps", "kubermatic")]


def test_a_namespace_restricted_kind_answers_for_its_namespace_only(tmp_path) -> None:
    reader = FakeReader()
    reader.lists["configmaps"] = [{"metadata": {"namespace": "kubermatic", "name": "ca-bundle"},
                                   "data": {"ca-bundle.pem": "PEM"}}]
    collect(_loaded(), tmp_path / "audit", [("seed-1", reader)])
    offline = SnapshotReader(tmp_path / "audit" / "seed-1")
    assert offline.list("configmaps", namespace="kubermatic") == reader.lists["configmaps"]
    with pytest.raises(KubeProbeError, match="configmaps of namespace kubermatic only, not all namespaces"):
        offline.list("configmaps")


def test_the_dex_summary_is_collected_and_read_back(tmp_path) -> None:
    reader = FakeReader()
    collect(_loaded(), tmp_path / "audit", [("seed-1", reader)])
    assert SnapshotReader(tmp_path / "audit" / "seed-1").document("dex-configuration") == reader.document(
        "dex-configuration")


def test_the_declared_list_covers_what_the_brief_and_the_reader_name() -> None:
    keys = {r.key for r in RESOURCES}
    assert {"version", "core.v1.nodes", "core.v1.namespaces", "core.v1.pods", "core.v1.services",
            "core.v1.persistentvolumeclaims", "storage.k8s.io.v1.storageclasses", "apps.v1.daemonsets",
            "apps.v1.deployments", "apps.v1.statefulsets", "metallb.io.v1beta1.ipaddresspools",
            "metallb.io.v1beta1.l2advertisements", "metallb.io.v1beta1.bgppeers",
            "metallb.io.v1beta1.bgpadvertisements", "cert-manager.io.v1.clusterissuers",
            "kubermatic.k8c.io.v1.seeds", "kubermatic.k8c.io.v1.kubermaticconfigurations"} <= keys
    # Every kind the live reader can list is collected, with the same group and scope: a check that
    # reads a kind the snapshot lacks would end as an error offline only.
    listed = {r.plural: r for r in RESOURCES if r.how == "list"}
    for plural, (group, _, _, namespaced) in kube._RESOURCES.items():
        assert plural in listed, f"ClusterReader lists {plural}; add it to snapshot.RESOURCES"
        assert (listed[plural].group, listed[plural].namespaced) == (group, namespaced), plural


def test_the_declared_list_covers_every_custom_kind_the_checks_ask_for() -> None:
    from kkp_readiness import kkp_facts, network_facts

    kinds = [*network_facts.CUSTOM_KINDS, *kkp_facts.CUSTOM_KINDS]
    declared = [v for module in (network_facts, kkp_facts) for v in vars(module).values()
                if isinstance(v, network_facts.CustomKind)]
    assert set(declared) == set(kinds), "a CustomKind the checks read is missing from a CUSTOM_KINDS tuple"
    collected = {(r.group, r.version, r.plural) for r in RESOURCES if r.how == "custom"}
    missing = [f"{k.plural}.{k.group}/{version}" for k in kinds for version in k.versions
               if (k.group, version, k.plural) not in collected]
    assert not missing, f"the checks read {missing}: add them to snapshot.RESOURCES"


def test_snapshot_reader_has_exactly_the_cluster_reader_read_interface() -> None:
    def public(cls: type) -> dict[str, Any]:
        return {name: member for name, member in vars(cls).items() if not name.startswith("_")}

    live, offline = public(kube.ClusterReader), public(SnapshotReader)
    assert set(live) == set(offline)
    for name, member in live.items():
        if callable(member):
            assert str(inspect.signature(member)) == str(inspect.signature(offline[name])), name
        else:
            assert isinstance(offline[name], property), name


# ----------------------------------------------------------------------------- write and read back


def _node(name: str, zone: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone},
                         "creationTimestamp": "2025-06-02T08:00:00+00:00"},
            "status": {"capacity": {"cpu": "4", "memory": "16Gi"}}}


def _pod(namespace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "labels": labels}, "status": {"phase": "Running"}}


class FakeReader:
    """What a ClusterReader returns, for a cluster with MetalLB but without cert-manager or KKP."""

    server = "https://127.0.0.1:6443"
    served: ClassVar[dict[tuple[str, str, str], bool]] = {
        ("metallb.io", "v1beta1", "ipaddresspools"): True,
        ("metallb.io", "v1beta1", "l2advertisements"): True,
        ("metallb.io", "v1beta1", "bgppeers"): True,
        ("metallb.io", "v1beta1", "bgpadvertisements"): True,
    }

    def __init__(self, forbidden: tuple[str, ...] = ()) -> None:
        self.forbidden = forbidden
        self.calls: list[str] = []
        self.lists: dict[str, list[dict[str, Any]]] = {
            "nodes": [_node("cp-1", "a"), _node("cp-2", "b")],
            "pods": [_pod("kube-system", "etcd-cp-1", {"component": "etcd"}),
                     _pod("kube-system", "kube-proxy-1", {"k8s-app": "kube-proxy"}),
                     _pod("kubermatic", "etcd-0", {"component": "etcd"}),
                     # never collected, but if a Secret reached the writer it would lose its data
                     {"kind": "Secret", "metadata": {"namespace": "x", "name": "s"}, "data": {"k": "c2VjcmV0"}}],
            "storageclasses": [{"metadata": {"name": "kubermatic-fast"}, "allowVolumeExpansion": True}],
        }

    def version(self) -> dict[str, Any]:
        self.calls.append("version")
        return {"gitVersion": "v1.31.4", "major": "1", "minor": "31"}

    def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None) -> list[dict]:
        self.calls.append(resource)
        if resource in self.forbidden:
            raise KubeProbeError(f"forbidden: the check needs RBAC verb 'list' on '{resource}' (API server says: no)")
        return self.lists.get(resource, [])

    def document(self, name: str) -> dict[str, Any]:
        self.calls.append(name)
        return {"location": "Secret dex/dex (key config.yaml)", "namespace": "dex", "issuer": "https://kkp/dex",
                "connectors": [{"type": "ldap", "id": "ad", "name": "AD"}], "enablePasswordDB": False,
                "staticPasswords": 0}

    def list_custom(self, group: str, version: str, plural: str, namespace: str | None = None) -> list[dict]:
        self.calls.append(f"{plural}.{group}")
        if plural == "ipaddresspools":
            return [{"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                     "metadata": {"namespace": "metallb-system", "name": "kkp"},
                     "spec": {"addresses": ["192.0.2.10-192.0.2.20"]}}]
        return []


@pytest.fixture
def fake_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot, "_served",
                        lambda reader, r, cache=None: reader.served.get((r.group, r.version, r.plural)))


def _loaded() -> Any:
    return SimpleNamespace(name="site", path=Path("/profiles/site.yaml"), sha256="ab" * 32)


def test_collect_writes_files_and_manifest_and_reads_back_identically(tmp_path: Path, fake_discovery: None) -> None:
    reader = FakeReader()
    result = collect(_loaded(), tmp_path / "audit", [("seed-1", reader)], collected_at="2026-01-01T00:00:00+00:00")
    assert not result.problems
    seed_dir = tmp_path / "audit" / "seed-1"
    assert (seed_dir / "version.yaml").is_file()
    assert (seed_dir / "core.v1.nodes.yaml").is_file()
    assert (seed_dir / "storage.k8s.io.v1.storageclasses.yaml").is_file()
    assert (seed_dir / "metallb.io.v1beta1.ipaddresspools.yaml").is_file()
    assert not (seed_dir / "cert-manager.io.v1.clusterissuers.yaml").exists()
    assert "secrets" not in reader.calls

    manifest = yaml.safe_load((tmp_path / "audit" / "manifest.yaml").read_text())
    assert (manifest["profile"], manifest["profile_sha256"]) == ("site", "ab" * 32)
    assert manifest["collected_at"] == "2026-01-01T00:00:00+00:00"
    assert manifest["tool_version"]
    seed = manifest["seeds"]["seed-1"]
    assert seed["server"] == "https://127.0.0.1:6443"
    assert seed["complete"] is True
    assert seed["resources"]["core.v1.nodes"]["count"] == 2
    assert seed["resources"]["cert-manager.io.v1.clusterissuers"]["status"] == "absent"
    nodes_file = yaml.safe_load((seed_dir / "core.v1.nodes.yaml").read_text())
    assert nodes_file["kind"] == "List"
    assert len(nodes_file["items"]) == 2

    offline = SnapshotReader(seed_dir)
    assert offline.server == "https://127.0.0.1:6443"
    assert offline.version() == FakeReader().version()
    assert offline.nodes() == reader.lists["nodes"]
    assert offline.storage_classes() == reader.lists["storageclasses"]
    assert [p["metadata"]["name"] for p in offline.list("pods", namespace="kube-system",
                                                           label_selector="component=etcd")] == ["etcd-cp-1"]
    assert [p["metadata"]["name"] for p in offline.list("pods", label_selector="component in (etcd)")] \
        == ["etcd-cp-1", "etcd-0"]
    assert offline.list("nodes", namespace="kube-system") == reader.lists["nodes"]  # cluster-scoped: ignored
    secret = next(p for p in offline.list("pods") if p.get("kind") == "Secret")
    assert "data" not in secret
    assert "c2VjcmV0" not in "".join(p.read_text() for p in seed_dir.iterdir())

    pools = offline.list_custom("metallb.io", "v1beta1", "ipaddresspools")
    assert pools[0]["spec"]["addresses"] == ["192.0.2.10-192.0.2.20"]
    assert offline.list_custom("metallb.io", "v1beta1", "ipaddresspools", namespace="metallb-system") == pools
    assert offline.list_custom("metallb.io", "v1beta1", "ipaddresspools", namespace="other") == []
    # Absent (CRD not installed) is what the live reader answers a 404 with: no objects.
    assert offline.list_custom("cert-manager.io", "v1", "clusterissuers") == []


def test_what_the_snapshot_lacks_is_an_error_naming_it(tmp_path: Path, fake_discovery: None) -> None:
    collect(_loaded(), tmp_path / "audit", [("seed-1", FakeReader())])
    offline = SnapshotReader(tmp_path / "audit" / "seed-1")
    with pytest.raises(KubeProbeError, match=r"^the snapshot has no endpoints; collect it with kkp-readiness collect$"):
        offline.list("endpoints")
    with pytest.raises(KubeProbeError, match=r"^the snapshot has no ciliumnodes\.cilium\.io/v2; "
                                             r"collect it with kkp-readiness collect$"):
        offline.list_custom("cilium.io", "v2", "ciliumnodes")
    with pytest.raises(KubeProbeError, match=r"the snapshot .* has no seed seed-2; collect it"):
        SnapshotReader(tmp_path / "audit" / "seed-2").nodes()
    with pytest.raises(KubeProbeError, match="failed with HTTP 400: unable to parse requirement"):
        offline.list("pods", label_selector="component in etcd")


def test_an_unreadable_resource_is_recorded_and_replayed_as_the_same_error(tmp_path: Path,
                                                                           fake_discovery: None) -> None:
    result = collect(_loaded(), tmp_path / "audit", [("seed-1", FakeReader(forbidden=("storageclasses",)))])
    assert set(result.problems) == {"seed-1"}
    reason = result.problems["seed-1"]["storage.k8s.io.v1.storageclasses"]
    assert reason.startswith("forbidden: the check needs RBAC verb 'list'")
    assert any(problem and "seed seed-1 could not be read (storage.k8s.io.v1.storageclasses)" in line
               for problem, line in result.report_lines())
    with pytest.raises(KubeProbeError) as raised:
        SnapshotReader(tmp_path / "audit" / "seed-1").storage_classes()
    assert str(raised.value) == reason
    assert SnapshotReader(tmp_path / "audit" / "seed-1").nodes()  # the rest was collected


def test_a_file_changed_after_collection_is_refused(tmp_path: Path, fake_discovery: None) -> None:
    collect(_loaded(), tmp_path / "audit", [("seed-1", FakeReader())])
    nodes = tmp_path / "audit" / "seed-1" / "core.v1.nodes.yaml"
    nodes.write_text(nodes.read_text().replace("cp-2", "cp-9"))
    with pytest.raises(KubeProbeError, match="does not match the sha256 in its manifest"):
        SnapshotReader(tmp_path / "audit" / "seed-1").nodes()


def test_resolved_secrets_of_the_profile_are_scrubbed(tmp_path: Path, fake_discovery: None) -> None:
    reader = FakeReader()
    reader.lists["nodes"][0]["metadata"]["annotations"] = {"note": "password hunter2-secret inside"}
    before = redact.registered()
    redact.register("hunter2-secret")
    try:
        collect(_loaded(), tmp_path / "audit", [("seed-1", reader)])
    finally:
        redact.clear()
        for secret in before:
            redact.register(secret)
    text = (tmp_path / "audit" / "seed-1" / "core.v1.nodes.yaml").read_text()
    assert "hunter2-secret" not in text
    assert redact.MASK in text


def test_collect_refuses_a_directory_that_is_not_empty(tmp_path: Path, fake_discovery: None) -> None:
    (tmp_path / "audit").mkdir()
    (tmp_path / "audit" / "old.yaml").write_text("x: 1\n")
    with pytest.raises(SnapshotError, match="not an empty directory"):
        collect(_loaded(), tmp_path / "audit", [("seed-1", FakeReader())])
