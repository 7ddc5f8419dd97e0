"""etcdctl check perf, read: recorded outputs of etcdctl 3.4 (a pass at load m, a CPU-starved etcd at load s)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from kkp_readiness.probes import etcd_perf

DATA = Path(__file__).resolve().parents[1] / "data" / "etcd"


def test_a_pass_with_the_progress_bar_before_it() -> None:
    result = etcd_perf.parse_check_perf((DATA / "check-perf-m-pass.txt").read_text(), "m")
    assert (result.passed, result.throughput, result.slowest_s, result.stddev_s) == (True, 995, 0.029062, 0.000341)
    assert result.failed_criteria() == []


def test_a_cpu_starved_etcd_fails_on_its_slowest_request() -> None:
    """etcdctl prints the failing slowest-request line without the FAIL: prefix."""
    result = etcd_perf.parse_check_perf((DATA / "check-perf-s-cpu-starved.txt").read_text(), "s")
    assert not result.passed
    assert result.failed_criteria() == ["slowest request 0.802642 s > 0.5 s"]


def test_every_criterion_and_request_errors() -> None:
    output = ("FAIL: too many errors\nFAIL: ERROR(context deadline exceeded) -> 12\nFAIL: Throughput too low: 37 "
              "writes/s\nSlowest request took too long: 2.187643s\nStddev too high: 0.304261s\nFAIL\n")
    result = etcd_perf.parse_check_perf(output, "s")
    assert result.errors == {"context deadline exceeded": 12}
    assert result.failed_criteria() == ["throughput 37 writes/s <= 90% of 150", "slowest request 2.18764 s > 0.5 s",
                                        "stddev 0.304261 s > 0.1 s", "request errors: context deadline exceeded x12"]


def test_no_verdict_is_an_error_with_etcdctls_reason() -> None:
    stderr = ('{"level":"warn","caller":"clientv3/retry_interceptor.go:62","msg":"retrying of unary invoker failed",'
              '"error":"rpc error: code = DeadlineExceeded desc = latest balancer error: all SubConns are in '
              'TransientFailure"}\nError: context deadline exceeded\n')
    with pytest.raises(etcd_perf.EtcdProbeError, match=r"Error: context deadline exceeded.*nothing answered"):
        etcd_perf.read_check_perf(1, "", stderr, "s", "etcd https://127.0.0.1:9")


@pytest.mark.parametrize(("status", "words"), [(127, "apt-get install etcd-server"), (3, "cannot start"),
                                           (4, "did not start")])
def test_throwaway_failures_say_what_happened(status: int, words: str) -> None:
    with pytest.raises(etcd_perf.EtcdProbeError, match=words):
        etcd_perf.read_check_perf(status, "", "detail", "m", "a throwaway etcd")


def test_the_command_line_verifies_tls_and_uses_its_own_prefix() -> None:
    argv = etcd_perf.check_perf_argv(["https://10.0.0.1:2379"], "m", "/kkp-readiness-check-perf/ab/",
                                     etcd_perf.EtcdClientTls("/ca.pem", "/c.pem", "/k.pem"))
    assert argv[-3:] == ["perf", "--load=m", "--prefix=/kkp-readiness-check-perf/ab/"]
    assert {"--cacert=/ca.pem", "--cert=/c.pem", "--key=/k.pem"} <= set(argv)
    assert not any("insecure" in a for a in argv)
    with pytest.raises(ValueError):
        etcd_perf.check_perf_argv(["https://10.0.0.1:2379"], "huge", "/p/")


def test_the_throwaway_script_without_etcd_exits_127(tmp_path: Path) -> None:
    script = etcd_perf.throwaway_script(str(tmp_path), "s", "/p/", [(23791, 23801)], 90)
    result = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "PATH": "/nonexistent"})
    assert result.returncode == 127
    assert "etcd" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unhealthy_endpoint_is_named_before_check_perf_runs() -> None:
    with pytest.raises(etcd_perf.EtcdProbeError, match=r"is unhealthy: failed to commit proposal.*nothing answered"):
        etcd_perf.read_health(1, "", "https://127.0.0.1:9 is unhealthy: failed to commit proposal: context deadline "
                                     "exceeded\nError: unhealthy cluster\n", "etcd https://127.0.0.1:9")
    etcd_perf.read_health(0, "https://127.0.0.1:2379 is healthy: successfully committed proposal", "", "etcd")
    argv = etcd_perf.health_argv(["https://127.0.0.1:2379"], etcd_perf.EtcdClientTls("/ca"), 3)
    assert argv[-2:] == ["endpoint", "health"]
    assert "--command-timeout=3s" in argv


@pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd-server is not installed (./scripts/setup installs it)")
def test_the_throwaway_etcd_moves_on_when_its_port_is_taken(tmp_path: Path) -> None:
    """The first pair's client port is taken (as by an outgoing connection or another run): the second pair is used.
    check perf is cut after 1 s by the script's own timeout (exit 124): the etcd had started."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        free = etcd_perf.throwaway_ports(1)[0]
        script = etcd_perf.throwaway_script(str(tmp_path), "s", "/p/", [(busy, free[1]), free], 1)
        result = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert "did not start" not in result.stderr, result.stderr
    assert result.returncode == 124, result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []  # removed again
