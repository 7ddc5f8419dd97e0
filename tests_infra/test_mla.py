"""MLA placement: the user-cluster MLA stack on nodes of its own, when the profile plans them (read-only)."""

from __future__ import annotations

import pytest

from fixtures.cluster import Clusters
from fixtures.site import SeedTarget
from kkp_readiness import kkp_facts as kkp
from kkp_readiness import kube_facts as facts
from kkp_readiness import network_facts as net
from kkp_readiness.evidence import Evidence
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect


# Ensures Cortex and Loki cannot starve KKP's own workloads: labelled, tainted MLA nodes, and every
# MLA workload bound to them (node selector or required affinity) and tolerating their taint.
@pytest.mark.requirement("PERF-009")
def test_mla_runs_on_dedicated_nodes(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                     evidence: Evidence) -> None:
    plan = profile.mla
    if not plan.dedicated_nodes:
        pytest.skip("the profile plans no dedicated MLA nodes (mla.dedicated_nodes: false)")
    assert plan.taint is not None  # the profile model requires it with dedicated_nodes
    taint = kkp.parse_taint(plan.taint)
    reader = clusters(seed)
    labelled = [n for n in reader.nodes() if all(facts.labels(n).get(k) == v for k, v in plan.node_labels.items())]
    untainted = sorted(facts.name(n) for n in labelled if not kkp.has_taint(n, taint))
    selector = ",".join(f"{k}={v}" for k, v in plan.node_labels.items())
    workloads = net.workloads(reader, kkp.USER_MLA_NAMESPACE)
    placement = {f"{w.get('kind', '')} {net.ref(w)}": {
        "bound_to_mla_nodes": kkp.bound_to_labels(facts.pod_spec(w), plan.node_labels),
        "tolerates_taint": kkp.tolerates(facts.pod_spec(w), taint)} for w in workloads}
    evidence.attach("MLA nodes and workloads", {"nodes": [facts.name(n) for n in labelled],
                                                "untainted": untainted, "workloads": placement})
    expect(len(labelled) >= plan.min_nodes and not untainted, f"MLA nodes of seed {seed}",
           expected=f"at least {plan.min_nodes} node(s) labelled {selector}, each tainted {plan.taint}",
           found=f"{len(labelled)} labelled" + (f"; without the taint: {', '.join(untainted)}" if untainted else ""))
    if not workloads:
        pytest.skip(f"the MLA nodes of seed {seed} are ready; the user-cluster MLA stack (namespace "
                    f"{kkp.USER_MLA_NAMESPACE}) is not deployed yet, its placement is checked once it is")
    stray = {ref: ", ".join(k for k, ok in state.items() if not ok) for ref, state in placement.items()
             if not all(state.values())}
    expect(not stray, f"MLA workloads in namespace {kkp.USER_MLA_NAMESPACE} of seed {seed}",
           expected=f"each bound to nodes labelled {selector} and tolerating {plan.taint}",
           found="; ".join(f"{ref}: not {what}" for ref, what in sorted(stray.items())))
