"""The facts read off KKP's objects, Dex's configuration and nodes: pure functions, both ways."""

from __future__ import annotations

import pytest

from kkp_readiness import dex_config
from kkp_readiness import kkp_facts as kkp
from kkp_readiness import kube_facts as facts
from kkp_readiness.errors import KubeProbeError


def _claim(namespace: str, name: str, storage_class: str | None, **labels: str) -> dict:
    spec = {} if storage_class is None else {"storageClassName": storage_class}
    return {"metadata": {"namespace": namespace, "name": name, "labels": labels}, "spec": spec}


@pytest.mark.parametrize(("endpoint", "service"), [
    ("http://minio.minio.svc.cluster.local:9000", ("minio", "minio")),
    ("https://s3.backup.svc:443/", ("backup", "s3")),
    ("minio.minio.svc", ("minio", "minio")),
    ("https://s3.eu-central-1.amazonaws.com", None),
    ("https://minio.example.com", None),
])
def test_in_cluster_service(endpoint: str, service: tuple[str, str] | None) -> None:
    assert kkp.in_cluster_service(endpoint) == service


def test_destination_problems_name_what_is_missing() -> None:
    complete = {"endpoint": "s3.example", "bucketName": "b", "credentials": {"name": "c", "namespace": "kube-system"}}
    assert kkp.destination_problems("s3", complete) == []
    assert kkp.destination_problems("s3", {"endpoint": "s3.example", "credentials": {"name": "c"}}) == [
        "destination s3 has no bucketName, credentials.namespace"]


def test_backup_destinations_of_a_seed() -> None:
    backup = {"destinations": {"minio": {"endpoint": "x"}}, "defaultDestination": "minio"}
    seed = {"spec": {"etcdBackupRestore": backup}}
    assert kkp.backup_destinations(seed) == ({"minio": {"endpoint": "x"}}, "minio")
    assert kkp.backup_destinations({"spec": {}}) == ({}, None)
    assert kkp.backup_destinations(None) == ({}, None)


def test_claim_class_as_kubernetes_decides_it() -> None:
    pending = _claim("a", "b", None)
    assert kkp.claim_class(pending, "standard") == "standard"  # gets the default class retroactively
    bound = {**pending, "status": {"phase": "Bound"}}
    assert kkp.claim_class(bound, "standard") == ""  # created while no class was default: none
    assert kkp.claim_class(_claim("a", "b", ""), "standard") == ""
    assert kkp.claim_class(_claim("a", "b", "kubermatic-fast"), "standard") == "kubermatic-fast"


def test_the_newest_default_class_is_the_default() -> None:
    def sc(name: str, created: str, default: bool = True) -> dict:
        annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
        return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations}}

    assert kkp.default_class_name([sc("old", "2024-01-01T00:00:00Z"), sc("new", "2025-01-01T00:00:00Z"),
                                   sc("x", "2026-01-01T00:00:00Z", default=False)]) == "new"
    assert kkp.default_class_name([sc("x", "2026-01-01T00:00:00Z", default=False)]) is None


def test_user_cluster_etcd_claims_and_wrong_classes() -> None:
    claims = [_claim("cluster-abc123", "data-etcd-0", "kubermatic-fast", app="etcd"),
              _claim("cluster-abc123", "data-etcd-1", None, app="etcd"),
              _claim("cluster-abc123", "other", "standard", app="prometheus"),
              _claim("kube-system", "data-etcd-0", "standard", app="etcd")]
    etcd = kkp.user_cluster_etcd_claims(claims)
    assert [c["metadata"]["name"] for c in etcd] == ["data-etcd-0", "data-etcd-1"]
    assert kkp.wrong_class_claims(etcd, {"kubermatic-fast"}, "standard") == {"cluster-abc123/data-etcd-1": "standard"}
    assert kkp.wrong_class_claims([_claim("m", "p", "")], {"kubermatic-fast"}, None) == {"m/p": "no class"}


