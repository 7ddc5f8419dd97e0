"""SEED: how the master/seed cluster was provisioned, as its nodes show it (read-only)."""

from __future__ import annotations

import pytest

from fixtures.cluster import Clusters
from fixtures.site import SeedTarget
from kkp_readiness import kube_facts as facts
from kkp_readiness.evidence import Evidence
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect


# Ensures the seed is a KubeOne cluster (what KKP's support and upgrade paths assume): KubeOne's
# operating-system label on every control-plane node.
@pytest.mark.requirement("SEED-001")
def test_seed_provisioned_with_kubeone(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                       evidence: Evidence) -> None:
    if profile.infra.provisioner != "kubeone":
        pytest.skip(f"the profile records provisioning by other means (infra.provisioner: {profile.infra.provisioner})")
    control_plane = [n for n in clusters(seed).nodes() if facts.is_control_plane(n)]
    marks = {facts.name(n): facts.labels(n).get(facts.KUBEONE_OS_LABEL) for n in control_plane}
    evidence.attach(f"{facts.KUBEONE_OS_LABEL} on control-plane nodes", marks)
    unmarked = sorted(n for n, value in marks.items() if not value)
    expect(bool(marks) and not unmarked, f"control-plane nodes of seed {seed}",
           expected=f"KubeOne's label {facts.KUBEONE_OS_LABEL} on each (provisioned by KubeOne)",
           found=f"no such label on {', '.join(unmarked)}" if unmarked else "no control-plane node")


# Ensures every seed machine runs an operating system KubeOne can provision, upgrade and repair.
@pytest.mark.requirement("SEED-002")
def test_seed_os_supported_by_kubeone(clusters: Clusters, seed: SeedTarget, evidence: Evidence) -> None:
    images = {facts.name(n): facts.os_image(n) for n in clusters(seed).nodes()}
    evidence.attach(f"osImage of the nodes of seed {seed}", images)
    version, rules = facts.kubeone_os_rules()
    unsupported = {n: image or "(not reported)" for n, image in images.items() if not facts.kubeone_supports(image)}
    expect(bool(images) and not unsupported, f"nodes of seed {seed}",
           expected=f"an OS KubeOne {version} supports ({'; '.join(name for name, _ in rules)})",
           found=", ".join(f"{n}: {image}" for n, image in sorted(unsupported.items())) or "no nodes")
