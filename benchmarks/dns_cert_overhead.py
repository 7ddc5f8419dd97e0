"""How much does running the DNS and CERT checks through pytest cost over doing the same probes by hand?

The benchmark starts ONE healthy local lab (two dnsmasq, NGINX with the lab CA; loopback only) and
times, ``--repeat`` times each, interleaved round by round so that machine noise spreads evenly:

* **pytest run**: ``python -m pytest tests_infra -m "dns or certificates" --profile=lab ...`` as a
  subprocess from the project root, exactly as an operator runs the suite (reports into a fresh
  temporary directory each time, no Allure report, no cache provider). It must exit 0: a run
  with failures or errors is not a valid sample, so the benchmark stops with its output tail.
* **pytest --collect-only**: the same command line with ``--collect-only``; interpreter start-up,
  plugin and profile loading and collection, without running a check. It shows where the time
  of the pytest run goes.
* **floor, fresh subprocess**: ``python benchmarks/dns_cert_overhead.py --floor-only``.
* **floor, in-process**: the same floor function called in this (already warm) process.

Why the floor is measured this way: the floor is the least work that yields the same evidence,
so it makes the SAME network probes the checks make, with the same library functions, and the
same judgements, but without pytest. It loads the ``lab`` profile with
``kkp_readiness.profile.load_profile`` (the profile loading is part of the job), then asks every
DNS server of the profile what DNS-001..006 ask (UI name, each ingress service name, a random
label under the base domain, a random label under each seed domain, grafana/alertmanager under
each seed domain; for DNS-006 the same names for A and AAAA), caching per (name, server, record
types) exactly as ``fixtures.site.DnsObserver`` does so that the number of DNS queries matches
the pytest run. For every certificate name it does ONE TLS fetch to the address the first DNS
server gives (as ``fixtures.site.TlsObserver``) and runs the CERT-001..007 judgements. What it
leaves out is precisely what pytest and the plugin add: collection, fixtures, parametrisation,
markers, verdict bookkeeping, evidence files and the HTML/JUnit reports.

The pytest run is a fresh interpreter, so comparing it with a floor that runs in an already warm
process would charge pytest for Python's start-up and for importing dnspython and cryptography,
which any standalone tool pays too. Hence the floor is also timed as a fresh subprocess of this
very script, and the headline ratio is pytest run / floor subprocess (medians). The in-process
floor is shown as well: it is the probes' own cost (network round trips plus judgements) without
start-up and imports. One untimed warm-up round (``--warmup``) fills the OS file cache and the
``.pyc`` files first, so the first sample is not a cold-start outlier.

Run from the project root with its virtual environment::

    .venv/bin/python benchmarks/dns_cert_overhead.py --repeat 5 [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from kkp_readiness.certs import (
    key_strength,
    load_trust_anchors,
    name_covered,
    validity,
    verify_complete_chain,
    verify_trust,
)
from kkp_readiness.probes.dns import DnsAnswer, DnsServer, random_label, resolve_addresses
from kkp_readiness.probes.tls import TlsObservation, fetch_presented_chain
from kkp_readiness.profile import load_profile

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
SELECTION = ["tests_infra", "-m", "dns or certificates", "--profile=lab"]
MLA_SERVICES = ("grafana", "alertmanager")
TAIL_LINES = 40


class BenchmarkError(Exception):
    """A sample that must not be timed as if fine (a failing run, an unhealthy lab, ...)."""


# ------------------------------------------------------------------------------------------------
# The floor: the same probes and judgements as the DNS and CERT checks, without pytest


@dataclass
class FloorResult:
    """What one floor run did and found."""

    seconds: float
    dns_queries: int
    tls_handshakes: int
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "dns_queries": self.dns_queries,
            "tls_handshakes": self.tls_handshakes,
            "problems": self.problems,
        }


def _families(addresses: Sequence[str]) -> tuple[str, ...]:
    """The record types the checks ask for a given expectation (as ``fixtures.site._families``)."""
    versions = {ipaddress.ip_address(a).version for a in addresses}
    return tuple(rdtype for version, rdtype in ((4, "A"), (6, "AAAA")) if version in versions) or ("A",)


def _require_loopback(address: str, what: str) -> None:
    if not ipaddress.ip_address(address).is_loopback:
        raise BenchmarkError(f"{what} {address} is not a loopback address; the benchmark only talks to the lab")


class _Resolver:
    """One answer per (name, server, record types), like ``DnsObserver``, counting real queries."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.queries = 0
        self._cache: dict[tuple[str, str, tuple[str, ...]], DnsAnswer] = {}

    def ask(self, name: str, server: DnsServer, expected: Sequence[str] | None = None) -> DnsAnswer:
        families = _families(expected) if expected else ("A", "AAAA")
        key = (name, str(server), families)
        if key not in self._cache:
            self._cache[key] = resolve_addresses(name, server, timeout=self.timeout, families=families)
            self.queries += len(families)
        return self._cache[key]


