"""PERF: the etcd disks (fio), etcd itself (etcdctl check perf) and the control-plane machines' size.

The measuring checks (marker ``benchmark``) write to the disks they judge for up to a few minutes;
they run only when the run selects them (``-m performance``) or the profile enables them
(``performance.enabled``). Thresholds come from etcd's own guidance: fdatasync p99 below 10 ms
(https://etcd.io/docs/v3.5/op-guide/performance/) and the hardware guide's classes
(https://etcd.io/docs/v3.5/op-guide/hardware/), both changeable in the profile.
"""

from __future__ import annotations

import secrets

import pytest

from fixtures.active import ActiveSessions
from fixtures.cluster import Clusters
from fixtures.performance import SLACK_S, DiskTarget, Measure, TargetShell, disk_targets, report_with_evidence
from fixtures.site import SeedTarget
from kkp_readiness import kube_facts as facts
from kkp_readiness.errors import KubeProbeError, ProbeError
from kkp_readiness.etcd_classes import etcd_class
from kkp_readiness.evidence import Evidence
from kkp_readiness.probes import etcd_perf, fio
from kkp_readiness.probes.local import run_local
from kkp_readiness.profile import LoadedProfile
from kkp_readiness.profile_model import Profile
from kkp_readiness.report.chart import percentile_chart
from kkp_readiness.verdict import expect


def _judge_fdatasync(report: fio.FioReport, where: str, profile: Profile, evidence: Evidence) -> None:
    """The etcd recipe's fdatasync p99 against the threshold (PERF-001 and PERF-002)."""
    perf = profile.performance
    job = report.job("etcd-wal")
    p99 = job.sync_percentile(99.0)
    if p99 is None:
        raise fio.FioError(f"{report.version} on {where} reported no fdatasync latencies (fio 3.5 or newer does)")
    evidence.attach_svg(f"fdatasync latency on {where}",
                        percentile_chart(job.sync_percentiles_ms, perf.fdatasync_p99_ms,
                                         f"fdatasync latency, {where} ({report.filesystem})"))
    evidence.figure("fdatasync p99", p99, "ms", better="lower")
    written = job.write_bytes
    cut_short = written < fio.size_bytes(perf.fio.size)
    others = ", ".join(f"p{float(k):g} {v:.2f} ms" for k, v in job.sync_percentiles_ms.items()
                       if k in ("50.000000", "99.900000"))
    expect(p99 < perf.fdatasync_p99_ms, where,
           expected=f"99th percentile of fdatasync below {perf.fdatasync_p99_ms:g} ms (etcd fio recipe: "
                    f"{perf.fio.block_size}-byte sequential writes, fdatasync after each, {perf.fio.size})",
           found=f"{p99:.2f} ms over {job.sync_count} fdatasyncs on {report.filesystem} ({others})"
                 + (f"; fio stopped at its {perf.fio.runtime:g} s limit after {written / (1 << 20):.1f} MiB"
                    if cut_short else ""))


def _recipe(base: str, profile: Profile) -> fio.FioRun:
    perf = profile.performance
    return fio.etcd_recipe(base, size=perf.fio.size, block_size=perf.fio.block_size, runtime=perf.fio.runtime)


def _throughput(base: str, profile: Profile) -> fio.FioRun:
    perf = profile.performance
    return fio.throughput_run(base, size=perf.fio.throughput_size, runtime=perf.fio.runtime)


# Ensures the etcd WAL's write pattern (small sequential writes, fdatasync after each) completes fast
# enough on the control-plane disks: slow syncs make etcd miss heartbeats and lose its leader.
@pytest.mark.requirement("PERF-001")
def test_etcd_disk_fdatasync_latency(disk_target: DiskTarget, measure_disk: Measure, profile: Profile,
                                     evidence: Evidence) -> None:
    report = measure_disk(disk_target, _recipe(disk_target.directory, profile))
    _judge_fdatasync(report, f"etcd disk {disk_target}", profile, evidence)


def _judge_throughput(report: fio.FioReport, where: str, class_name: str) -> None:
    """Sequential write IOPS and bandwidth against an etcd hardware class (PERF-003 and PERF-004)."""
    wanted = etcd_class(class_name)
    iops, bandwidth = report.job("write-iops"), report.job("write-bandwidth")
    short = []
    if iops.write_iops < wanted.iops:
        short.append(f"{iops.write_iops:.0f} IOPS (4 KiB, queue depth 32) < {wanted.iops}")
    if bandwidth.write_bandwidth_mb_s < wanted.bandwidth_mb_s:
        short.append(f"{bandwidth.write_bandwidth_mb_s:.1f} MB/s (1 MiB blocks) < {wanted.bandwidth_mb_s:g}")
    expect(not short, where,
           expected=f"sequential writes of at least {wanted.iops} IOPS and {wanted.bandwidth_mb_s:g} MB/s, the "
                    f"{wanted.describe()} of etcd's hardware guide",
           found="; ".join(short) + f" on {report.filesystem}")