def test_ready_condition() -> None:
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "ACMEAccountRegistered"}]}}
    assert kkp.ready_condition(ready) == (True, "Ready=True (ACMEAccountRegistered)")
    assert kkp.ready_condition({"status": {}}) == (False, "no Ready condition")
    assert kkp.ready_condition(None) == (False, "no Ready condition")


@pytest.mark.parametrize(("solvers", "chosen"), [
    ([{"dns01": {"rfc2136": {}}}], 0),
    ([{"http01": {}}, {"selector": {"dnsZones": ["KKP.lab"]}, "dns01": {"cloudflare": {}}}], 1),
    # the longest matching zone wins over a shorter one and over no selector
    ([{"dns01": {"a": {}}}, {"selector": {"dnsZones": ["lab"]}, "http01": {}},
      {"selector": {"dnsZones": ["kkp.lab"]}, "dns01": {"b": {}}}], 2),
    # dnsNames beats every zone; cert-manager uses HTTP01 here although a DNS01 solver exists
    ([{"selector": {"dnsNames": ["kkp.lab"]}, "http01": {}}, {"dns01": {"route53": {}}}], 0),
    # a selector whose zones miss the domain does not apply; the empty one does
    ([{"selector": {"dnsZones": ["other.lab"]}, "dns01": {"route53": {}}}, {"http01": {}}], 1),
    # matchLabels: cannot know the Certificate's labels, left out even with a matching zone
    ([{"selector": {"matchLabels": {"a": "b"}, "dnsZones": ["kkp.lab"]}, "dns01": {"route53": {}}}], None),
    # first wins a tie
    ([{"http01": {}}, {"dns01": {"route53": {}}}], 0),
    ([], None),
])
def test_solver_for_follows_cert_managers_selection(solvers: list, chosen: int | None) -> None:
    found = kkp.solver_for({"spec": {"acme": {"solvers": solvers}}}, "kkp.lab")
    assert (found[0] if found else None) == chosen


def test_describe_solver_names_type_provider_and_selector_only() -> None:
    solver = {"selector": {"dnsZones": ["kkp.lab"]}, "dns01": {"webhook": {"config": {"apiKey": "k"}}}}
    assert kkp.describe_solver(1, solver) == "solvers[1] dns01/webhook (dnsZones kkp.lab)"
    assert kkp.describe_solver(0, {"dns01": None}) == "solvers[0] dns01"
    assert kkp.describe_solver(0, {"http01": {"ingress": {}}}) == "solvers[0] http01/ingress"


def test_a_copied_configuration_is_not_the_master_s() -> None:
    copy = {"metadata": {"name": "kubermatic", "labels": {kkp.MANAGED_BY_LABEL: kkp.SEED_SYNC_CONTROLLER}}}
    assert kkp.KkpObjects([], [copy]).configuration is None
    assert kkp.KkpObjects([], [copy]).installed
    own = {"metadata": {"name": "kubermatic"}}
    assert kkp.KkpObjects([], [copy, own]).configuration is own


def test_taints_tolerations_and_placement() -> None:
    taint = kkp.parse_taint("lab.kkp/role=mla:NoSchedule")
    assert kkp.parse_taint("dedicated:NoExecute") == {"key": "dedicated", "value": "", "effect": "NoExecute"}
    assert kkp.has_taint({"spec": {"taints": [{"key": "lab.kkp/role", "value": "mla", "effect": "NoSchedule"}]}}, taint)
    assert not kkp.has_taint({"spec": {"taints": [{"key": "lab.kkp/role", "value": "x", "effect": "NoSchedule"}]}},
                             taint)
    assert kkp.tolerates({"tolerations": [{"key": "lab.kkp/role", "operator": "Exists"}]}, taint)
    assert kkp.tolerates({"tolerations": [{"operator": "Exists"}]}, taint)
    assert kkp.tolerates({"tolerations": [{"key": "lab.kkp/role", "value": "mla", "effect": "NoSchedule"}]}, taint)
    assert not kkp.tolerates({"tolerations": [{"key": "lab.kkp/role", "value": "mla", "effect": "NoExecute"}]}, taint)
    assert not kkp.tolerates({}, taint)
    labels = {"lab.kkp/role": "mla"}
    assert kkp.bound_to_labels({"nodeSelector": {"lab.kkp/role": "mla", "x": "y"}}, labels)
    term = {"matchExpressions": [{"key": "lab.kkp/role", "operator": "In", "values": ["mla"]}]}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    assert kkp.bound_to_labels({"affinity": affinity}, labels)
    split = {"nodeSelector": {"a": "1"}, "affinity": affinity}
    assert kkp.bound_to_labels(split, {"a": "1", "lab.kkp/role": "mla"})
    loose = {"matchExpressions": [{"key": "lab.kkp/role", "operator": "In", "values": ["mla", "other"]}]}
    affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"].append(loose)
    assert not kkp.bound_to_labels({"affinity": affinity}, labels)
    assert not kkp.bound_to_labels({}, labels)