def run_floor() -> FloorResult:
    """Load the lab profile and make the DNS and CERT probes and judgements once; time it all."""
    start = time.perf_counter()
    loaded = load_profile("lab")
    profile = loaded.profile
    servers = [DnsServer.parse(s) for s in profile.dns.servers]
    for server in servers:
        _require_loopback(server.host, "DNS server")
    resolver = _Resolver(profile.timeouts.dns)
    problems: list[str] = []
    ingress = list(profile.ingress.addresses)
    seeds = [(seed, profile.seed_domain(seed)) for seed in profile.seeds]

    def expect_name(name: str, server: DnsServer, expected: list[str]) -> None:
        if not resolver.ask(name, server, expected).resolves_to(expected):
            problems.append(f"{name} at {server} does not resolve to {', '.join(expected)}")

    # DNS-001 .. DNS-005, per DNS server.
    for server in servers:
        for name in profile.ingress_names():  # the UI name, then each ingress service name
            expect_name(name, server, ingress)
        expect_name(f"{random_label()}.{profile.base_domain}", server, ingress)
        for seed, domain in seeds:
            expect_name(f"{random_label()}.{domain}", server, list(seed.nodeport_proxy_addresses))
            for service in MLA_SERVICES:
                expect_name(f"{service}.{domain}", server, ingress)

    # DNS-006: the same story from every server (A and AAAA), as tests_infra/test_dns.names_to_compare.
    if len(servers) > 1:
        label = random_label()
        names = profile.ingress_names()
        if profile.dns.wildcard:
            names.append(f"{label}.{profile.base_domain}")
        for seed, domain in seeds:
            if seed.expose_strategy != "LoadBalancer":
                names.append(f"{label}.{domain}")
            if seed.mla:
                names.extend(f"{service}.{domain}" for service in MLA_SERVICES)
        for name in names:
            said = {(a.status, a.addresses) for a in (resolver.ask(name, server) for server in servers)}
            if len(said) > 1:
                problems.append(f"DNS servers disagree on {name}: {sorted(said)}")

    # CERT-001 .. CERT-007: one TLS fetch per name, then the judgements.
    certificates = profile.certificates
    bundle = certificates.ca_bundle
    if bundle and not bundle.startswith("/"):
        bundle = str(loaded.path.parent / bundle)
    anchors = load_trust_anchors(bundle)
    now = datetime.now(UTC)
    observations: dict[str, TlsObservation] = {}
    for name in profile.certificate_names():
        answer = resolver.ask(name, servers[0])
        if not answer.addresses:
            problems.append(f"{name} does not resolve at {servers[0]} ({answer.status})")
            continue
        address = answer.addresses[0]
        _require_loopback(address, f"TLS endpoint of {name}")
        observation = fetch_presented_chain(address, certificates.port, name, timeout=profile.timeouts.tls)
        observations[name] = observation
        leaf = observation.leaf
        if not verify_trust(observation.chain_der, anchors).ok:
            problems.append(f"{name}: chain not trusted")
        if name_covered(name, leaf.sans_dns) is None:
            problems.append(f"{name}: not covered by the certificate")
        state, days_left = validity(leaf, now)
        if state != "valid" or days_left < certificates.min_days_left:
            problems.append(f"{name}: {state}, {days_left:.1f} days left")
        if not verify_complete_chain(observation.chain_der, anchors).ok:
            problems.append(f"{name}: incomplete chain")
        strong, described = key_strength(leaf, certificates.min_rsa_bits, certificates.min_ec_bits)
        if not strong:
            problems.append(f"{name}: {described}")
    fingerprints = {o.leaf.sha256_fingerprint for o in observations.values()}
    if certificates.single_certificate and len(fingerprints) > 1:
        problems.append(f"{len(fingerprints)} different certificates for the ingress names")
    return FloorResult(time.perf_counter() - start, resolver.queries, len(observations), problems)


