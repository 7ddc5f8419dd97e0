"""``etcdctl check perf``: its command lines (against a named etcd, or a throwaway one) and its verdict, read.

check perf writes keys under a prefix for 60 s at the rate of a workload model (``--load``: s, m,
l, xl, the sizes of etcd's hardware classes), then prints one line per criterion and PASS or FAIL.
Its criteria (etcdctl's ``ctlv3/command/check.go``): throughput above 90 % of the model's rate,
slowest request at most 0.5 s, standard deviation at most 0.1 s. etcdctl prints the failing
slowest-request and stddev lines *without* the ``FAIL:`` prefix, so they are read by their text.

Against a named etcd it writes keys, hence only with ``--active``; the prefix is unique per run
and check perf deletes it afterwards. The throwaway variant starts an etcd of its own in a
temporary directory on the target disk (the etcd data directory's filesystem on a node), on
loopback ports of that machine, and removes both when done, also when interrupted.

>>> result = parse_check_perf("PASS: Throughput is 151 writes/s\\nSlowest request took too long: 0.8s\\n"
...                          "PASS: Stddev is 0.07s\\nFAIL\\n", "s")
>>> result.passed, result.throughput, result.slowest_s, result.failed_criteria()
(False, 151, 0.8, ['slowest request 0.8 s > 0.5 s'])
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from kkp_readiness.errors import ProbeError
from kkp_readiness.probes.fio import FS_MARKER, NOT_FOUND

#: The workload models of check perf: writes per second it drives (and the clients it uses).
LOAD_RATES = {"s": 150, "m": 1000, "l": 8000, "xl": 15000}
LOAD_CLIENTS = {"s": 50, "m": 200, "l": 500, "xl": 1000}
#: check perf's pass criteria.
MIN_THROUGHPUT_SHARE = 0.9
MAX_SLOWEST_S = 0.5
MAX_STDDEV_S = 0.1
#: How long check perf runs, whatever the load (etcdctl's fixed duration).
DURATION_S = 60

_THROUGHPUT = re.compile(r"Throughput (?:is|too low:) (\d+) writes/s")
_SLOWEST = re.compile(r"Slowest request took(?: too long:)? ([0-9.]+)s")
_STDDEV = re.compile(r"Stddev (?:is|too high:) ([0-9.]+)s")
_ERRORS = re.compile(r"FAIL: ERROR\((.*)\) -> (\d+)")


class EtcdProbeError(ProbeError):
    """check perf could not run (etcd unreachable, refused certificates, tools missing)."""


@dataclass(frozen=True)
class CheckPerfResult:
    """check perf's verdict and figures."""

    load: str
    passed: bool
    throughput: int | None
    slowest_s: float | None
    stddev_s: float | None
    errors: dict[str, int] = field(default_factory=dict)
    lines: tuple[str, ...] = ()

    def failed_criteria(self) -> list[str]:
        """Each criterion not met, with the figure and its limit (the message's "found")."""
        failed = []
        rate = LOAD_RATES[self.load]
        if self.throughput is not None and self.throughput / rate <= MIN_THROUGHPUT_SHARE:
            failed.append(f"throughput {self.throughput} writes/s <= {MIN_THROUGHPUT_SHARE:.0%} of {rate}")
        if self.slowest_s is not None and self.slowest_s > MAX_SLOWEST_S:
            failed.append(f"slowest request {self.slowest_s:g} s > {MAX_SLOWEST_S:g} s")
        if self.stddev_s is not None and self.stddev_s > MAX_STDDEV_S:
            failed.append(f"stddev {self.stddev_s:g} s > {MAX_STDDEV_S:g} s")
        if self.errors:
            failed.append("request errors: " + ", ".join(f"{e} x{n}" for e, n in self.errors.items()))
        return failed

    def summary(self) -> str:
        parts = [f"throughput {self.throughput} writes/s" if self.throughput is not None else "no throughput",
                 f"slowest request {self.slowest_s:g} s" if self.slowest_s is not None else "no slowest request",
                 f"stddev {self.stddev_s:g} s" if self.stddev_s is not None else "no stddev"]
        return ", ".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {"load": self.load, "passed": self.passed, "throughput_writes_per_s": self.throughput,
                "slowest_request_s": self.slowest_s, "stddev_s": self.stddev_s, "errors": self.errors,
                "criteria": {"min_throughput": f"> {MIN_THROUGHPUT_SHARE:.0%} of {LOAD_RATES[self.load]} writes/s",
                             "max_slowest_s": MAX_SLOWEST_S, "max_stddev_s": MAX_STDDEV_S},
                "output": list(self.lines)}


