"""NET: the address plan, how each seed exposes user-cluster control planes, Konnectivity for remote workers.

NET-003 is arithmetic on the profile alone (nothing is dialled).

Both read KKP's own objects (``kubermatic.k8c.io/v1`` Seed and KubermaticConfiguration, which KKP
keeps in every seed cluster) where KKP is installed; before that, NET-004 judges what the cluster
already shows and NET-005 cannot judge.
"""

from __future__ import annotations

import pytest

from fixtures.cluster import Clusters
from fixtures.site import SeedTarget
from kkp_readiness import address_plan as plan
from kkp_readiness import kkp_facts as kkp
from kkp_readiness import network_facts as net
from kkp_readiness.errors import KubeProbeError
from kkp_readiness.evidence import Evidence
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect


def kkp_objects(clusters: Clusters, seed: SeedTarget, evidence: Evidence) -> tuple[list[dict], list[dict]]:
    """(Seed objects, KubermaticConfigurations) in the seed's cluster; both empty before KKP is installed."""
    objects = kkp.kkp_objects(clusters(seed))
    seeds, configurations = objects.seeds, objects.configurations
    evidence.attach("KKP objects", {
        "seeds": {net.ref(s): (s.get("spec") or {}).get("exposeStrategy") for s in seeds},
        "kubermatic_configurations": {net.ref(c): {"exposeStrategy": (c.get("spec") or {}).get("exposeStrategy"),
                                                   "featureGates": (c.get("spec") or {}).get("featureGates")}
                                      for c in configurations},
    })
    return seeds, configurations


# Ensures each seed exposes user-cluster control planes with the strategy the profile plans.
@pytest.mark.requirement("NET-004")
def test_expose_strategy_matches_plan(clusters: Clusters, seed: SeedTarget, evidence: Evidence) -> None:
    """The rule.

    * KKP installed (the cluster serves a Seed or a KubermaticConfiguration object): the Seed named
      like the profile's seed must exist (when there are Seed objects); its ``spec.exposeStrategy``,
      else the KubermaticConfiguration's ``spec.exposeStrategy``, else KKP's default ``NodePort``,
      must equal the profile's ``seeds[].expose_strategy``; a NodePort/Tunneling seed must not set
      ``spec.nodeportProxy.disable: true``.
    * KKP not installed yet: NodePort and Tunneling route every user cluster through the seed's
      node-port-proxy, so the Service ``kubermatic/nodeport-proxy`` of type LoadBalancer must exist
      (whether it has its address is LB-007). For LoadBalancer nothing in the cluster shows the
      strategy before KKP's Seed exists: the check ends as ``error`` (cannot judge).
    """
    planned = seed.seed.expose_strategy
    seeds, configurations = kkp_objects(clusters, seed, evidence)
    if seeds or configurations:
        seed_object = net.find_seed(seeds, seed.seed.name)
        expect(seed_object is not None or not seeds, f"seed {seed}",
               expected=f"a Seed object named {seed.seed.name} (seeds[].name)",
               found=f"Seed objects {', '.join(net.ref(s) for s in seeds)}")
        strategy, source = net.effective_expose_strategy(seed_object, configurations)
        expect(strategy == planned, f"expose strategy of seed {seed}", expected=f"{planned} (the profile's plan)",
               found=f"{strategy} from {source}")
        proxy = ((seed_object or {}).get("spec") or {}).get("nodeportProxy") or {}
        expect(planned == "LoadBalancer" or proxy.get("disable") is not True, f"Seed {seed.seed.name}",
               expected=f"the node-port-proxy that {planned} routes through",
               found="spec.nodeportProxy.disable: true")
        return
    if planned == "LoadBalancer":
        raise KubeProbeError(
            f"cannot judge: seed {seed} holds no Seed or KubermaticConfiguration object (KKP is not installed yet) "
            "and nothing else in the cluster shows the LoadBalancer strategy; check spec.exposeStrategy in the KKP "
            "configuration you are going to apply"
        )
    namespace, name = net.NODEPORT_PROXY_SERVICE
    service = net.find_service(clusters(seed).list("services"), [net.NODEPORT_PROXY_SERVICE])
    if service is not None:
        evidence.attach("node-port-proxy Service", net.service_summary(service))
    kind = ((service or {}).get("spec") or {}).get("type")
    expect(kind == "LoadBalancer", f"seed {seed} (expose strategy {planned}, no KKP Seed object yet)",
           expected=f"the seed's node-port-proxy that {planned} routes through: Service {namespace}/{name} "
                    "of type LoadBalancer",
           found=f"Service {namespace}/{name} of type {kind}" if service else f"no Service {namespace}/{name}")