# Ensures the control-plane disks sustain the write rate and bandwidth of the chosen etcd class
# (compaction, snapshots and a recovering member write in bulk).
@pytest.mark.requirement("PERF-003")
def test_etcd_disk_throughput(disk_target: DiskTarget, measure_disk: Measure, profile: Profile,
                              evidence: Evidence) -> None:
    report = measure_disk(disk_target, _throughput(disk_target.directory, profile))
    _attach_throughput(report, evidence)
    _judge_throughput(report, f"etcd disk {disk_target}", profile.performance.seed_etcd_class)


def _attach_throughput(report: fio.FioReport, evidence: Evidence) -> None:
    evidence.figure("write IOPS (4 KiB, queue depth 32)", report.job("write-iops").write_iops, "IOPS", "higher")
    evidence.figure("write bandwidth (1 MiB blocks)", report.job("write-bandwidth").write_bandwidth_mb_s, "MB/s",
                    "higher")
    evidence.attach("measured", {job.name: {"write_iops": round(job.write_iops), "write_mb_s": round(
        job.write_bandwidth_mb_s, 1), "runtime_ms": job.runtime_ms} for job in report.jobs})


#: Where the Job's volume is mounted (a path of its own, so nothing else in the container is measured).
VOLUME_MOUNT = "/var/lib/kkp-readiness-fio"


def _measure_fast_volume(active: ActiveSessions, seed: SeedTarget, profile: Profile, run: fio.FioRun,
                         evidence: Evidence) -> fio.FioReport:
    """Run ``run`` in a Job on a fresh PVC of the fast class and read fio's report from the pod's log."""
    perf = profile.performance
    if "storageclass" not in perf.targets:
        pytest.skip("performance.targets has no storageclass target (a Job measuring a kubermatic-fast volume)")
    assert perf.storageclass.image is not None  # the profile model requires it with the target
    session = active(seed)
    timeout = perf.storageclass.timeout
    evidence.attach(f"fio command ({run.kind}) in a Job", run.command_line())
    job = session.run_job(f"fio-{run.kind}", profile.storage.fast_class, perf.storageclass.volume_size,
                          perf.storageclass.image, ["sh", "-c", run.script(max(1.0, timeout - SLACK_S))],
                          VOLUME_MOUNT, timeout)
    where = f"a {profile.storage.fast_class} volume ({session.namespace}/fio-{run.kind}) of seed {seed}"
    evidence.attach("Job", {"done": job.done, "succeeded": job.succeeded, "waited_s": round(job.waited, 1),
                            "exit_code": job.exit_code, "pod_phase": job.pod_phase, "reason": job.reason,
                            "image": perf.storageclass.image})
    if not job.succeeded:
        if job.exit_code == fio.NOT_FOUND:
            raise fio.FioMissing(f"the image {perf.storageclass.image} has no fio (exit 127); set "
                                 "performance.storageclass.image to an image with fio and sh on its PATH")
        raise KubeProbeError(f"the fio Job on {where} did not succeed: {job.reason}")
    return report_with_evidence(run, 0, job.log, "", where, evidence)


# Ensures the storage KKP puts user-cluster etcds on syncs as fast as etcd needs.
@pytest.mark.requirement("PERF-002")
def test_fast_class_fdatasync_latency(active: ActiveSessions, seed: SeedTarget, profile: Profile,
                                      evidence: Evidence) -> None:
    report = _measure_fast_volume(active, seed, profile, _recipe(VOLUME_MOUNT, profile), evidence)
    _judge_fdatasync(report, f"{profile.storage.fast_class} volume of seed {seed}", profile, evidence)


# Ensures kubermatic-fast sustains the write rate and bandwidth of its etcd class (large by default).
@pytest.mark.requirement("PERF-004")
def test_fast_class_throughput(active: ActiveSessions, seed: SeedTarget, profile: Profile,
                               evidence: Evidence) -> None:
    report = _measure_fast_volume(active, seed, profile, _throughput(VOLUME_MOUNT, profile), evidence)
    _attach_throughput(report, evidence)
    _judge_throughput(report, f"{profile.storage.fast_class} volume of seed {seed}",
                      profile.performance.fast_storage_class)


