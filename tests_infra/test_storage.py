"""STORAGE: the storage classes KKP needs on each seed (read-only)."""

from __future__ import annotations

import pytest

from fixtures.cluster import Clusters, installed_kkp
from fixtures.site import SeedTarget
from kkp_readiness import kkp_facts as kkp
from kkp_readiness import kube_facts as facts
from kkp_readiness import network_facts as net
from kkp_readiness.errors import KubeProbeError
from kkp_readiness.evidence import Evidence
from kkp_readiness.probes.kube import ClusterReader
from kkp_readiness.profile_model import Profile
from kkp_readiness.snapshot import SnapshotReader
from kkp_readiness.verdict import expect


def classes_by_name(reader: ClusterReader, evidence: Evidence) -> dict[str, dict]:
    classes = {facts.name(c): c for c in reader.storage_classes()}
    evidence.attach("storage classes", {
        name: {key: c.get(key) for key in ("provisioner", "parameters", "volumeBindingMode", "allowVolumeExpansion")}
        | {"default": facts.is_default_class(c)}
        for name, c in classes.items()
    })
    return classes


def fast_class(reader: ClusterReader, profile: Profile, evidence: Evidence) -> dict:
    """The fast class, or an error: its properties cannot be judged when it does not exist (STORAGE-001)."""
    classes = classes_by_name(reader, evidence)
    if profile.storage.fast_class not in classes:
        raise KubeProbeError(f"cannot judge: storage class {profile.storage.fast_class} does not exist (STORAGE-001)")
    return classes[profile.storage.fast_class]


# Ensures the storage class KKP uses for etcd, monitoring and logging volumes exists.
@pytest.mark.requirement("STORAGE-001")
def test_fast_storage_class_exists(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                   evidence: Evidence) -> None:
    classes = classes_by_name(clusters(seed), evidence)
    expect(profile.storage.fast_class in classes, f"seed {seed}",
           expected=f"a StorageClass named {profile.storage.fast_class}",
           found=f"storage classes {', '.join(sorted(classes)) or '(none)'}")


# Ensures etcd's volumes sit on SSDs: the class's parameters select an SSD tier of its provisioner.
@pytest.mark.requirement("STORAGE-002")
def test_fast_class_is_ssd_backed(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                  evidence: Evidence) -> None:
    storage_class = fast_class(clusters(seed), profile, evidence)
    ssd, described = facts.ssd_judgement(storage_class, profile.storage.ssd_parameter_values)
    if ssd is None:
        raise KubeProbeError(f"cannot judge {profile.storage.fast_class}: {described}; list the site's SSD tier "
                             "names in storage.ssd_parameter_values")
    expect(ssd, f"{profile.storage.fast_class} on seed {seed}",
           expected="an SSD tier of its provisioner", found=described)


# Ensures volumes are created in the zone of their pod when nodes span zones.
@pytest.mark.requirement("STORAGE-003")
def test_fast_class_waits_for_first_consumer(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                             evidence: Evidence) -> None:
    reader = clusters(seed)
    zones = {facts.zone(n) for n in reader.nodes() if facts.zone(n)}
    if len(zones) < 2:
        pytest.skip(f"the nodes of seed {seed} are in {len(zones)} zone(s): binding mode does not matter")
    mode = fast_class(reader, profile, evidence).get("volumeBindingMode") or "Immediate"
    subject = f"{profile.storage.fast_class} on seed {seed} (zones {', '.join(sorted(zones))})"
    expect(mode == "WaitForFirstConsumer", subject,
           expected="volumeBindingMode WaitForFirstConsumer", found=f"volumeBindingMode {mode}")


# Ensures etcd, Prometheus and Loki volumes can grow without migration.
@pytest.mark.requirement("STORAGE-004")
def test_fast_class_allows_expansion(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                     evidence: Evidence) -> None:
    storage_class = fast_class(clusters(seed), profile, evidence)
    allowed = storage_class.get("allowVolumeExpansion")
    expect(allowed is True, f"{profile.storage.fast_class} on seed {seed}",
           expected="allowVolumeExpansion: true", found=f"allowVolumeExpansion: {allowed}")


