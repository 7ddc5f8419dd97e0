"""``ClusterReader.list_custom`` against the lab's Kubernetes API: served, not served (404), forbidden (403)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kkp_readiness import network_facts as net
from kkp_readiness.errors import KubeProbeError
from kkp_readiness.lab import Fault, LabContext, resolve_faults
from kkp_readiness.lab.kubeapi import KubeApiPart, read_request_log
from kkp_readiness.lab.kubeapi.cluster import RESTRICTED, KubePlan
from kkp_readiness.probes.kube import ClusterAccess, ClusterReader


@pytest.fixture
def start_part() -> Iterator[Callable[..., dict[str, Any]]]:
    """Start only the kubeapi part with the given faults (names or Fault objects); stopped after the test."""
    parts: list[KubeApiPart] = []
    directories: list[Path] = []

    def start(*faults: str | Fault) -> dict[str, Any]:
        workdir = Path(tempfile.mkdtemp(prefix="kkp-reader-"))
        directories.append(workdir)
        part = KubeApiPart()
        parts.append(part)
        chosen = tuple(f for f in faults if isinstance(f, Fault))
        chosen += resolve_faults([f for f in faults if isinstance(f, str)])
        return part.start(LabContext(workdir, chosen))

    yield start
    for part in parts:
        part.stop()
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


def _reader(state: dict[str, Any]) -> ClusterReader:
    return ClusterReader(ClusterAccess(state["kubeconfig"], None, timeout=5))


def test_custom_objects_are_listed_once_per_run(start_part) -> None:
    state = start_part()
    reader = _reader(state)
    pools = reader.list_custom("metallb.io", "v1beta1", "ipaddresspools")
    assert [(p["kind"], p["metadata"]["name"], p["spec"]["addresses"]) for p in pools] == [
        ("IPAddressPool", "kkp", ["127.0.0.10-127.0.0.20"])]
    assert reader.list_custom("metallb.io", "v1beta1", "ipaddresspools", namespace="metallb-system") == pools
    assert reader.list_custom("metallb.io", "v1beta1", "ipaddresspools", namespace="default") == []
    reader.list_custom("metallb.io", "v1beta1", "ipaddresspools")
    listed = [r for r in read_request_log(state["request_log"]) if "ipaddresspools" in r.path]
    assert [(r.method, r.status) for r in listed] == [("GET", 200), ("GET", 200), ("GET", 200)]


def test_a_resource_the_server_does_not_serve_is_empty(start_part) -> None:
    state = start_part("kube-no-metallb")
    reader = _reader(state)
    assert reader.list_custom("metallb.io", "v1beta1", "ipaddresspools") == []
    assert reader.list_custom("example.com", "v1", "widgets", namespace="default") == []
    # Only the version the lab serves answers; read_custom asks each version and keeps each object once.
    healthy = _reader(start_part())
    assert healthy.list_custom("metallb.io", "v1beta2", "bgppeers") == []
    assert [net.ref(p) for p in net.read_custom(healthy, net.BGP_PEER)] == ["metallb-system/router"]
    statuses = {r.status for r in read_request_log(state["request_log"]) if "/apis/" in r.path}
    assert statuses == {404}


def _forbid_pools(plan: KubePlan) -> None:
    token = plan.cluster.token(RESTRICTED)
    token.forbidden = (*token.forbidden, "ipaddresspools.metallb.io")
    plan.kubeconfig_token = RESTRICTED


def test_forbidden_custom_resource_names_verb_and_resource(start_part) -> None:
    fault = Fault("forbid-pools", "kubeapi", "The token may not read IPAddressPools.", touches=("kube:token",),
                  apply=_forbid_pools)
    reader = _reader(start_part(fault))
    with pytest.raises(KubeProbeError, match=r"needs RBAC verb 'list' on 'ipaddresspools\.metallb\.io'"):
        reader.list_custom("metallb.io", "v1beta1", "ipaddresspools")
    assert reader.list_custom("metallb.io", "v1beta1", "bgppeers")  # other resources still answer