def _verdict_lines(output: str) -> list[str]:
    # The progress bar redraws itself with carriage returns; the verdict lines follow it.
    lines = [part.strip() for line in output.splitlines() for part in line.split("\r")]
    return [line for line in lines if line and ("writes/s" in line or "request took" in line or "Stddev" in line
                                                or line in ("PASS", "FAIL") or line.startswith("FAIL:"))]


def parse_check_perf(output: str, load: str) -> CheckPerfResult:
    """Read check perf's output; ``EtcdProbeError`` when it holds no verdict (check perf did not run)."""
    lines = _verdict_lines(output)
    final = [line for line in lines if line in ("PASS", "FAIL")]
    if not final:
        raise EtcdProbeError(f"etcdctl check perf printed no verdict: {output.strip()[-400:]!r}")
    text = "\n".join(lines)

    def number(pattern: re.Pattern[str]) -> str | None:
        match = pattern.search(text)
        return match.group(1) if match else None

    throughput, slowest, stddev = number(_THROUGHPUT), number(_SLOWEST), number(_STDDEV)
    return CheckPerfResult(
        load=load, passed=final[-1] == "PASS",
        throughput=int(throughput) if throughput else None,
        slowest_s=float(slowest) if slowest else None,
        stddev_s=float(stddev) if stddev else None,
        errors={m.group(1): int(m.group(2)) for m in _ERRORS.finditer(text)},
        lines=tuple(lines))


@dataclass(frozen=True)
class EtcdClientTls:
    """The client side of an etcd with TLS: its CA and, for client-cert-auth, a certificate and key."""

    ca_bundle: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def args(self) -> list[str]:
        args = []
        if self.ca_bundle:
            args.append(f"--cacert={self.ca_bundle}")
        if self.cert_file:
            args.append(f"--cert={self.cert_file}")
        if self.key_file:
            args.append(f"--key={self.key_file}")
        return args


def check_perf_argv(endpoints: list[str], load: str, prefix: str, tls: EtcdClientTls | None = None,
                    dial_timeout: float = 5.0) -> list[str]:
    """etcdctl's command line for check perf (the v3 API; certificates verified, never skipped)."""
    if load not in LOAD_RATES:
        raise ValueError(f"unknown check perf load {load!r} (one of {', '.join(LOAD_RATES)})")
    return ["etcdctl", f"--endpoints={','.join(endpoints)}", f"--dial-timeout={max(1, int(dial_timeout))}s",
            *(tls.args() if tls else []), "check", "perf", f"--load={load}", f"--prefix={prefix}"]


def health_argv(endpoints: list[str], tls: EtcdClientTls | None, timeout: float) -> list[str]:
    """``etcdctl endpoint health``, bounded: check perf against an etcd that does not answer would block its
    whole 60 s before failing, so the endpoints are asked first."""
    seconds = f"{max(1, int(timeout))}s"
    return ["etcdctl", f"--endpoints={','.join(endpoints)}", f"--dial-timeout={seconds}",
            f"--command-timeout={seconds}", *(tls.args() if tls else []), "endpoint", "health"]


def read_health(exit_status: int, stdout: str, stderr: str, where: str) -> None:
    """Nothing when every endpoint is healthy; an ``EtcdProbeError`` with etcdctl's reasons otherwise."""
    if exit_status == 0:
        return
    unhealthy = [line.strip() for line in (stdout + "\n" + stderr).splitlines() if "is unhealthy" in line]
    reason = "; ".join(unhealthy[:3]) or _etcdctl_reason(stderr or stdout)
    hint = " (nothing answered: etcd down, wrong port, a firewall, or certificates it refuses)" \
        if "deadline exceeded" in reason or "refused" in reason else ""
    raise EtcdProbeError(f"{where} is not healthy, check perf cannot run: {reason}{hint}")


#: Ports a throwaway etcd tries, below Linux's default ephemeral range (32768-60999) where outgoing connections
#: take their ports; one taken anyway (another service, a parallel run) makes the script try the next pair.
THROWAWAY_PORTS = (20000, 32000)
_ENDPOINT = "http://kkp-readiness-endpoint"  # replaced by the shell variable of the pair that started


def throwaway_ports(attempts: int = 4) -> list[tuple[int, int]]:
    """Random (client, peer) port pairs for ``throwaway_script``: each attempt a fresh pair."""
    low, high = THROWAWAY_PORTS
    pairs = []
    while len(pairs) < attempts:
        client, peer = low + secrets.randbelow(high - low), low + secrets.randbelow(high - low)
        if client != peer:
            pairs.append((client, peer))
    return pairs


