"""The measuring checks (PERF-001 to PERF-005) against the lab's real fio, disks and etcd: healthy and with each fault.

They run only when selected (``-m benchmark``/``-m performance``) or enabled in the profile; the other lab
suite tests deselect them (tests/conftest.py ``without_benchmarks``). ``etcdctl check perf`` always runs
60 s: the healthy lab's named etcd, the throwaway etcd and the CPU-starved etcd. They use the small class
(load s, 150 writes/s): on a 2-core CI machine shared with other
lab tests, load m would measure the CI machine; the demo (`kkp-readiness demo`) runs the lab profile's
medium class. The three cases run side by side in one test.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from kkp_readiness.lab import FAULTS
from tests.conftest import PROJECT_ROOT, run_suite
from tests.integration.test_lab_suite import MEASURED

SMALL_CLASS = {"performance": {"seed_etcd_class": "small"}}


def variant(directory: Path, name: str, overrides: dict) -> str:
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"extends": str(PROJECT_ROOT / "profiles" / "lab.yaml"), "name": name,
                                    **overrides}))
    return str(path)


def test_healthy_lab_measures_and_passes(healthy_lab, tmp_path: Path) -> None:
    profile = variant(tmp_path, "lab-small", SMALL_CLASS)
    run = run_suite(healthy_lab.workdir, tmp_path / "r", "-m", "benchmark", "-k", "not PERF-005", "--active",
                    profile=profile, benchmarks=True)
    verdicts = run.verdicts(("PERF",))
    expected = dict.fromkeys(("PERF-001", "PERF-002", "PERF-003", "PERF-004"), "pass")
    assert verdicts == expected, run.findings() or run.output[-3000:]
    tests = run.requirement("PERF-001")["tests"]
    assert len(tests) == 2, tests  # the local directory and the node cp-1
    assert run.run_dir is not None
    attachments = run.run_dir / "allure-results"
    texts = [path.read_text() for path in attachments.glob("*-attachment.txt")]
    assert any('"jobname" : "etcd-wal"' in text for text in texts)  # fio's own JSON output, as evidence
    assert any(text.startswith("fio --output-format=json --name=etcd-wal") for text in texts)  # its command line
    charts = list(attachments.glob("*-attachment.svg"))
    assert len(charts) == 3  # one chart per target: local, node, kubermatic-fast
    assert all(c.read_text().startswith("<svg") for c in charts)
    assert "data:image/svg+xml;base64," in (run.run_dir / "report.html").read_text()  # embedded, self-contained
    # results.json carries the figures (diff, trends) and the evidence (the handover report shows both)
    for test in tests:
        (p99,) = [f for f in test["figures"] if f["name"] == "fdatasync p99"]
        assert p99["unit"] == "ms"
        assert 0 < p99["value"] < 10
        assert any(e["kind"] == "svg" for e in test["evidence"])
    figures = {f["name"] for t in run.requirement("PERF-003")["tests"] for f in t["figures"]}
    assert figures == {"write IOPS (4 KiB, queue depth 32)", "write bandwidth (1 MiB blocks)"}
    assert "fdatasync p99: <b>" in (run.run_dir / "handover.html").read_text()


def test_throttled_disks_fail_fdatasync_and_throughput(kkp_lab_factory, tmp_path: Path) -> None:
    """The node's etcd directory and the kubermatic-fast volumes on disks capped at 40 IOPS and 10 MB/s."""
    lab = kkp_lab_factory(["disk-slow", "kube-fast-volumes-slow"])
    run = run_suite(lab.workdir, tmp_path / "r", "-m", "benchmark", "-k", "not PERF-005", "--active",
                    benchmarks=True)
    expected = dict.fromkeys(("PERF-001", "PERF-002", "PERF-003", "PERF-004"), "fail")
    assert run.verdicts(("PERF",)) == expected, run.output[-3000:]
    latency = [m["message"] for m in run.requirement("PERF-001")["messages"] if m["verdict"] == "fail"]
    assert len(latency) == 1, latency
    assert "node-etcd on 127.0.1.1" in latency[0], latency  # the node; the local disk passes
    for message in (latency[0], run.requirement("PERF-002")["messages"][0]["message"]):
        assert "expected 99th percentile of fdatasync below 10 ms" in message
        assert " ms over " in message
        assert "ext4 /dev/loop" in message
        assert "Fix: " in message
        assert "Docs: https://etcd.io/" in message
    throughput = run.requirement("PERF-003")["messages"][-1]["message"]
    assert "IOPS (4 KiB, queue depth 32) < 4500" in throughput
    assert "MB/s (1 MiB blocks) < 75" in throughput
    assert "< 7500" in run.requirement("PERF-004")["messages"][0]["message"]  # kubermatic-fast: the large class