def _etcd_tls(loaded: LoadedProfile) -> etcd_perf.EtcdClientTls:
    spec = loaded.profile.performance.etcd
    assert spec is not None
    field = ("performance", "etcd")
    return etcd_perf.EtcdClientTls(loaded.resolve_path((*field, "ca_bundle"), spec.ca_bundle),
                                   loaded.resolve_path((*field, "cert_file"), spec.cert_file),
                                   loaded.resolve_path((*field, "key_file"), spec.key_file))


# Ensures etcd itself, on this hardware, sustains the request rate of the chosen class with bounded latency.
@pytest.mark.requirement("PERF-005")
def test_etcd_check_perf(loaded_profile: LoadedProfile, request: pytest.FixtureRequest, target_shell: TargetShell,
                         evidence: Evidence) -> None:
    perf = loaded_profile.profile.performance
    load = etcd_class(perf.seed_etcd_class).check_perf_load
    prefix = f"/kkp-readiness-check-perf/{secrets.token_hex(6)}/"
    timeout = etcd_perf.DURATION_S + SLACK_S
    if perf.etcd is not None and request.config.getoption("active"):
        tls, limit = _etcd_tls(loaded_profile), loaded_profile.profile.timeouts.kube
        where = f"etcd {', '.join(perf.etcd.endpoints)}"
        health = run_local(etcd_perf.health_argv(perf.etcd.endpoints, tls, limit), limit * 2, env={"ETCDCTL_API": "3"})
        etcd_perf.read_health(health.exit_status, health.stdout, health.stderr, where)
        argv = etcd_perf.check_perf_argv(perf.etcd.endpoints, load, prefix, tls, limit)
        evidence.attach("command", " ".join(argv))
        result = run_local(argv, timeout, env={"ETCDCTL_API": "3"})
    else:
        targets = disk_targets(loaded_profile)
        if not targets:
            pytest.skip("no etcd to load: name one in performance.etcd and run with --active, or add a local or node "
                        "target to performance.targets for a throwaway etcd")
        target = targets[0]
        where = f"a throwaway etcd in {target}"
        script = etcd_perf.throwaway_script(target.directory, load, prefix, etcd_perf.throwaway_ports(), timeout - 10)
        evidence.attach("script", script)
        result = target_shell.run(target, script, timeout)
    outcome = etcd_perf.read_check_perf(result.exit_status, result.stdout, result.stderr, load, where)
    evidence.attach(f"etcdctl check perf --load={load} against {where}", outcome.to_dict())
    if outcome.throughput is not None:
        evidence.figure(f"check perf throughput (load {load})", outcome.throughput, "writes/s", "higher")
    if outcome.slowest_s is not None:
        evidence.figure(f"check perf slowest request (load {load})", outcome.slowest_s, "s", "lower")
    rate = etcd_perf.LOAD_RATES[load]
    expect(outcome.passed, f"etcdctl check perf against {where}",
           expected=f"PASS at load {load} (the {perf.seed_etcd_class} class: over "
                    f"{etcd_perf.MIN_THROUGHPUT_SHARE:.0%} of {rate} writes/s, slowest request at most "
                    f"{etcd_perf.MAX_SLOWEST_S:g} s, stddev at most {etcd_perf.MAX_STDDEV_S:g} s)",
           found="FAIL: " + ("; ".join(outcome.failed_criteria()) or f"{outcome.summary()}, see the output"))


# Ensures the control-plane machines have the CPUs and memory of the etcd class they must serve.
@pytest.mark.requirement("PERF-006")
def test_control_plane_nodes_match_etcd_class(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                              evidence: Evidence) -> None:
    wanted = etcd_class(profile.performance.seed_etcd_class)
    nodes = [n for n in clusters(seed).nodes() if facts.is_control_plane(n)]
    if not nodes:
        raise ProbeError(f"seed {seed} shows no control-plane nodes (label node-role.kubernetes.io/control-plane); "
                         "cannot size them")
    sizes = {facts.name(n): facts.capacity(n) for n in nodes}
    evidence.attach(f"control-plane nodes of seed {seed}", {name: {"cpus": c, "memory_gib": round(m, 2)}
                                                              for name, (c, m) in sizes.items()})
    # A machine sold with 16 GB reports a little less as capacity (kernel reservations): allow 5 %.
    small = {name: (c, m) for name, (c, m) in sizes.items() if c < wanted.cpus or m < wanted.memory_gib * 0.95}
    expect(not small, f"control-plane nodes of seed {seed}",
           expected=f"at least {wanted.cpus} CPUs and {wanted.memory_gib:g} GiB each, the {wanted.describe()}",
           found="; ".join(f"{name}: {c:g} CPUs, {m:.1f} GiB" for name, (c, m) in sorted(small.items())))