# Ensures PVCs without a class bind predictably: exactly one default class.
@pytest.mark.requirement("STORAGE-005")
def test_one_default_storage_class(clusters: Clusters, seed: SeedTarget, evidence: Evidence) -> None:
    classes = classes_by_name(clusters(seed), evidence)
    defaults = sorted(name for name, c in classes.items() if facts.is_default_class(c))
    expect(len(defaults) == 1, f"seed {seed}",
           expected="exactly one StorageClass annotated storageclass.kubernetes.io/is-default-class=true",
           found=f"{len(defaults)} default class(es){': ' + ', '.join(defaults) if defaults else ''}")


# Ensures MinIO's backups get their own (cheaper, larger) class.
@pytest.mark.requirement("STORAGE-006")
def test_backup_storage_class_exists(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                     evidence: Evidence) -> None:
    if profile.storage.backup_class is None:
        pytest.skip("the profile acknowledges the default class for backups (storage.backup_class: null)")
    classes = classes_by_name(clusters(seed), evidence)
    expect(profile.storage.backup_class in classes, f"seed {seed}",
           expected=f"a StorageClass named {profile.storage.backup_class} for the MinIO backup store",
           found=f"storage classes {', '.join(sorted(classes)) or '(none)'}")


def claims_and_default(reader: ClusterReader | SnapshotReader) -> tuple[list[dict], str | None]:
    return reader.list("persistentvolumeclaims"), kkp.default_class_name(reader.storage_classes())


def claims_summary(claims: list[dict], default_class: str | None) -> dict[str, str | None]:
    return {net.ref(c): kkp.claim_class(c, default_class) for c in claims}


# Ensures user-cluster etcd snapshots have somewhere to go: a complete Seed backup destination,
# and a running store with a bound volume when the destination is the in-cluster MinIO.
@pytest.mark.requirement("STORAGE-007")
def test_backup_location_configured(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                    evidence: Evidence) -> None:
    """The S3 side (that the bucket answers with the credentials) needs the credentials Secret and
    the bucket's network; this check judges what the cluster shows: the Seed's destinations and,
    for an in-cluster endpoint, the store behind it."""
    objects = installed_kkp(clusters, seed, "the etcd backup configuration of the Seed")
    reader = clusters(seed)
    seed_object = objects.seed(seed.seed.name)
    if seed_object is None:
        raise KubeProbeError(f"cannot judge: the cluster of seed {seed} has no Seed object named {seed.seed.name} "
                             "(NET-004 reports which ones it has)")
    destinations, default = kkp.backup_destinations(seed_object)
    evidence.attach(f"etcd backup destinations of Seed {seed.seed.name}",
                    {"destinations": destinations, "defaultDestination": default})
    expect(bool(destinations), f"Seed {seed.seed.name}",
           expected="spec.etcdBackupRestore.destinations with at least one S3 destination",
           found="no backup destination")
    problems = [p for name, d in destinations.items() for p in kkp.destination_problems(name, d)]
    if default not in destinations:
        problems.append(f"defaultDestination {default or '(not set)'} is none of {', '.join(sorted(destinations))}")
    expect(not problems, f"etcd backup destinations of Seed {seed.seed.name}",
           expected="a defaultDestination naming a destination with endpoint, bucketName and credentials",
           found="; ".join(problems))
    wanted = profile.storage.s3_endpoint if profile.storage.backup_target == "s3" else None
    if wanted:
        endpoints = {str(d.get("endpoint", "")).rstrip("/") for d in destinations.values()}
        expect(str(wanted).rstrip("/") in endpoints, f"Seed {seed.seed.name}",
               expected=f"a destination with the profile's endpoint {wanted} (storage.s3_endpoint)",
               found=f"endpoints {', '.join(sorted(endpoints))}")
    for name, destination in destinations.items():
        service = kkp.in_cluster_service(str(destination.get("endpoint", "")))
        if service is not None:
            store_is_running(reader, seed, name, service, evidence)


