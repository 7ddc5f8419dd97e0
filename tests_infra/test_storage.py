"""STORAGE: the storage classes KKP needs on each seed (read-only)."""

from __future__ import annotations

import pytest

from fixtures.cluster import Clusters
from fixtures.site import SeedTarget
from kkp_readiness import kube_facts as facts
from kkp_readiness.errors import KubeProbeError
from kkp_readiness.evidence import Evidence
from kkp_readiness.probes.kube import ClusterReader
from kkp_readiness.profile_model import Profile
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
