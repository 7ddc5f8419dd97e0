"""ACCESS-007's targets, derived from a profile and a kubeconfig alone (no network)."""

from __future__ import annotations

from pathlib import Path

import yaml

from kkp_readiness.access_targets import load_balancer_targets
from kkp_readiness.profile import load_profile


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x", "users": [{"name": "u", "user": {"token": "t"}}]}))
    return path


def _profile(tmp_path: Path, seeds: str, ingress: str = "{addresses: [192.0.2.10, 192.0.2.12]}") -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(f"name: site\nbase_domain: kubermatic.example.com\ningress: {ingress}\n"
                    f"dns: {{servers: [192.0.2.53]}}\nseeds: {seeds}\n")
    return path


def test_each_seed_api_ingress_port_and_nodeport_proxy_port_is_a_target(tmp_path: Path) -> None:
    _kubeconfig(tmp_path / "eu.yaml", "https://api.eu.example.com:6443")
    _kubeconfig(tmp_path / "us.yaml", "https://198.51.100.7")
    seeds = ("[{name: eu, expose_strategy: Tunneling, nodeport_proxy_addresses: [192.0.2.11], kubeconfig: eu.yaml},"
             " {name: us, expose_strategy: NodePort, nodeport_proxy_addresses: [192.0.2.21], kubeconfig: us.yaml},"
             " {name: ap, expose_strategy: LoadBalancer, kubeconfig: us.yaml, nodeport_proxy_ports: [1]}]")
    loaded = load_profile(str(_profile(tmp_path, seeds)))
    found = [(t.what, t.host, t.port) for t in load_balancer_targets(loaded)]
    assert found == [
        ("Kubernetes API of seed eu", "api.eu.example.com", 6443),
        ("Kubernetes API of seed us", "198.51.100.7", 443),
        ("Kubernetes API of seed ap", "198.51.100.7", 443),
        ("ingress HTTPS", "192.0.2.10", 443), ("ingress HTTP", "192.0.2.10", 80),
        ("ingress HTTPS", "192.0.2.12", 443), ("ingress HTTP", "192.0.2.12", 80),
        # Tunneling's defaults; NodePort has none (user clusters' node ports); LoadBalancer has no proxy.
        ("nodeport-proxy of seed eu", "192.0.2.11", 6443), ("nodeport-proxy of seed eu", "192.0.2.11", 8088),
    ]
    assert len({t.id for t in load_balancer_targets(loaded)}) == len(found)  # unique test ids


def test_listed_ports_and_http_port_and_an_unreadable_kubeconfig(tmp_path: Path) -> None:
    seeds = ("[{name: eu, expose_strategy: NodePort, nodeport_proxy_addresses: [192.0.2.11],"
             " nodeport_proxy_ports: [30443], kubeconfig: missing.yaml}]")
    loaded = load_profile(str(_profile(tmp_path, seeds, "{addresses: [192.0.2.10], http_port: 8080}")))
    api, https, http, proxy = load_balancer_targets(loaded)
    assert api.problem
    assert "missing.yaml" in api.problem
    assert https.port == 443
    assert (http.port, proxy.port) == (8080, 30443)
    assert "ingress.http_port" in http.source
