"""The shipped checks against the real lab: healthy, and with each named fault."""

from __future__ import annotations

import re

import pytest

from kkp_readiness.lab import FAULTS, Fault, Lab
from kkp_readiness.lab.kubeapi.cluster import KubePlan
from kkp_readiness.lab.kubeapi.resources import parse_custom
from tests.conftest import PROJECT_ROOT, run_suite

# The whole suite, active checks included (the lab is ours): a fault must break its requirements and nothing else.
SELECT: tuple[str, ...] = ("--active",)
IMPLEMENTED_SECTIONS = ("DNS", "CERT", "INFRA", "STORAGE", "LB", "NET")
#: Implemented requirements the lab profile does not call for (the catalogue's applies_to): skipped there,
#: proven with a profile that does (test_konnectivity_for_remote_workers).
NOT_APPLICABLE_IN_LAB = {"NET-005"}


def test_healthy_lab_passes_every_requirement(healthy_lab, tmp_path) -> None:
    run = run_suite(healthy_lab.workdir, tmp_path, *SELECT)
    verdicts = run.verdicts(IMPLEMENTED_SECTIONS)
    assert set(verdicts) >= {f"DNS-00{i}" for i in range(1, 7)} | {f"CERT-00{i}" for i in range(1, 8)}, run.output
    assert {"INFRA-001", "INFRA-002", "INFRA-003", "STORAGE-001", "STORAGE-005"} <= set(verdicts), run.output
    assert {f"LB-00{i}" for i in range(1, 8)} | {"NET-004", "NET-005"} <= set(verdicts), run.output
    assert {k for k, v in verdicts.items() if v == "skip"} == NOT_APPLICABLE_IN_LAB, run.output[-4000:]
    for requirement_id in NOT_APPLICABLE_IN_LAB:
        assert "not applicable" in run.requirement(requirement_id)["messages"][0]["message"]
    assert {v for k, v in verdicts.items() if k not in NOT_APPLICABLE_IN_LAB} == {"pass"}, run.output[-4000:]
    assert run.returncode == 0, run.output[-4000:]


FINDING_FAULTS = [name for name, fault in FAULTS.items() if fault.breaks or fault.warns]


@pytest.mark.parametrize("fault", FINDING_FAULTS)
def test_fault_fails_exactly_its_requirement(fault: str, tmp_path, kkp_lab_factory) -> None:
    lab = kkp_lab_factory([fault])
    run = run_suite(lab.workdir, tmp_path, *SELECT)
    expected = set(FAULTS[fault].breaks)
    assert run.with_verdict("fail", IMPLEMENTED_SECTIONS) == expected, run.output[-4000:]
    assert run.with_verdict("warn", IMPLEMENTED_SECTIONS) == set(FAULTS[fault].warns), run.output[-4000:]
    assert run.returncode == (1 if expected else 4)
    for requirement_id in set(FAULTS[fault].warns):
        assert any(m["verdict"] == "warn" for m in run.requirement(requirement_id)["messages"])
    for requirement_id in expected:
        row = run.requirement(requirement_id)
        failing = [m["message"] for m in row["messages"] if m["verdict"] == "fail"]
        assert failing, row
        for message in failing:
            assert message.startswith(f"[{requirement_id}]"), message
            assert re.search(r"expected .+; found .+", message), message
            assert "Fix: " in message, message
            assert "Docs: https://" in message, message


def test_unreachable_dns_is_an_error_not_a_failure(tmp_path, healthy_lab) -> None:
    """DNS servers that do not answer: the DNS checks could not look (error, exit code 3), never fail."""
    profile = tmp_path / "silent-dns.yaml"
    profile.write_text(f"extends: {PROJECT_ROOT / 'profiles' / 'lab.yaml'}\n"
                       "dns: {servers: ['127.0.0.1:9', '127.0.0.1:9']}\ntimeouts: {dns: 0.5}\n")
    run = run_suite(healthy_lab.workdir, tmp_path / "reports", "-m", "dns", profile=str(profile))
    verdicts = run.verdicts(("DNS",))
    assert set(verdicts.values()) == {"error"}, run.output[-4000:]
    assert run.returncode == 3
    assert "could not check" in run.requirement("DNS-001")["messages"][0]["message"]


def test_parallel_run_gives_the_same_verdicts(tmp_path) -> None:
    with Lab(faults=["cert-missing-name", "kube-node-not-ready"]) as lab:
        serial = run_suite(lab.workdir, tmp_path / "serial", *SELECT)
        parallel = run_suite(lab.workdir, tmp_path / "parallel", *SELECT, "-n", "2")
    assert serial.verdicts(IMPLEMENTED_SECTIONS) == parallel.verdicts(IMPLEMENTED_SECTIONS)
    assert serial.returncode == parallel.returncode == 1


