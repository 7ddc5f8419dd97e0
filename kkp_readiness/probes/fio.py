"""fio: the command lines of the etcd disk measurements, and the figures read from fio's JSON.

Two runs per target. The *etcd recipe* (etcd's performance guide and the widely used IBM article:
sequential writes of etcd's WAL entry size, ``fdatasync`` after each, sync engine) gives the
fdatasync latency percentiles PERF-001/002 judge. The *throughput* run, two jobs one after the
other (``stonewall``), gives sequential write IOPS (4 KiB, queue depth 32, direct I/O: what "max
concurrent IOPS" means in etcd's hardware guide) and sequential write bandwidth (1 MiB blocks), which
PERF-003/004 compare with the etcd class's figures.

Every job is bounded twice: fio's ``--runtime`` stops a slow disk early (its percentiles are then
taken over the writes done until then, and the report says how many), and the caller's timeout
stops the shell around it. The commands only ever write into a fresh temporary directory they
remove on exit, also when interrupted.

>>> recipe = etcd_recipe("/var/lib/etcd", size="22m", block_size=2300, runtime=60)
>>> recipe.argv("/var/lib/etcd/.kkp-readiness-fio")[:4]
['fio', '--output-format=json', '--name=etcd-wal', '--directory=/var/lib/etcd/.kkp-readiness-fio']
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from kkp_readiness.errors import ProbeError

#: fio's exit status when the shell around it finds no fio (command not found).
NOT_FOUND = 127
#: The marker the script prints before fio's output: the filesystem type of the measured directory.
FS_MARKER = "kkp-readiness-filesystem:"
#: fio's default percentile list holds 99.0; these keys are how the JSON names the ones we report.
REPORTED_PERCENTILES = ("50.000000", "90.000000", "95.000000", "99.000000", "99.900000")


class FioError(ProbeError):
    """fio could not run or its output could not be read: an ``error``, never a finding about the disk."""


class FioMissing(FioError):
    """The target has no fio on its PATH."""


@dataclass(frozen=True)
class FioJobSpec:
    """One fio job: its name and its options (fio's own command-line spelling, without ``--``)."""

    name: str
    options: tuple[tuple[str, str], ...]

    def args(self) -> list[str]:
        return [f"--name={self.name}", *(f"--{key}={value}" if value else f"--{key}" for key, value in self.options)]


@dataclass(frozen=True)
class FioRun:
    """fio jobs that run in one fio process in a temporary directory under ``base``."""

    kind: str
    base: str
    jobs: tuple[FioJobSpec, ...]
    runtime: float

    def argv(self, directory: str) -> list[str]:
        """fio's command line writing into ``directory`` (JSON on stdout)."""
        argv = ["fio", "--output-format=json"]
        for job in self.jobs:
            argv += [job.args()[0], f"--directory={directory}", *job.args()[1:]]
        return argv

    def command_line(self) -> str:
        """The command line as a user would type it in the measured directory (the report's evidence)."""
        return shlex.join(self.argv(f"{self.base.rstrip('/')}/<temporary directory>"))

    def script(self, timeout: float) -> str:
        """A POSIX shell script: check fio, make the temporary directory, run fio bounded by ``timeout``, clean up.

        Exit 127 when fio is missing, 3 when ``base`` is not a directory; fio's JSON follows a line
        naming the filesystem type and device (``findmnt``, else ``stat -f``), so the report says what
        was measured (ext4 on /dev/sdb, xfs, tmpfs...).
        """
        base = shlex.quote(self.base)
        fio = shlex.join(self.argv("__DIR__")).replace("__DIR__", '"$work"')
        limit = max(1, int(timeout))
        return "\n".join([
            "set -u",
            f"command -v fio >/dev/null 2>&1 || {{ echo 'fio: command not found' >&2; exit {NOT_FOUND}; }}",
            f"[ -d {base} ] || {{ echo 'not a directory: '{base} >&2; exit 3; }}",
            f"work=$(mktemp -d {base}/.kkp-readiness-fio.XXXXXX) || exit 3",
            "trap 'rm -rf \"$work\"' EXIT",
            "trap 'exit 143' INT TERM HUP",
            f"echo {FS_MARKER}$(findmnt -n -o FSTYPE,SOURCE -T \"$work\" 2>/dev/null || stat -f -c %T \"$work\")",
            # timeout(1) bounds fio even if its own --runtime does not (a hung device); -k kills it for good.
            f"if command -v timeout >/dev/null 2>&1; then timeout -k 5 {limit} {fio}; else {fio}; fi",
        ])


def size_bytes(size: str) -> int:
    """fio's size syntax (``22m``, ``512k``, ``1g``, plain bytes; binary units, as fio reads them) in bytes.

    >>> size_bytes("22m"), size_bytes("4096")
    (23068672, 4096)
    """
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(size[:-1]) * units[size[-1].lower()] if size[-1].isalpha() else int(size)


def etcd_recipe(base: str, *, size: str, block_size: int, runtime: float) -> FioRun:
    """The etcd WAL recipe: sequential ``block_size`` writes, fdatasync after each, sync engine, ``size`` bytes."""
    job = FioJobSpec("etcd-wal", (("rw", "write"), ("ioengine", "sync"), ("fdatasync", "1"), ("size", size),
                                  ("bs", str(block_size)), ("runtime", f"{max(1, int(runtime))}")))
    return FioRun("etcd-recipe", base, (job,), runtime)


def throughput_run(base: str, *, size: str, runtime: float) -> FioRun:
    """Sequential write IOPS (4 KiB, depth 32) then bandwidth (1 MiB, depth 8), direct I/O, one after the other."""
    common = (("rw", "write"), ("ioengine", "libaio"), ("direct", "1"), ("size", size),
              ("runtime", f"{max(1, int(runtime))}"))
    iops = FioJobSpec("write-iops", (*common, ("bs", "4k"), ("iodepth", "32")))
    bandwidth = FioJobSpec("write-bandwidth", (*common, ("bs", "1m"), ("iodepth", "8"), ("stonewall", "")))
    return FioRun("throughput", base, (iops, bandwidth), runtime * 2)


@dataclass(frozen=True)
class FioJobResult:
    """What one job measured (latencies in milliseconds, bandwidth in bytes per second)."""

    name: str
    error: int
    runtime_ms: int
    write_ios: int
    write_bytes: int
    write_iops: float
    write_bw_bytes: float
    sync_count: int
    sync_percentiles_ms: dict[str, float] = field(default_factory=dict)

    def sync_percentile(self, percentile: float) -> float | None:
        """The fdatasync latency percentile in ms (``99.0`` -> fio's ``"99.000000"``), None if fio gave none."""
        return self.sync_percentiles_ms.get(f"{percentile:.6f}")

    @property
    def write_bandwidth_mb_s(self) -> float:
        """Bandwidth in MB/s (10^6 bytes), the unit of etcd's hardware guide."""
        return self.write_bw_bytes / 1e6


@dataclass(frozen=True)
class FioReport:
    """fio's JSON output, read: its version, the filesystem measured and each job's figures."""

    version: str
    jobs: tuple[FioJobResult, ...]
    filesystem: str = "unknown"
    raw: str = ""

    def job(self, name: str) -> FioJobResult:
        for job in self.jobs:
            if job.name == name:
                return job
        raise FioError(f"fio's output has no job {name!r} (jobs: {', '.join(j.name for j in self.jobs) or 'none'})")


def _json_start(text: str) -> int:
    """Where fio's JSON begins: fio may print notes ("note: both iodepth >= 1 and synchronous I/O engine ...")
    and our filesystem marker before it."""
    for index, line in enumerate(text.splitlines(keepends=True)):
        if line.startswith("{"):
            return sum(len(previous) for previous in text.splitlines(keepends=True)[:index])
    raise FioError("fio printed no JSON document (was --output-format=json honoured?): "
                   f"{text.strip()[:300]!r}")


def _sync_latencies(job: dict[str, Any]) -> tuple[int, dict[str, float]]:
    """fdatasync latencies in ms: fio >= 3.5 reports them under ``sync.lat_ns`` (older ones do not at all)."""
    sync = job.get("sync")
    if not isinstance(sync, dict):
        return 0, {}
    lat = sync.get("lat_ns") or {}
    percentiles = lat.get("percentile") or {}
    count = int(lat.get("N", sync.get("total_ios", 0)) or 0)
    return count, {key: float(value) / 1e6 for key, value in percentiles.items()}


def parse_fio_json(text: str) -> FioReport:
    """Read fio's ``--output-format=json`` output (with any notes before it) into a ``FioReport``.

    >>> report = parse_fio_json('note: x\\n{"fio version": "fio-3.33", "jobs": [{"jobname": "j", "error": 0,'
    ...     ' "job_runtime": 10, "write": {"total_ios": 5, "iops": 500.0, "bw_bytes": 1150000},'
    ...     ' "sync": {"total_ios": 0, "lat_ns": {"N": 5, "percentile": {"99.000000": 2088960}}}}]}')
    >>> report.version, report.job("j").sync_percentile(99.0), report.job("j").write_iops
    ('fio-3.33', 2.08896, 500.0)
    """
    filesystem = "unknown"
    for line in text.splitlines():
        if line.startswith(FS_MARKER):
            filesystem = line[len(FS_MARKER):].strip() or "unknown"
    start = _json_start(text)
    try:
        document = json.JSONDecoder().raw_decode(text[start:])[0]
    except json.JSONDecodeError as exc:
        raise FioError(f"fio's JSON output is malformed: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("jobs"), list):
        raise FioError("fio's JSON output has no jobs list")
    jobs = []
    for job in document["jobs"]:
        write = job.get("write") or {}
        count, percentiles = _sync_latencies(job)
        bw_bytes = write.get("bw_bytes")
        jobs.append(FioJobResult(
            name=str(job.get("jobname", "")),
            error=int(job.get("error", 0) or 0),
            runtime_ms=int(job.get("job_runtime", write.get("runtime", 0)) or 0),
            write_ios=int(write.get("total_ios", 0) or 0),
            write_bytes=int(write.get("io_bytes", 0) or 0),
            write_iops=float(write.get("iops", 0.0) or 0.0),
            # bw_bytes appeared in fio 3.x; before, only bw (KiB/s).
            write_bw_bytes=float(bw_bytes) if bw_bytes is not None else float(write.get("bw", 0) or 0) * 1024,
            sync_count=count,
            sync_percentiles_ms=percentiles,
        ))
    return FioReport(version=str(document.get("fio version", "unknown")), jobs=tuple(jobs), filesystem=filesystem,
                     raw=text[start:])


def read_result(run: FioRun, exit_status: int, stdout: str, stderr: str, where: str) -> FioReport:
    """Judge nothing, only read: fio's report, or a ``FioError`` naming what kept fio from measuring ``where``."""
    if exit_status == NOT_FOUND:
        raise FioMissing(f"fio is not installed on {where} (exit 127: {stderr.strip()[:200]}); install it there "
                         "(Debian/Ubuntu: apt-get install fio; RHEL/Rocky: dnf install fio; Flatcar: in a toolbox "
                         "container) or "
                         "measure from a machine that has it")
    if exit_status == 3:
        raise FioError(f"cannot measure in {run.base} on {where}: {stderr.strip()[:300] or 'not a directory'}")
    if exit_status == 124 or exit_status == 137:
        raise FioError(f"fio on {where} did not finish within the time limit (exit {exit_status}); the disk may "
                       "hang, or raise performance.fio.runtime")
    if exit_status != 0:
        detail = (stderr.strip() or stdout.strip())[-400:]
        raise FioError(f"fio on {where} failed (exit {exit_status}): {detail}")
    report = parse_fio_json(stdout)
    failed = [job for job in report.jobs if job.error]
    if failed:
        raise FioError(f"fio job {failed[0].name} on {where} ended with error {failed[0].error} "
                       f"({stderr.strip()[-300:]})")
    return report