def throwaway_script(base: str, load: str, prefix: str, ports: Sequence[tuple[int, int]], timeout: float) -> str:
    """A POSIX shell script: start an etcd in a temporary directory under ``base`` on loopback ports of the
    target (the next pair of ``ports`` when one is taken), wait until it is healthy, run check perf against it,
    stop it and remove the directory.

    Exit 127 when etcd or etcdctl is missing, 3 when ``base`` is no directory, 4 when the etcd did not
    start (its last log lines on stderr); otherwise check perf's own exit status.
    """
    quoted = shlex.quote(base)
    perf = shlex.join(check_perf_argv([_ENDPOINT], load, prefix)).replace(_ENDPOINT, '"$client"')
    pairs = " ".join(f"{client}:{peer}" for client, peer in ports)
    return "\n".join([
        "set -u",
        "export ETCDCTL_API=3",
        "for tool in etcd etcdctl; do command -v $tool >/dev/null 2>&1 || "
        f"{{ echo \"$tool: command not found\" >&2; exit {NOT_FOUND}; }}; done",
        f"[ -d {quoted} ] || {{ echo 'not a directory: '{quoted} >&2; exit 3; }}",
        f"work=$(mktemp -d {quoted}/.kkp-readiness-etcd.XXXXXX) || exit 3",
        "pid=",
        "cleanup() { if [ -n \"$pid\" ]; then kill \"$pid\" 2>/dev/null; wait \"$pid\" 2>/dev/null; fi; "
        "rm -rf \"$work\"; }",
        "trap cleanup EXIT",
        "trap 'exit 143' INT TERM HUP",
        f"echo {FS_MARKER}$(findmnt -n -o FSTYPE,SOURCE -T \"$work\" 2>/dev/null || stat -f -c %T \"$work\")",
        "healthy=",
        f"for pair in {pairs}; do",
        "  client=http://127.0.0.1:${pair%%:*}; peer=http://127.0.0.1:${pair##*:}",
        "  etcd --name kkp-readiness-perf --data-dir \"$work/data\" --listen-client-urls \"$client\" "
        "--advertise-client-urls \"$client\" --listen-peer-urls \"$peer\" --initial-advertise-peer-urls \"$peer\" "
        "--initial-cluster kkp-readiness-perf=\"$peer\" >\"$work/etcd.log\" 2>&1 &",
        "  pid=$!",
        "  tries=0",
        "  while [ $tries -lt 50 ] && kill -0 \"$pid\" 2>/dev/null; do",
        "    if etcdctl --endpoints=\"$client\" --dial-timeout=1s endpoint health >/dev/null 2>&1; then",
        "      healthy=1; break",
        "    fi",
        "    tries=$((tries + 1)); sleep 0.2",
        "  done",
        "  [ -n \"$healthy\" ] && break",
        "  kill \"$pid\" 2>/dev/null; wait \"$pid\" 2>/dev/null; pid=",
        "  grep -q 'address already in use' \"$work/etcd.log\" || break  # only a taken port is worth another try",
        "  rm -rf \"$work/data\"",
        "done",
        "[ -n \"$healthy\" ] || { echo 'the throwaway etcd did not start:' >&2; tail -n 5 \"$work/etcd.log\" >&2; "
        "exit 4; }",
        f"if command -v timeout >/dev/null 2>&1; then timeout -k 5 {max(1, int(timeout))} {perf}; else {perf}; fi",
    ])


def read_check_perf(exit_status: int, stdout: str, stderr: str, load: str, where: str) -> CheckPerfResult:
    """check perf's result, or an ``EtcdProbeError`` naming why it could not measure ``where``."""
    if exit_status == NOT_FOUND:
        raise EtcdProbeError(f"etcd/etcdctl are not installed on {where} ({stderr.strip()[:200]}); install them "
                             "(Debian/Ubuntu: apt-get install etcd-server etcd-client) or name the etcd to load "
                             "in performance.etcd and run with --active")
    if exit_status == 3:
        raise EtcdProbeError(f"cannot start a throwaway etcd on {where}: {stderr.strip()[:300]}")
    if exit_status == 4:
        raise EtcdProbeError(f"the throwaway etcd on {where} did not start: {stderr.strip()[-400:]}")
    try:
        return parse_check_perf(stdout, load)
    except EtcdProbeError:
        raise EtcdProbeError(f"etcdctl check perf against {where} did not run (exit {exit_status}): "
                             f"{_etcdctl_reason(stderr or stdout)}") from None


def _etcdctl_reason(text: str) -> str:
    """etcdctl's own ``Error: ...`` line, and the gRPC cause from its JSON warnings (refused, TLS, deadline)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    causes = {match.group(1) for line in lines for match in [re.search(r'"error":"([^"]+)"', line)] if match}
    if not errors and not causes:
        return text.strip()[-400:] or "no output"
    hint = " (nothing answered at the endpoint: etcd down, wrong port, or a firewall)" \
        if any("TransientFailure" in c or "connection refused" in c for c in causes) else ""
    return "; ".join([*errors[-1:], *sorted(causes)[:2]]) + hint
