"""What the LB and NET checks look for, and the facts they read off objects (tables)."""

from __future__ import annotations

from typing import get_args

import pytest

from kkp_readiness import network_facts as net
from kkp_readiness.profile_model import LbMode


def _obj(kind: str, name: str, namespace: str | None = None, labels: dict | None = None, **body) -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {}), **({"labels": labels} if labels else {})}
    return {"kind": kind, "metadata": meta, **body}


def test_every_mode_but_other_has_an_implementation() -> None:
    assert set(net.IMPLEMENTATIONS) == set(get_args(LbMode)) - {"other"}
    for mode, impl in net.IMPLEMENTATIONS.items():
        assert impl.components, mode
        assert (net.family(mode) is None) == (not impl.pool_kinds), mode


@pytest.mark.parametrize(("mode", "workload", "what"), [
    ("metallb-bgp", _obj("Deployment", "controller", "metallb-system", {"app": "metallb", "component": "controller"}),
     "MetalLB controller"),
    ("metallb-l2", _obj("DaemonSet", "metallb-speaker", "metallb-system",
                        {"app.kubernetes.io/name": "metallb", "app.kubernetes.io/component": "speaker"}),
     "MetalLB speaker"),
    ("cilium-bgp", _obj("Deployment", "cilium-operator", "kube-system", {"io.cilium/app": "operator"}),
     "Cilium operator (runs LB-IPAM)"),
    ("kubelb", _obj("Deployment", "kubelb-ccm", "kubelb", {"app.kubernetes.io/name": "kubelb-ccm"}),
     "KubeLB cloud controller manager"),
    ("cloud", _obj("DaemonSet", "openstack-cloud-controller-manager", "kube-system"), "cloud controller manager"),
    ("cloud", _obj("Deployment", "azure-cloud-controller-manager", "kube-system"), "cloud controller manager"),
])
def test_components_are_found_by_label_or_name(mode: str, workload: dict, what: str) -> None:
    resource = "daemonsets" if workload["kind"] == "DaemonSet" else "deployments"
    states = net.find_components(net.IMPLEMENTATIONS[mode], {resource: [workload]})
    assert [s.component.what for s in states if s.found] == [what]


def test_unrelated_workloads_are_not_components() -> None:
    other = _obj("Deployment", "controller", "other", {"app": "something", "component": "controller"})
    states = net.find_components(net.IMPLEMENTATIONS["metallb-bgp"], {"deployments": [other], "daemonsets": []})
    assert [s.describe() for s in states] == ["MetalLB controller: not deployed", "MetalLB speaker: not deployed"]


@pytest.mark.parametrize(("workload", "ready"), [
    ({"kind": "DaemonSet", "status": {"desiredNumberScheduled": 6, "numberReady": 6}}, True),
    ({"kind": "DaemonSet", "status": {"desiredNumberScheduled": 6, "numberReady": 5}}, False),
    ({"kind": "DaemonSet", "status": {"desiredNumberScheduled": 0, "numberReady": 0}}, False),
    ({"kind": "Deployment", "spec": {"replicas": 2}, "status": {"readyReplicas": 2}}, True),
    ({"kind": "Deployment", "spec": {"replicas": 2}, "status": {"readyReplicas": 1}}, False),
    ({"kind": "Deployment", "spec": {"replicas": 0}, "status": {}}, False),
    ({"kind": "Deployment", "status": {"replicas": 1, "readyReplicas": 1}}, True),
    ({"kind": "Deployment", "status": {}}, False),
])
def test_workload_ready(workload: dict, ready: bool) -> None:
    assert net.workload_ready(workload) is ready


@pytest.mark.parametrize(("selector", "labels", "matches"), [
    (None, {}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {}, True),
])
def test_label_selectors(selector: dict | None, labels: dict, matches: bool) -> None:
    assert net.selector_matches(selector, labels) is matches


POOLS = [_obj("IPAddressPool", "kkp", "metallb-system", {"tier": "kkp"}),
         _obj("IPAddressPool", "workloads", "metallb-system", {"tier": "user"}),
         _obj("IPAddressPool", "elsewhere", "other")]


@pytest.mark.parametrize(("spec", "pools"), [
    ({}, ["kkp", "workloads"]),  # no pools named: every pool of its namespace
    ({"ipAddressPools": ["kkp"]}, ["kkp"]),
    ({"ipAddressPoolSelectors": [{"matchLabels": {"tier": "user"}}]}, ["workloads"]),
    ({"ipAddressPools": ["missing"]}, []),
])
def test_advertised_pools(spec: dict, pools: list[str]) -> None:
    advert = _obj("BGPAdvertisement", "adv", "metallb-system", spec=spec)
    assert net.advertised_pools(advert, POOLS) == pools


def test_bgp_peers_of_metallb_and_cilium() -> None:
    objects = [
        _obj("BGPPeer", "router", "metallb-system", spec={"peerAddress": "192.0.2.1", "peerASN": 64512}),
        _obj("CiliumBGPPeeringPolicy", "v1", spec={"virtualRouters": [
            {"localASN": 64513, "neighbors": [{"peerAddress": "192.0.2.2/32", "peerASN": 64512}]}]}),
        _obj("CiliumBGPClusterConfig", "v2", spec={"bgpInstances": [
            {"name": "i", "peers": [{"name": "tor", "peerAddress": "2001:db8::1", "peerASN": "64514"}]}]}),
    ]
    assert net.bgp_peers(objects) == [
        ("192.0.2.1", 64512, "BGPPeer metallb-system/router"),
        ("192.0.2.2", 64512, "CiliumBGPPeeringPolicy v1"),
        ("2001:db8::1", 64514, "CiliumBGPClusterConfig v2"),
    ]


