"""Active checks (``--active``): the cluster really hands out load-balancer addresses and volumes.

They create a LoadBalancer Service, and a PVC with a pod that mounts it, in a namespace of the
run's own, wait up to ``active.timeout`` and delete the namespace at the end of the run.
"""

from __future__ import annotations

import pytest

from fixtures.active import ActiveSessions
from fixtures.site import SeedTarget
from kkp_readiness import kube_facts as facts
from kkp_readiness.errors import KubeProbeError
from kkp_readiness.evidence import Evidence
from kkp_readiness.probes.kube_active import external_addresses
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect


# Ensures a Service of type LoadBalancer gets an external address in time.
@pytest.mark.requirement("LB-010")
def test_load_balancer_service_gets_an_address(active: ActiveSessions, seed: SeedTarget, profile: Profile,
                                               evidence: Evidence) -> None:
    session = active(seed)
    result = session.load_balancer()
    evidence.attach(f"test Service in {session.namespace}", result.objects)
    addresses = external_addresses(result.objects.get("service", {}))
    expect(result.done, f"Service {session.namespace}/lb-probe on seed {seed}",
           expected=f"an external address within {profile.active.timeout:g} s",
           found=f"after {result.waited:.1f} s: {', '.join(addresses) or 'no address (pending)'}")


# Ensures a kubermatic-fast volume binds and a pod using it starts, in time.
@pytest.mark.requirement("STORAGE-010")
def test_fast_volume_binds(active: ActiveSessions, seed: SeedTarget, profile: Profile, evidence: Evidence) -> None:
    session = active(seed)
    classes = {facts.name(c) for c in session.reader.storage_classes()}
    if profile.storage.fast_class not in classes:
        raise KubeProbeError(f"cannot judge: storage class {profile.storage.fast_class} does not exist (STORAGE-001)")
    result = session.bound_volume(profile.storage.fast_class, profile.active.image)
    evidence.attach(f"test claim and pod in {session.namespace}", result.objects)
    claim = result.objects.get("claim", {}).get("status", {}).get("phase", "?")
    pod = result.objects.get("pod", {}).get("status", {}).get("phase", "?")
    expect(result.done, f"PVC {session.namespace}/volume-probe ({profile.storage.fast_class}) on seed {seed}",
           expected=f"claim Bound and pod Running within {profile.active.timeout:g} s",
           found=f"after {result.waited:.1f} s: claim {claim}, pod {pod}")