def test_missing_fio_and_an_unreachable_etcd_are_errors(kkp_lab_factory, tmp_path: Path) -> None:
    lab = kkp_lab_factory(["node-fio-missing", "etcd-unreachable"])
    run = run_suite(lab.workdir, tmp_path / "r", "-m", "benchmark", "-k", "PERF-001 or PERF-003 or PERF-005",
                    "--active", benchmarks=True)
    expected = {"PERF-001": "error", "PERF-003": "error", "PERF-005": "error"}
    assert run.verdicts(("PERF",)) == expected, run.output[-3000:]
    assert run.returncode == 3
    for requirement_id in ("PERF-001", "PERF-003"):
        errors = [m["message"] for m in run.requirement(requirement_id)["messages"] if m["verdict"] == "error"]
        assert len(errors) == 1
        assert "fio is not installed on" in errors[0]
        assert "apt-get install fio" in errors[0]
    etcd = run.requirement("PERF-005")["messages"][0]["message"]
    assert "could not check" in etcd, etcd
    assert "is not healthy, check perf cannot run" in etcd, etcd
    assert "nothing answered" in etcd, etcd


def test_check_perf_named_etcd_throwaway_etcd_and_a_cpu_starved_one(healthy_lab, kkp_lab_factory,
                                                                      tmp_path: Path) -> None:
    """Three check perf runs side by side (each lasts 60 s whatever the load; light at load s): the healthy lab's
    etcd with --active, a throwaway etcd without it, and the etcd of a lab whose etcd gets 5 % of a CPU."""
    starved = kkp_lab_factory(["etcd-cpu-starved"])
    profile = variant(tmp_path, "lab-small", SMALL_CLASS)
    cases = {"named": (healthy_lab, ("--active",)), "throwaway": (healthy_lab, ()), "starved": (starved, ("--active",))}
    with ThreadPoolExecutor(len(cases)) as pool:
        futures = {name: pool.submit(run_suite, lab.workdir, tmp_path / name, "-m", "benchmark", "-k", "PERF-005",
                                     *extra, profile=profile, benchmarks=True)
                   for name, (lab, extra) in cases.items()}
        runs = {name: future.result() for name, future in futures.items()}
    for name, verdict in (("named", "pass"), ("throwaway", "pass"), ("starved", "fail")):
        assert runs[name].verdicts(("PERF",)) == {"PERF-005": verdict}, (name, runs[name].output[-3000:])
    reports = {name: (run.run_dir / "report.html").read_text() for name, run in runs.items() if run.run_dir}
    assert "a throwaway etcd in" not in reports["named"]
    assert "a throwaway etcd in" in reports["throwaway"]
    leftovers = list(Path(healthy_lab.state["perf"]["local_dir"]).iterdir())
    assert leftovers == [], leftovers  # the throwaway etcd's directory went with it
    message = runs["starved"].requirement("PERF-005")["messages"][0]["message"]
    assert "expected PASS at load s" in message, message
    assert "found FAIL: " in message, message


def test_benchmarks_run_only_when_selected_or_enabled(healthy_lab, tmp_path: Path) -> None:
    disabled = variant(tmp_path, "lab-quiet", {"performance": {"enabled": False}})
    quiet = run_suite(healthy_lab.workdir, tmp_path / "a", "-k", "PERF-001 or PERF-006", profile=disabled,
                      benchmarks=True)
    assert quiet.verdicts(("PERF",)) == {"PERF-001": "skip", "PERF-006": "pass"}, quiet.output[-3000:]
    assert "select it with -m performance" in quiet.requirement("PERF-001")["messages"][0]["message"]
    chosen = run_suite(healthy_lab.workdir, tmp_path / "b", "-m", "performance", "-k", "PERF-001", profile=disabled,
                       benchmarks=True)
    assert chosen.verdicts(("PERF",)) == {"PERF-001": "pass"}, chosen.output[-3000:]


def test_every_measured_fault_is_proven_here() -> None:
    """test_lab_suite.py leaves the faults that break only measuring checks to this module."""
    measured = {name for name, fault in FAULTS.items() if fault.breaks and set(fault.breaks) <= MEASURED}
    source = Path(__file__).read_text()
    assert measured == {"disk-slow", "kube-fast-volumes-slow", "etcd-cpu-starved"}
    assert all(f'"{name}"' in source for name in measured | {"etcd-unreachable", "node-fio-missing"})
