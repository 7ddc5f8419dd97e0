"""SEED: how the master/seed cluster was provisioned, as its nodes show it (read-only)."""

from __future__ import annotations

import pytest

from fixtures.bastion import Bastion
from fixtures.cluster import Clusters
from fixtures.site import SeedTarget
from kkp_readiness import kube_facts as facts
from kkp_readiness.evidence import Evidence
from kkp_readiness.probes import ssh
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


# Ensures KubeOne can administer each seed machine: SSH through the bastion with a verified host key
# as the KubeOne user, and `sudo -n true` (sudo without a password, what KubeOne runs its steps with).
@pytest.mark.requirement("SEED-003")
def test_seed_machine_admin_through_bastion(bastion: Bastion, bastion_node: str, evidence: Evidence) -> None:
    user = bastion.spec.node_user or bastion.user
    subject = f"seed machine {bastion_node} as {user} through bastion {bastion.host}"
    bastion.session()  # an unusable bastion is an error of this check, not a finding about the machine
    try:
        check, result = bastion.on_node(bastion_node, "sudo -n true", user=user)
    except ssh.SshAuthRejected as exc:
        expect(False, subject, expected=f"the key is accepted for {user}", found=str(exc))
    except ssh.SshProbeError as exc:
        expect(False, subject, expected="SSH answers through the bastion", found=str(exc))
    evidence.attach(f"host key of {bastion_node}", check.evidence)
    expect(check.verified_by is not None, subject, expected="a host key matching known_hosts", found=check.problem)
    assert result is not None
    evidence.attach("sudo -n true", {"exit_status": result.exit_status, "stderr": result.stderr.strip()[:300]})
    expect(result.exit_status == 0, subject, expected="`sudo -n true` succeeds (passwordless sudo)",
           found=f"exit {result.exit_status}: {result.stderr.strip()[:200] or result.stdout.strip()[:200]!r}")