def test_dex_summary_keeps_no_secret() -> None:
    text = ("issuer: https://kkp/dex\nconnectors:\n- {type: ldap, id: ad, name: AD, config: {bindPW: hunter2}}\n"
            "staticClients: [{id: kubermatic, secret: s3cr3t}]\nenablePasswordDB: true\n"
            "staticPasswords: [{email: a@b, hash: '$2a$10$x'}]\n")
    summary = dex_config.summarize(text)
    assert summary == {"issuer": "https://kkp/dex", "connectors": [{"type": "ldap", "id": "ad", "name": "AD"}],
                       "enablePasswordDB": True, "staticPasswords": 1}
    assert not {"hunter2", "s3cr3t", "$2a$10$x"} & set(str(summary).split("'"))


def test_dex_read_takes_the_first_location_and_explains_bad_documents() -> None:
    seen = []

    def read_key(kind: str, namespace: str, name: str, key: str) -> str | None:
        seen.append((kind, namespace))
        return "connectors: []\n" if kind == "ConfigMap" else None

    summary = dex_config.read(read_key)
    assert seen == [("Secret", "dex"), ("ConfigMap", "oauth")]
    assert summary["location"] == "ConfigMap oauth/dex (key config.yaml)"
    assert summary["connectors"] == []
    assert dex_config.read(lambda *_: None) == {"location": None}
    with pytest.raises(KubeProbeError, match=r"Secret dex/dex .*: not a YAML mapping"):
        dex_config.read(lambda *_: "- just a list")


@pytest.mark.parametrize(("image", "supported"), [
    ("Ubuntu 24.04.1 LTS", True), ("Ubuntu 22.04 LTS", True), ("Ubuntu 18.04.6 LTS", False),
    ("Rocky Linux 8.10 (Green Obsidian)", True), ("Rocky Linux 9.4 (Blue Onyx)", False),
    ("Red Hat Enterprise Linux 8.10 (Ootpa)", True), ("Flatcar Container Linux by Kinvolk 3815.2.0 (Oklo)", True),
    ("Amazon Linux 2", True), ("CentOS Linux 7 (Core)", False), ("", False),
])
def test_kubeone_os_support(image: str, supported: bool) -> None:
    assert (facts.kubeone_supports(image) is not None) is supported


def test_volume_nodes_and_csi_registrations() -> None:
    assert facts.carries_volumes({"spec": {}})
    assert not facts.carries_volumes({"spec": {"unschedulable": True}})
    assert facts.carries_volumes({"spec": {"taints": [{"key": "mla", "effect": "NoSchedule"}]}})
    control_plane = {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}, "spec": {}}
    assert not facts.carries_volumes(control_plane)
    driver = "csi.vsphere.vmware.com"
    assert facts.csi_drivers_on({"spec": {"drivers": [{"name": driver}]}}) == {driver}
    deployment = {"spec": {"template": {"spec": {"containers": [{"name": "driver"}, {"name": "csi-provisioner"}]}}}}
    assert facts.runs_container(deployment, facts.CSI_PROVISIONER_CONTAINER)
