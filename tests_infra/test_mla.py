"""MLA placement and sizing: the user-cluster MLA stack on nodes of its own, when the profile plans them, and
large enough for the profile's expected load (read-only)."""

from __future__ import annotations

import pytest

from fixtures.cluster import Clusters
from fixtures.site import SeedTarget
from kkp_readiness import kkp_facts as kkp
from kkp_readiness import kube_facts as facts
from kkp_readiness import mla_capacity as capacity
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


# Sizes the MLA stack with Cortex's capacity-planning rules (kkp_readiness/mla_capacity.py): the
# ingesters' memory must fit into the MLA nodes, metrics and logs over the retention into the storage.
@pytest.mark.requirement("PERF-008")
def test_mla_capacity_fits(clusters: Clusters, seed: SeedTarget, profile: Profile, evidence: Evidence) -> None:
    plan = profile.mla
    load = plan.capacity
    if load is None:
        pytest.skip("the profile gives no expected MLA load (mla.capacity: active_series, logs_gib_per_day)")
    est = capacity.estimate(load.active_series, retention_days=load.retention_days,
                            logs_gib_per_day=load.logs_gib_per_day, replication_factor=load.replication_factor,
                            ingesters=load.ingesters, scrape_interval_seconds=load.scrape_interval)
    reader = clusters(seed)
    if plan.node_labels:
        selector = ",".join(f"{k}={v}" for k, v in plan.node_labels.items())
        nodes = [n for n in reader.nodes() if all(facts.labels(n).get(k) == v for k, v in plan.node_labels.items())]
        serving = f"the MLA nodes ({selector})"
    else:
        nodes = [n for n in reader.nodes() if not facts.is_control_plane(n)]
        serving = "the worker nodes (the profile names no MLA node labels)"
    memory = {facts.name(n): capacity.allocatable_memory(n) for n in nodes}
    claims: list[dict] = []
    if load.volume_gib is not None:
        offered, where = int(load.volume_gib * capacity.GIB), "mla.capacity.volume_gib of the profile"
    else:
        claims = reader.list("persistentvolumeclaims", namespace=kkp.USER_MLA_NAMESPACE)
        offered = capacity.claimed_storage(claims)
        where = f"requests of {len(claims)} PVC(s) in namespace {kkp.USER_MLA_NAMESPACE}"
    evidence.attach("MLA capacity estimate", {
        "inputs": load.model_dump(), "estimate": est.as_dict(), "nodes": serving,
        "allocatable_memory_bytes": memory, "storage_offered_bytes": offered, "storage_offered_by": where,
        "claims": [facts.name(c) for c in claims]})
    if not nodes:
        pytest.skip(f"seed {seed} has no node for the MLA stack yet ({serving}); PERF-009 judges its placement")
    fits = capacity.memory_fit(est, memory)
    expect(fits.ok, f"ingester memory for the MLA load of seed {seed}",
           expected=f"{fits.needed} (Cortex: 15 GB per million series x replication factor, for "
                    f"{est.describe()}) fits into {serving}",
           found=fits.offered,
           fix="add or enlarge MLA nodes (keep headroom: WAL replay and resharding need more memory for a while), "
               "or lower the active series")
    if load.volume_gib is None and not claims:
        pytest.skip(f"the MLA memory of seed {seed} fits; no storage to compare with: no mla.capacity.volume_gib "
                    f"in the profile and no PVC in namespace {kkp.USER_MLA_NAMESPACE} (the MLA stack is not "
                    f"deployed yet)")
    stores = capacity.storage_fit(est, offered, where)
    expect(stores.ok, f"MLA storage of seed {seed}",
           expected=f"{stores.needed} (Cortex: 19 GB per million series per day; logs: volume x retention, "
                    f"for {est.describe()}) fits into the storage",
           found=stores.offered,
           fix="enlarge the MinIO and ingester volumes (mla.capacity.volume_gib when planned), or shorten the "
               "retention")
