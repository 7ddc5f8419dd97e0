"""PERF conformance: the results of a Sonobuoy or hydrophone run the profile points at (read-only).

The suite does not run the conformance suite (hours of load and workloads in the cluster); it reads the
results the site produced (``performance.conformance_results``) and judges them against the cluster.
"""

from __future__ import annotations

import pytest

from fixtures.cluster import Clusters
from fixtures.site import SeedTarget
from kkp_readiness import conformance
from kkp_readiness import kube_facts as facts
from kkp_readiness.errors import KubeProbeError
from kkp_readiness.evidence import Evidence
from kkp_readiness.profile import LoadedProfile
from kkp_readiness.verdict import expect

#: How many test names a message lists before it says "and N more" (the evidence has them all).
SHOWN = 5


def _names(names: tuple[str, ...]) -> str:
    shown = "; ".join(names[:SHOWN])
    return shown + (f"; and {len(names) - SHOWN} more (see the evidence)" if len(names) > SHOWN else "")


# Ensures the infrastructure runs a conformant Kubernetes: the site's conformance run passed every
# [Conformance] test, skipped none, and tested the Kubernetes minor the seed runs now (a run is per minor:
# results of an older minor say nothing about the current one; patch releases do not change the test set).
@pytest.mark.requirement("PERF-007")
def test_conformance_results_pass(clusters: Clusters, seed: SeedTarget, loaded_profile: LoadedProfile,
                                  evidence: Evidence) -> None:
    setting = loaded_profile.profile.performance.conformance_results
    path = loaded_profile.resolve_path(("performance", "conformance_results"), setting)
    if not path:
        pytest.skip("the profile names no conformance results (performance.conformance_results): run "
                    "`sonobuoy run --mode=certified-conformance` (or hydrophone) and point it at the results")
    server = clusters(seed).version().get("gitVersion", "")
    try:
        cluster_minor = facts.minor_version(server)
    except ValueError:
        raise KubeProbeError(f"the API server of seed {seed} reports no usable version ({server!r})") from None
    results = conformance.read_results(path)
    evidence.attach("conformance results", {**results.evidence(), "cluster_version": server})
    subject = f"conformance results {path} for seed {seed}"
    expect(results.total > 0, subject, expected="a conformance run's [Conformance] tests",
           found=f"no test named [Conformance] among {results.other_tests} test(s) of {results.junit}",
           fix="run the certified-conformance mode (sonobuoy run --mode=certified-conformance), not a subset")
    counts = (f"{len(results.passed)} of {results.total} [Conformance] tests passed, {len(results.failed)} "
              f"failed, {len(results.skipped)} skipped")
    problems = [f"{what}: {_names(names)}" for what, names in (("failed", results.failed),
                                                                 ("skipped", results.skipped)) if names]
    run_minor = facts.minor_version(results.server_version) if results.server_version else None
    if run_minor is None:
        problems.append(f"no Kubernetes version in the results ({results.version_source})")
    elif run_minor != cluster_minor:
        problems.append(f"a run against {results.server_version} ({results.version_source})")
    rerun = (f"run the whole conformance suite (sonobuoy run --mode=certified-conformance) against the cluster as "
             f"it is now ({server}), without skips, and point performance.conformance_results at its results")
    analyse = "analyse the failed tests (sonobuoy results <tarball> --mode=detailed) with the infrastructure provider"
    expect(not problems, subject,
           expected=f"every [Conformance] test passed, none failed or skipped, in a run against Kubernetes "
                    f"{cluster_minor} (seed {seed} runs {server}; a conformance run proves one minor version)",
           found="; ".join([counts, *problems]), fix=f"{analyse}, then {rerun}" if results.failed else rerun)