@pytest.mark.parametrize(("objects", "advertises"), [
    ([], False),
    ([_obj("CiliumBGPPeeringPolicy", "v1", spec={"virtualRouters": [{"neighbors": []}]})], False),
    ([_obj("CiliumBGPPeeringPolicy", "v1", spec={"virtualRouters": [{"serviceSelector": {}}]})], True),
    ([_obj("CiliumBGPAdvertisement", "a", spec={"advertisements": [
        {"advertisementType": "Service", "service": {"addresses": ["ClusterIP", "LoadBalancerIP"]}}]})], True),
    ([_obj("CiliumBGPAdvertisement", "a", spec={"advertisements": [{"advertisementType": "PodCIDR"}]})], False),
])
def test_cilium_advertisement_of_lb_addresses(objects: list[dict], advertises: bool) -> None:
    assert net.cilium_advertises_lb_addresses(objects) is advertises


def test_services() -> None:
    upstream = _obj("Service", "ingress-nginx-controller", "ingress-nginx", spec={"type": "LoadBalancer"},
                    status={"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}, {"hostname": "lb.example.com"}]}})
    assert net.find_service([upstream], net.INGRESS_SERVICES) is upstream
    assert net.find_service([upstream], [net.NODEPORT_PROXY_SERVICE]) is None
    assert net.service_addresses(upstream) == ["192.0.2.10", "lb.example.com"]
    assert net.service_addresses(_obj("Service", "x", "y", status={"loadBalancer": {}})) == []
    assert net.service_summary(upstream)["service"] == "ingress-nginx/ingress-nginx-controller"


SEED = _obj("Seed", "eu", "kubermatic", spec={"exposeStrategy": "Tunneling"})
PLAIN_SEED = _obj("Seed", "eu", "kubermatic", spec={})
CONFIG = _obj("KubermaticConfiguration", "kubermatic", "kubermatic", spec={"exposeStrategy": "LoadBalancer"})


@pytest.mark.parametrize(("seed_object", "configurations", "strategy", "source"), [
    (SEED, [CONFIG], "Tunneling", "Seed eu spec.exposeStrategy"),
    (PLAIN_SEED, [CONFIG], "LoadBalancer", "KubermaticConfiguration kubermatic/kubermatic spec.exposeStrategy"),
    (PLAIN_SEED, [], "NodePort", "KKP's default (neither Seed eu nor a KubermaticConfiguration sets one)"),
    (None, [], "NodePort", "KKP's default (no KubermaticConfiguration sets one)"),
])
def test_effective_expose_strategy(seed_object: dict | None, configurations: list[dict], strategy: str,
                                   source: str) -> None:
    assert net.effective_expose_strategy(seed_object, configurations) == (strategy, source)
    assert net.find_seed([SEED], "eu") is SEED
    assert net.find_seed([SEED], "us") is None


TEMPLATE_OFF = _obj("ClusterTemplate", "legacy", spec={"clusterNetwork": {"konnectivityEnabled": False}})


@pytest.mark.parametrize(("configurations", "seed_object", "templates", "user_clusters", "problems"), [
    ([], None, [], [], 0),
    ([_obj("KubermaticConfiguration", "k", "kubermatic", spec={"featureGates": {"KonnectivityService": True}})],
     PLAIN_SEED, [], [], 0),
    ([_obj("KubermaticConfiguration", "k", "kubermatic", spec={"featureGates": {"KonnectivityService": False}})],
     None, [], [], 1),
    ([], _obj("Seed", "eu", "kubermatic", spec={"defaultClusterTemplate": "legacy"}), [TEMPLATE_OFF], [], 1),
    ([], _obj("Seed", "eu", "kubermatic", spec={"defaultClusterTemplate": "other"}), [TEMPLATE_OFF], [], 0),
    ([], None, [], [_obj("Cluster", "abc", spec={"clusterNetwork": {"konnectivityEnabled": False}}),
                    _obj("Cluster", "def", spec={"clusterNetwork": {"konnectivityEnabled": True}}),
                    _obj("Cluster", "ghi", spec={})], 1),
])
def test_konnectivity_disabled_by(configurations: list[dict], seed_object: dict | None, templates: list[dict],
                                  user_clusters: list[dict], problems: int) -> None:
    assert len(net.konnectivity_disabled_by(configurations, seed_object, templates, user_clusters)) == problems


class FakeReader:
    def __init__(self, served: dict[tuple[str, str, str], list[dict]]) -> None:
        self.served = served
        self.asked: list[tuple[str, str, str]] = []

    def list_custom(self, group: str, version: str, plural: str, namespace: str | None = None) -> list[dict]:
        self.asked.append((group, version, plural))
        return self.served.get((group, version, plural), [])


def test_read_custom_asks_every_version_and_keeps_each_object_once() -> None:
    peer = _obj("BGPPeer", "router", "metallb-system")
    reader = FakeReader({("metallb.io", "v1beta2", "bgppeers"): [peer],
                         ("metallb.io", "v1beta1", "bgppeers"): [dict(peer), _obj("BGPPeer", "old", "metallb-system")]})
    found = [net.ref(o) for o in net.read_custom(reader, net.BGP_PEER)]
    assert found == ["metallb-system/router", "metallb-system/old"]
    assert reader.asked == [("metallb.io", "v1beta2", "bgppeers"), ("metallb.io", "v1beta1", "bgppeers")]
    assert net.read_custom(FakeReader({}), net.KKP_SEED) == []


def test_custom_resources_name_every_version_once() -> None:
    resources = net.custom_resources()
    assert len(resources) == len(set(resources))
    assert ("metallb.io", "v1beta2", "bgppeers") in resources
    assert ("kubermatic.k8c.io", "v1", "seeds") in resources