def store_is_running(reader: ClusterReader | SnapshotReader, seed: SeedTarget, destination: str,
                     service: tuple[str, str], evidence: Evidence) -> None:
    """An in-cluster backup endpoint (MinIO): its workload is ready and every volume of it is bound."""
    namespace, name = service
    workloads = [w for w in net.workloads(reader, namespace) if facts.name(w) == name]
    claims = reader.list("persistentvolumeclaims", namespace=namespace)
    phases = {net.ref(c): (c.get("status") or {}).get("phase", "Pending") for c in claims}
    evidence.attach(f"backup store {namespace}/{name}", {
        "workloads": [net.describe_workload(w) for w in workloads],
        "volumes": phases})
    expect(any(net.workload_ready(w) for w in workloads), f"backup destination {destination} of seed {seed}",
           expected=f"a ready Deployment or StatefulSet {namespace}/{name} behind the in-cluster endpoint",
           found="; ".join(net.describe_workload(w) for w in workloads)
           or "no such workload")
    unbound = {ref: phase for ref, phase in phases.items() if phase != "Bound"}
    expect(bool(phases) and not unbound, f"volumes of the backup store {namespace}/{name}",
           expected="at least one PersistentVolumeClaim, all Bound",
           found=", ".join(f"{ref}: {phase}" for ref, phase in unbound.items()) or "no volume (data on an emptyDir)")


# Ensures user-cluster etcd runs on the fast class (etcd's fsync latency decides the control plane's).
@pytest.mark.requirement("STORAGE-008")
def test_user_cluster_etcd_uses_fast_class(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                           evidence: Evidence) -> None:
    pvcs, default_class = claims_and_default(clusters(seed))
    claims = kkp.user_cluster_etcd_claims(pvcs)
    if not claims:
        pytest.skip(f"seed {seed} runs no user cluster yet: their etcd volumes come with the first one")
    evidence.attach("user-cluster etcd volumes", claims_summary(claims, default_class))
    wrong = kkp.wrong_class_claims(claims, {profile.storage.fast_class}, default_class)
    expect(not wrong, f"user-cluster etcd volumes of seed {seed}",
           expected=f"storage class {profile.storage.fast_class} for every data-etcd claim in cluster-* namespaces",
           found=", ".join(f"{ref}: {cls}" for ref, cls in sorted(wrong.items())))


# Ensures Prometheus, Alertmanager, Loki and the user-cluster MLA stack write to the fast (or MLA) class.
@pytest.mark.requirement("STORAGE-009")
def test_monitoring_volumes_use_fast_class(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                           evidence: Evidence) -> None:
    pvcs, default_class = claims_and_default(clusters(seed))
    namespaces = [*kkp.SEED_MLA_NAMESPACES, *([kkp.USER_MLA_NAMESPACE] if seed.seed.mla else [])]
    claims = kkp.namespace_claims(pvcs, namespaces)
    if not claims:
        pytest.skip(f"no monitoring, logging or MLA volume in seed {seed} yet (namespaces {', '.join(namespaces)}): "
                    "they come with the seed-mla and usercluster-mla stacks")
    evidence.attach("monitoring, logging and MLA volumes", claims_summary(claims, default_class))
    allowed = {profile.storage.fast_class, *([profile.storage.mla_class] if profile.storage.mla_class else [])}
    wrong = kkp.wrong_class_claims(claims, allowed, default_class)
    expect(not wrong, f"monitoring, logging and MLA volumes of seed {seed}",
           expected=f"storage class {' or '.join(sorted(allowed))} in namespaces {', '.join(namespaces)}",
           found=", ".join(f"{ref}: {cls}" for ref, cls in sorted(wrong.items())))
