"""The measuring checks (PERF-001/003/005) against the lab's real fio, disks and etcd: healthy and with each fault.

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

from tests.conftest import PROJECT_ROOT, run_suite

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
    assert verdicts == {"PERF-001": "pass", "PERF-003": "pass"}, run.findings() or run.output[-3000:]
    tests = run.requirement("PERF-001")["tests"]
    assert len(tests) == 2, tests  # the local directory and the node cp-1
    assert run.run_dir is not None
    attachments = run.run_dir / "allure-results"
    texts = [path.read_text() for path in attachments.glob("*-attachment.txt")]
    assert any('"jobname" : "etcd-wal"' in text for text in texts)  # fio's own JSON output, as evidence
    assert any(text.startswith("fio --output-format=json --name=etcd-wal") for text in texts)  # its command line
    charts = list(attachments.glob("*-attachment.svg"))
    assert len(charts) == 2
    assert all(c.read_text().startswith("<svg") for c in charts)
    assert "data:image/svg+xml;base64," in (run.run_dir / "report.html").read_text()  # embedded, self-contained


def test_a_throttled_disk_fails_fdatasync_and_throughput(kkp_lab_factory, tmp_path: Path) -> None:
    lab = kkp_lab_factory(["disk-slow"])
    run = run_suite(lab.workdir, tmp_path / "r", "-m", "benchmark", "-k", "not PERF-005", benchmarks=True)
    assert run.verdicts(("PERF",)) == {"PERF-001": "fail", "PERF-003": "fail"}, run.output[-3000:]
    latency = [m["message"] for m in run.requirement("PERF-001")["messages"] if m["verdict"] == "fail"]
    assert len(latency) == 1, latency
    assert "node-etcd on 127.0.1.1" in latency[0], latency  # the node; the local disk passes
    assert "expected 99th percentile of fdatasync below 10 ms" in latency[0]
    assert "found " in latency[0]
    assert " ms over " in latency[0]
    assert "ext4 /dev/loop" in latency[0]
    assert "Fix: " in latency[0]
    assert "Docs: https://etcd.io/" in latency[0]
    throughput = run.requirement("PERF-003")["messages"][-1]["message"]
    assert "IOPS (4 KiB, queue depth 32) < 4500" in throughput
    assert "MB/s (1 MiB blocks) < 75" in throughput


def test_missing_fio_and_an_unreachable_etcd_are_errors(kkp_lab_factory, tmp_path: Path) -> None:
    lab = kkp_lab_factory(["node-fio-missing", "etcd-unreachable"])
    run = run_suite(lab.workdir, tmp_path / "r", "-m", "benchmark", "--active", benchmarks=True)
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
    assert "nothing answered at the endpoint" in etcd, etcd


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
