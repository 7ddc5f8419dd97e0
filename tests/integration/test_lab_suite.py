"""The shipped checks against the real lab: healthy, and with each named fault."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from kkp_readiness.catalogue import implemented_ids, load_catalogue
from kkp_readiness.lab import FAULTS, Fault, Lab
from kkp_readiness.lab.kubeapi.cluster import KubePlan
from tests.conftest import PROJECT_ROOT, run_suite

# The whole suite, active checks included (the lab is ours): a fault must break its requirements and nothing else.
SELECT: tuple[str, ...] = ("--active",)
#: Every section: verdicts() keeps the requirements that have checks, whatever their section.
IMPLEMENTED_SECTIONS = tuple(section.id for section in load_catalogue().sections)
#: Implemented requirements the lab profile does not call for (the catalogue's applies_to): skipped there,
#: proven with a profile that does (test_konnectivity_for_remote_workers, the faults' shown_with profiles).
NOT_APPLICABLE_IN_LAB = {*(r.id for r in load_catalogue() if r.section in ("AZURE", "VSPHERE", "OPENSTACK")
                           and r.id in implemented_ids()),  # the lab profile has no cloud: lab-<provider> has
                         "NET-005", "CERT-101", "CERT-102", "AUTH-004", "AUTH-005", "ACCESS-005", "PROXY-004",
                         "PROXY-006", "PROXY-007", "PROXY-008", "INSTALLER-002"}
#: What the KKP installer deploys: not applicable before it ran (the kube-kkp-not-installed lab).
INSTALLED_BY_KKP = {"STORAGE-007", "STORAGE-008", "STORAGE-009", "CERT-103", "AUTH-001", "AUTH-002", "PERF-009"}


def fault_profile(fault: Fault, directory: Path) -> str:
    """The lab profile, or a variant with the fault's ``shown_with`` overrides (where its requirements apply)."""
    if not fault.shown_with:
        return "lab"
    profile = directory / f"lab-{fault.name}.yaml"
    profile.write_text(yaml.safe_dump({"extends": str(PROJECT_ROOT / "profiles" / "lab.yaml"),
                                       "name": f"lab-{fault.name}", **fault.shown_with}))
    return str(profile)


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


#: The measuring checks' faults (those breaking only PERF-001..005: disk-slow, etcd-cpu-starved and the kubeapi
#: part's kube-fast-volumes-slow) are proven by test_performance_suite.py, which selects those checks.
MEASURED = {f"PERF-00{n}" for n in range(1, 6)}
FINDING_FAULTS = [name for name, fault in FAULTS.items()
                  if (fault.breaks or fault.warns) and not (fault.breaks and set(fault.breaks) <= MEASURED)]
#: One fault per distinct shown_with profile: the healthy lab must pass what those faults break under it.
VARIANT_FAULTS = list({yaml.safe_dump(f.shown_with): name for name, f in FAULTS.items() if f.shown_with}.values())


@pytest.mark.parametrize("fault", VARIANT_FAULTS)
def test_healthy_lab_passes_under_the_variant_profiles(fault: str, healthy_lab, tmp_path) -> None:
    variant = fault_profile(FAULTS[fault], tmp_path)
    shown = {rid for f in FAULTS.values() if f.shown_with == FAULTS[fault].shown_with for rid in (*f.breaks, *f.warns)}
    run = run_suite(healthy_lab.workdir, tmp_path / "reports", "-m", "not active", profile=variant)
    verdicts = run.verdicts(IMPLEMENTED_SECTIONS)
    assert {rid: verdicts.get(rid) for rid in shown} == dict.fromkeys(shown, "pass"), run.output[-4000:]
    assert not {k for k, v in verdicts.items() if v not in ("pass", "skip")}, run.findings() or run.output[-4000:]


#: Parts whose faults can reach into each other's checks (the ingress names come from the DNS; every
#: egress check goes through the bastion): a batch takes at most one fault from each of these groups.
PART_GROUPS = {"dns": "names", "ingress": "names", "bastion": "bastion", "egress": "bastion"}
#: The lab cluster's faults change separate objects (``touches``) read by separate checks: two per batch.
GROUP_CAPACITY = {"kubeapi": 2, "cloud": 4}


def fault_batches(names: list[str], singly: bool = False) -> list[tuple[str, ...]]:
    """The finding faults packed into labs that each start several of them at once.

    Why: a lab start plus a whole-suite run costs seconds, and most faults cannot interfere: a batch
    holds faults of different part groups, with the same profile variant, touching different things
    and breaking or warning disjoint requirement sets. Each batch must then fail exactly the union of
    its faults' requirements, with each fault's messages, which is as strict as one lab per fault
    unless two faults mask each other (the assertion shows the batch, and ``KKP_LAB_FAULTS_SINGLY=1``
    runs one lab per fault to tell them apart).
    """
    batches: list[list[Fault]] = []
    for name in names:
        fault = FAULTS[name]
        for batch in ([] if singly else batches):
            group = PART_GROUPS.get(fault.part, fault.part)
            if (sum(PART_GROUPS.get(f.part, f.part) == group for f in batch) < GROUP_CAPACITY.get(group, 1)
                    and all(f.shown_with == fault.shown_with for f in batch)
                    and not {*fault.touches} & {t for f in batch for t in f.touches}
                    and not {*fault.breaks, *fault.warns} & {r for f in batch for r in (*f.breaks, *f.warns)}):
                batch.append(fault)
                break
        else:
            batches.append([fault])
    return [tuple(f.name for f in batch) for batch in batches]