# Ensures KKP's configuration keeps Konnectivity on for seeds whose workers are remote.
@pytest.mark.requirement("NET-005")
def test_konnectivity_for_remote_workers(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                         evidence: Evidence) -> None:
    """The catalogue applies this to the workers-only integration (workers remote by definition;
    ``network.remote_workers: true`` says the same for other set-ups). What the cluster can answer:
    nothing in KKP's configuration turns Konnectivity off (see ``network_facts.konnectivity_disabled_by``:
    the KubermaticConfiguration's ``KonnectivityService`` feature gate, the Seed's default
    ClusterTemplate, the user Clusters already on the seed). Whether the agents in the user clusters
    reach their servers is not visible from the seed. Before KKP is installed the check cannot judge.
    """
    reader = clusters(seed)
    seeds, configurations = kkp_objects(clusters, seed, evidence)
    if not seeds and not configurations:
        raise KubeProbeError(
            f"cannot judge: seed {seed} holds no Seed or KubermaticConfiguration object (KKP is not installed yet); "
            "keep Konnectivity on in the KKP configuration you are going to apply"
        )
    seed_object = net.find_seed(seeds, seed.seed.name)
    template = ((seed_object or {}).get("spec") or {}).get("defaultClusterTemplate")
    templates = net.read_custom(reader, net.KKP_CLUSTER_TEMPLATE) if template else []
    user_clusters = net.read_custom(reader, net.KKP_CLUSTER)
    evidence.attach("user clusters", {net.ref(c): ((c.get("spec") or {}).get("clusterNetwork") or {})
                                      .get("konnectivityEnabled") for c in user_clusters})
    why = "workers-only integration" if profile.cloud.integration == "workers-only" else "network.remote_workers"
    problems = net.konnectivity_disabled_by(configurations, seed_object, templates, user_clusters)
    expect(not problems, f"seed {seed} (workers are remote: {why})",
           expected="Konnectivity on for every user cluster of the seed (nothing in KKP's configuration turns it off)",
           found="; ".join(problems))


# Ensures node networks, DHCP ranges, pod and service CIDRs and load-balancer pools never share an address.
@pytest.mark.requirement("NET-003")
def test_address_plan_does_not_overlap(profile: Profile, evidence: Evidence) -> None:
    """Only what the profile states is judged; an unset pod or service CIDR is listed in the evidence."""
    layer2 = profile.load_balancer.mode.endswith("-l2")
    ranges = plan.address_plan(profile.network, profile.load_balancer)
    evidence.attach("address plan", {
        "ranges": [str(r) for r in ranges],
        "announcement": "Layer 2" if layer2 else "BGP or cloud",
        "not in the profile": [key for key in ("pod_cidr", "service_cidr") if getattr(profile.network, key) is None],
    })
    problems = plan.conflicts(ranges, layer2)
    expect(not problems, "the address plan of the profile (network, load_balancer.address_pools)",
           expected="valid ranges, pairwise disjoint (a DHCP range may lie in a node network"
                    + ("; under Layer 2 a pool too, outside the DHCP ranges)" if layer2 else ")"),
           found="; ".join(problems))