# ------------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Measurement:
    label: str
    samples: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        return {
            "min": min(self.samples),
            "median": statistics.median(self.samples),
            "max": max(self.samples),
        }


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _timed_subprocess(argv: list[str], env: dict[str, str], what: str) -> tuple[float, str]:
    """Run ``argv`` from the project root; return (wall seconds, stdout). Non-zero exit: BenchmarkError."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        output = _tail(done.stdout + ("\n" + done.stderr if done.stderr.strip() else ""))
        raise BenchmarkError(f"{what} exited {done.returncode}; its output ends with:\n{output}")
    return seconds, done.stdout


class Runner:
    """The four measurements against one running lab."""

    def __init__(self, lab_dir: Path, scratch: Path) -> None:
        self.env = {**os.environ, "KKP_READINESS_LAB_DIR": str(lab_dir)}
        os.environ["KKP_READINESS_LAB_DIR"] = str(lab_dir)  # for the in-process floor's load_profile
        self.scratch = scratch
        self._runs = 0
        self.checks_passed: int | None = None
        self.collected: int | None = None
        self.floor_counts: tuple[int, int] | None = None

    def _pytest_argv(self, *extra: str) -> list[str]:
        self._runs += 1
        reports = self.scratch / f"reports-{self._runs}"  # fresh each time: no run piles up for the next
        return [sys.executable, "-m", "pytest", *SELECTION, f"--reports-dir={reports}",
                "-p", "no:cacheprovider", "--no-allure-report", "-q", *extra]

    def pytest_run(self) -> float:
        seconds, out = _timed_subprocess(self._pytest_argv(), self.env, "the pytest run")
        match = re.search(r"(\d+) passed", out)
        if not match or re.search(r"\d+ (failed|error)", out):
            raise BenchmarkError(f"the pytest run did not pass every check; its output ends with:\n{_tail(out)}")
        self.checks_passed = int(match[1])
        return seconds

    def pytest_collect(self) -> float:
        seconds, out = _timed_subprocess(self._pytest_argv("--collect-only"), self.env, "pytest --collect-only")
        match = re.search(r"(\d+) tests? collected", out)
        self.collected = int(match[1]) if match else None
        return seconds

    def floor_subprocess(self) -> float:
        argv = [sys.executable, str(SCRIPT), "--floor-only"]
        seconds, out = _timed_subprocess(argv, self.env, "the floor subprocess")
        result = json.loads(out.strip().splitlines()[-1])
        self._accept_floor(FloorResult(**result))
        return seconds

    def floor_in_process(self) -> float:
        return self._accept_floor(run_floor())

    def _accept_floor(self, result: FloorResult) -> float:
        if result.problems:
            raise BenchmarkError("the floor found problems on the lab:\n  " + "\n  ".join(result.problems))
        self.floor_counts = (result.dns_queries, result.tls_handshakes)
        return result.seconds


def measure(runner: Runner, repeat: int, warmup: int) -> list[Measurement]:
    plan: list[tuple[Measurement, Callable[[], float]]] = [
        (Measurement("pytest run (subprocess)"), runner.pytest_run),
        (Measurement("pytest --collect-only (subprocess)"), runner.pytest_collect),
        (Measurement("floor, fresh subprocess"), runner.floor_subprocess),
        (Measurement("floor, in-process (no start-up)"), runner.floor_in_process),
    ]
    for round_number in range(warmup + repeat):
        for measurement, run in plan:
            seconds = run()
            if round_number >= warmup:
                measurement.samples.append(seconds)
    return [measurement for measurement, _ in plan]


# ------------------------------------------------------------------------------------------------
# Reporting


def figures(measurements: list[Measurement], runner: Runner, repeat: int, warmup: int) -> dict[str, Any]:
    by_key = dict(zip(("pytest_run", "pytest_collect_only", "floor_subprocess", "floor_in_process"),
                      measurements, strict=True))
    med = {key: m.summary()["median"] for key, m in by_key.items()}
    queries, handshakes = runner.floor_counts or (0, 0)
    return {
        "repeat": repeat,
        "warmup": warmup,
        "python": sys.version.split()[0],
        "checks_passed": runner.checks_passed,
        "tests_collected": runner.collected,
        "floor_dns_queries": queries,
        "floor_tls_handshakes": handshakes,
        "measurements": {
            key: {"label": m.label, "samples_s": [round(s, 6) for s in m.samples],
                  **{k: round(v, 6) for k, v in m.summary().items()}}
            for key, m in by_key.items()
        },
        "ratio_pytest_to_floor_subprocess": round(med["pytest_run"] / med["floor_subprocess"], 3),
        "ratio_pytest_to_floor_in_process": round(med["pytest_run"] / med["floor_in_process"], 3),
        "breakdown_s": {
            "collection_incl_startup": round(med["pytest_collect_only"], 6),
            "running_checks_and_reports": round(med["pytest_run"] - med["pytest_collect_only"], 6),
            "floor_subprocess": round(med["floor_subprocess"], 6),
            "overhead_over_floor": round(med["pytest_run"] - med["floor_subprocess"], 6),
        },
    }


def print_report(data: dict[str, Any]) -> None:
    rows = data["measurements"]
    width = max(len(row["label"]) for row in rows.values())
    print(f"DNS + CERT checks on the local lab: {data['checks_passed']} checks passed per pytest run; "
          f"floor = {data['floor_dns_queries']} DNS queries + {data['floor_tls_handshakes']} TLS handshakes")
    print(f"{data['repeat']} timed runs each (after {data['warmup']} warm-up), Python {data['python']}, "
          "wall time in seconds")
    print()
    print(f"{'measurement':<{width}}  {'min':>7}  {'median':>7}  {'max':>7}")
    for row in rows.values():
        print(f"{row['label']:<{width}}  {row['min']:7.3f}  {row['median']:7.3f}  {row['max']:7.3f}")
    print()
    print(f"ratio of medians, pytest run / floor (fresh subprocess): {data['ratio_pytest_to_floor_subprocess']:.2f}x")
    print(f"ratio of medians, pytest run / floor (in-process):       {data['ratio_pytest_to_floor_in_process']:.2f}x")
    print()
    b = data["breakdown_s"]
    total = rows["pytest_run"]["median"]
    print("where the pytest run's time goes (medians):")
    lines = [
        ("start-up, plugin, profile and collection (--collect-only)", b["collection_incl_startup"]),
        ("running the checks, verdicts and reports (the rest)", b["running_checks_and_reports"]),
        ("  of which the floor's probes and judgements (in-process)", rows["floor_in_process"]["median"]),
        ("the floor as a standalone script (fresh subprocess)", b["floor_subprocess"]),
        ("pytest overhead over that floor", b["overhead_over_floor"]),
    ]
    label_width = max(len(text) for text, _ in lines)
    for text, seconds in lines:
        print(f"  {text:<{label_width}}  {seconds:7.3f} s  {100 * seconds / total:5.1f} %")


# ------------------------------------------------------------------------------------------------
# Entry points


def floor_only() -> int:
    """``--floor-only``: one floor run against the lab in $KKP_READINESS_LAB_DIR; print it as JSON."""
    if not os.environ.get("KKP_READINESS_LAB_DIR"):
        print("--floor-only needs KKP_READINESS_LAB_DIR (the work directory of a running lab)", file=sys.stderr)
        return 2
    result = run_floor()
    print(json.dumps(result.to_dict()))
    return 1 if result.problems else 0


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through ``with Lab()``, which stops the lab


@contextlib.contextmanager
def _scratch_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kkp-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds before timing (default 1)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--floor-only", action="store_true",
                        help="internal: one floor run against $KKP_READINESS_LAB_DIR, printed as JSON")
    args = parser.parse_args(argv)
    if args.floor_only:
        return floor_only()
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be >= 1 and --warmup >= 0")

    from kkp_readiness.lab import Lab  # only here: the floor subprocess must not pay for importing it

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (``&``)
    try:
        with _scratch_dir() as scratch, Lab() as lab:
            unhealthy = [name for name, ok in lab.status().items() if not ok]
            if unhealthy:
                raise BenchmarkError(f"the lab is not healthy: {', '.join(unhealthy)}")
            runner = Runner(lab.workdir, scratch)
            data = figures(measure(runner, args.repeat, args.warmup), runner, args.repeat, args.warmup)
    except BenchmarkError as exc:
        print(f"benchmark aborted: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the lab was stopped", file=sys.stderr)
        return 130
    print_report(data)
    if args.json:
        print()
        print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