def test_unreachable_cluster_is_one_error_at_once(tmp_path, kkp_lab_factory) -> None:
    lab = kkp_lab_factory(["kube-unreachable"])
    run = run_suite(lab.workdir, tmp_path, "-m", "cluster and not active")
    verdicts = {k: v for k, v in run.verdicts(IMPLEMENTED_SECTIONS).items() if k not in NOT_APPLICABLE_IN_LAB}
    assert verdicts
    assert set(verdicts.values()) == {"error"}, run.output[-4000:]
    assert run.returncode == 3
    messages = [m["message"] for r in run.results["requirements"] for m in r["messages"]
                if r["id"] not in NOT_APPLICABLE_IN_LAB]
    assert all("unreachable" in m for m in messages), messages


def test_forbidden_resource_is_an_error_naming_verb_and_resource(tmp_path, kkp_lab_factory) -> None:
    lab = kkp_lab_factory(["kube-forbidden-storageclasses"])
    run = run_suite(lab.workdir, tmp_path, "-m", "cluster and not active")
    verdicts = run.verdicts(IMPLEMENTED_SECTIONS)
    assert {v for k, v in verdicts.items() if k.startswith("STORAGE")} == {"error"}, run.output[-4000:]
    assert {v for k, v in verdicts.items() if k.startswith("INFRA")} == {"pass"}, run.output[-4000:]
    message = run.requirement("STORAGE-001")["messages"][0]["message"]
    assert "needs RBAC verb 'list' on 'storageclasses.storage.k8s.io'" in message


def test_cluster_checks_only_read(tmp_path, kkp_lab_factory) -> None:
    """Without --active nothing is written to a cluster: the lab API server logged no write."""
    from kkp_readiness.lab.kubeapi.part import read_request_log

    lab = kkp_lab_factory([])
    run = run_suite(lab.workdir, tmp_path, "-m", "cluster")
    assert run.returncode == 0, run.output[-3000:]
    requests = read_request_log(lab.state["kubeapi"]["request_log"])
    assert requests
    assert {r.method for r in requests} <= {"GET"}


def _kkp_installed(konnectivity: bool) -> Fault:
    """Not a registered fault: KKP's KubermaticConfiguration and Seed (NodePort, as the lab profile plans),
    and, without Konnectivity, a user Cluster that runs without it."""

    def apply(plan: KubePlan) -> None:
        plan.cluster.objects += [
            {"apiVersion": "kubermatic.k8c.io/v1", "kind": "KubermaticConfiguration",
             "metadata": {"name": "kubermatic", "namespace": "kubermatic"},
             "spec": {"ingress": {"domain": "kkp.lab"}, "exposeStrategy": "NodePort"}},
            {"apiVersion": "kubermatic.k8c.io/v1", "kind": "Seed",
             "metadata": {"name": "seed", "namespace": "kubermatic"},
             "spec": {"country": "DE", "location": "Lab", "datacenters": {},
                      "kubeconfig": {"name": "kubeconfig-seed", "namespace": "kubermatic"}}},
        ]
        if not konnectivity:
            plan.cluster.resources += parse_custom(
                [{"apiVersion": "kubermatic.k8c.io/v1", "kind": "Cluster", "plural": "clusters", "namespaced": False}])
            plan.cluster.objects.append(
                {"apiVersion": "kubermatic.k8c.io/v1", "kind": "Cluster", "metadata": {"name": "x7k2m9p4qz"},
                 "spec": {"exposeStrategy": "NodePort", "clusterNetwork": {"konnectivityEnabled": False}}})

    return Fault(f"kkp-installed-konnectivity-{'on' if konnectivity else 'off'}", "kubeapi",
                 "KKP's objects in the lab cluster.", touches=("kube:kkp-seed",), apply=apply)


@pytest.mark.parametrize(("kkp", "verdict"), [(None, "error"), (True, "pass"), (False, "fail")],
                         ids=["kkp-not-installed", "konnectivity-on", "konnectivity-off"])
def test_konnectivity_for_remote_workers(kkp: bool | None, verdict: str, tmp_path) -> None:
    """NET-005 applies to the workers-only integration only: a lab profile for it, three lab clusters."""
    profile = tmp_path / "remote-workers.yaml"
    profile.write_text(f"extends: {PROJECT_ROOT / 'profiles' / 'lab.yaml'}\n"
                       "name: lab-remote-workers\n"
                       "cloud: {integration: workers-only}\n"
                       "network: {node_cidrs: [127.0.1.0/24], remote_workers: true}\n")
    lab = Lab()
    if kkp is not None:
        lab.faults = (_kkp_installed(kkp),)
    with lab:
        run = run_suite(lab.workdir, tmp_path / "reports", "-m", "cluster", "-k", "NET", profile=str(profile))
    verdicts = run.verdicts(("NET",))
    assert verdicts == {"NET-004": "pass", "NET-005": verdict}, run.output[-4000:]
    message = (run.requirement("NET-005")["messages"] or [{"message": ""}])[0]["message"]
    if verdict == "error":
        assert "KKP is not installed yet" in message
    if verdict == "fail":
        assert "user Cluster x7k2m9p4qz runs without Konnectivity" in message, message