FAULT_BATCHES = fault_batches(FINDING_FAULTS, singly=os.environ.get("KKP_LAB_FAULTS_SINGLY") == "1")


def test_every_finding_fault_is_in_exactly_one_batch() -> None:
    assert sorted(n for batch in FAULT_BATCHES for n in batch) == sorted(FINDING_FAULTS)


@pytest.mark.parametrize("batch", FAULT_BATCHES, ids=["+".join(b) for b in FAULT_BATCHES])
def test_fault_fails_exactly_its_requirement(batch: tuple[str, ...], tmp_path, kkp_lab_factory) -> None:
    faults = [FAULTS[name] for name in batch]
    lab = kkp_lab_factory(list(batch))
    run = run_suite(lab.workdir, tmp_path / "reports", *SELECT, profile=fault_profile(faults[0], tmp_path))
    expected = {r for f in faults for r in f.breaks}
    warned = {r for f in faults for r in f.warns}
    assert run.with_verdict("fail", IMPLEMENTED_SECTIONS) == expected, run.findings() or run.output[-4000:]
    assert run.with_verdict("warn", IMPLEMENTED_SECTIONS) == warned, run.output[-4000:]
    assert run.returncode == (1 if expected else 4)
    for requirement_id in warned:
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
    # Every check that reads storage classes could not look; the others (STORAGE-007 reads the Seed) still ran.
    reading_classes = {k for k in verdicts if k.startswith("STORAGE") and k != "STORAGE-007"} | {"INFRA-007"}
    assert {k: v for k, v in verdicts.items() if v == "error"} == dict.fromkeys(reading_classes, "error"), \
        run.output[-4000:]
    assert {v for k, v in verdicts.items() if k.startswith("INFRA") and k != "INFRA-007"} == {"pass"}, \
        run.output[-4000:]
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


def _konnectivity_off(plan: KubePlan) -> None:
    """Not a registered fault: the lab's user Cluster runs without Konnectivity."""
    plan.cluster.find("Cluster", "lab7x2kq9")["spec"]["clusterNetwork"]["konnectivityEnabled"] = False


@pytest.mark.parametrize(("kkp", "verdict"), [(None, "error"), (True, "pass"), (False, "fail")],
                         ids=["kkp-not-installed", "konnectivity-on", "konnectivity-off"])
def test_konnectivity_for_remote_workers(kkp: bool | None, verdict: str, tmp_path) -> None:
    """NET-005 applies to the workers-only integration only: a lab profile for it, three lab clusters."""
    profile = tmp_path / "remote-workers.yaml"
    profile.write_text(f"extends: {PROJECT_ROOT / 'profiles' / 'lab.yaml'}\n"
                       "name: lab-remote-workers\n"
                       "cloud: {integration: workers-only}\n"
                       "network: {node_cidrs: [127.0.1.0/24], remote_workers: true}\n")
    lab = Lab(faults=["kube-kkp-not-installed"] if kkp is None else [])
    if kkp is False:
        lab.faults = (Fault("konnectivity-off", "kubeapi", "A user cluster without Konnectivity.",
                            touches=("kube:user-cluster",), apply=_konnectivity_off),)
    with lab:
        run = run_suite(lab.workdir, tmp_path / "reports", "-m", "cluster", "-k", "NET", profile=str(profile))
    verdicts = run.verdicts(("NET",))
    assert verdicts == {"NET-004": "pass", "NET-005": verdict}, run.output[-4000:]
    message = (run.requirement("NET-005")["messages"] or [{"message": ""}])[0]["message"]
    if verdict == "error":
        assert "KKP is not installed yet" in message
    if verdict == "fail":
        assert "user Cluster lab7x2kq9 runs without Konnectivity" in message, message


def test_before_the_installation_what_kkp_deploys_is_not_applicable_yet(tmp_path, kkp_lab_factory) -> None:
    """The cluster as handed over for the installation: the checks of what the KKP installer deploys
    skip with the reason, everything else passes, nothing fails."""
    lab = kkp_lab_factory(["kube-kkp-not-installed"])
    run = run_suite(lab.workdir, tmp_path, *SELECT)
    verdicts = run.verdicts(IMPLEMENTED_SECTIONS)
    assert {k for k, v in verdicts.items() if v == "skip"} == NOT_APPLICABLE_IN_LAB | INSTALLED_BY_KKP, \
        run.output[-4000:]
    assert {v for k, v in verdicts.items() if v != "skip"} == {"pass"}, run.output[-4000:]
    for requirement_id in INSTALLED_BY_KKP - {"STORAGE-008", "STORAGE-009", "PERF-009"}:
        assert "KKP is not installed in seed seed yet" in run.requirement(requirement_id)["messages"][0]["message"]
    assert "runs no user cluster yet" in run.requirement("STORAGE-008")["messages"][0]["message"]
    assert "MLA stack (namespace mla) is not deployed yet" in run.requirement("PERF-009")["messages"][0]["message"]
    assert run.returncode == 0
