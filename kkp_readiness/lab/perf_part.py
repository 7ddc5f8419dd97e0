"""The lab's etcd and disks: a real etcd with client certificates, and directories for fio to measure.

- ``local_dir``: what the lab profile's ``local`` target measures (``performance.local_directory``).
- ``node_etcd_dir``: the seed node's etcd data directory (``performance.etcd_data_dir``); the lab's
  node is an sshd on this machine, so its "disk" is a directory here.
- etcd (Debian's etcd-server) on 127.0.0.1 with TLS from the lab CA and ``--client-cert-auth``: the
  etcd ``performance.etcd`` names, which PERF-005 loads with ``etcdctl check perf`` under --active.

The faults make things slow for real, so that fio and etcdctl *measure* the problem:

- ``slow_disk``: the node's etcd directory is an ext4 filesystem on a loop device whose writes the
  kernel's block throttle (cgroup v1 ``blkio.throttle.write_iops_device`` / ``write_bps_device`` of the
  root group, for that device only) caps at ``SLOW_DISK_IOPS`` and ``SLOW_DISK_BPS``, the way a cloud
  volume is capped at its provisioned IOPS. Every fdatasync waits for the throttled journal writes.
- ``etcd_cpu_quota``: etcd runs in a cgroup v1 ``cpu`` group with a CFS quota (a few percent of one
  core), an etcd starved by its neighbours; check perf sees its slow requests.
- ``start_etcd`` false: nothing listens on the published etcd port.

Both need root (the lab's egress part does already); what they set up is recorded in the state, so
that ``lab down`` from another process undoes it (unmount, detach the loop device, lift the throttle,
remove the cgroup).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from kkp_readiness.errors import LabError
from kkp_readiness.lab.part import LabContext, Part
from kkp_readiness.lab.process import Daemon, free_port
from kkp_readiness.lab.topology import require_loopback

ETCD = "/usr/bin/etcd"
ETCD_ADDRESS = "127.0.0.1"
#: The throttled disk: about what a small cloud HDD volume is provisioned with.
SLOW_DISK_IOPS = 40
SLOW_DISK_BPS = 10 * 1000 * 1000
SLOW_DISK_SIZE = 256 * 1024 * 1024
BLKIO = Path("/sys/fs/cgroup/blkio")
CPU_CGROUP = Path("/sys/fs/cgroup/cpu")
CFS_PERIOD_US = 100_000


@dataclass
class PerfPlan:
    """What the lab's etcd and disks look like; faults edit it before anything starts."""

    start_etcd: bool = True
    #: The node's etcd directory sits on a throttled loop device.
    slow_disk: bool = False
    #: etcd's CPU quota in percent of one core (None: unlimited).
    etcd_cpu_quota: int | None = None


def _run(argv: list[str]) -> str:
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if completed.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed: {completed.stderr.strip() or completed.stdout.strip()}")
    return completed.stdout.strip()


def _device_numbers(device: str) -> str:
    stat = os.stat(device)
    return f"{os.major(stat.st_rdev)}:{os.minor(stat.st_rdev)}"


def make_slow_disk(image: Path, mountpoint: Path) -> dict[str, str]:
    """An ext4 filesystem on a loop device at ``mountpoint``, its writes throttled; the state to undo it."""
    if not BLKIO.joinpath("blkio.throttle.write_iops_device").exists():
        raise LabError("the slow-disk fault needs the cgroup v1 blkio throttle (/sys/fs/cgroup/blkio) and root")
    with open(image, "wb") as handle:
        handle.truncate(SLOW_DISK_SIZE)
    _run(["mkfs.ext4", "-q", "-F", str(image)])
    device = _run(["losetup", "--find", "--show", str(image)])
    numbers = _device_numbers(device)
    mountpoint.mkdir(parents=True, exist_ok=True)
    state = {"image": str(image), "device": device, "numbers": numbers, "mountpoint": str(mountpoint)}
    try:
        _run(["mount", device, str(mountpoint)])
        BLKIO.joinpath("blkio.throttle.write_iops_device").write_text(f"{numbers} {SLOW_DISK_IOPS}\n")
        BLKIO.joinpath("blkio.throttle.write_bps_device").write_text(f"{numbers} {SLOW_DISK_BPS}\n")
    except Exception:
        remove_slow_disk(state)
        raise
    return state


def remove_slow_disk(state: dict[str, str]) -> None:
    """Undo ``make_slow_disk``: lift the throttle, unmount, detach the loop device (each step best effort)."""
    errors = []
    for name in ("blkio.throttle.write_iops_device", "blkio.throttle.write_bps_device"):
        with contextlib.suppress(OSError):  # the device is gone already: no rule left
            BLKIO.joinpath(name).write_text(f"{state['numbers']} 0\n")
    for argv in (["umount", state["mountpoint"]], ["losetup", "--detach", state["device"]]):
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        if completed.returncode != 0 and "not mounted" not in completed.stderr and "No such" not in completed.stderr:
            errors.append(f"{' '.join(argv)}: {completed.stderr.strip()}")
    Path(state["image"]).unlink(missing_ok=True)
    if errors:
        raise LabError("; ".join(errors))


def starve_cpu(pid: int, name: str, percent: int) -> str:
    """Put ``pid`` in a new cgroup v1 cpu group limited to ``percent`` % of one core; the group's path."""
    if not CPU_CGROUP.joinpath("cgroup.procs").exists():
        raise LabError("the CPU quota fault needs the cgroup v1 cpu controller (/sys/fs/cgroup/cpu) and root")
    group = CPU_CGROUP / name
    group.mkdir(exist_ok=True)
    group.joinpath("cpu.cfs_period_us").write_text(f"{CFS_PERIOD_US}\n")
    group.joinpath("cpu.cfs_quota_us").write_text(f"{CFS_PERIOD_US * percent // 100}\n")
    group.joinpath("cgroup.procs").write_text(f"{pid}\n")
    return str(group)


def remove_cgroup(path: str) -> None:
    """Remove a cpu group once its processes are gone (moving any left back to the root group first)."""
    group = Path(path)
    if not group.exists():
        return
    for pid in group.joinpath("cgroup.procs").read_text().split():
        with contextlib.suppress(OSError):  # exited meanwhile
            CPU_CGROUP.joinpath("cgroup.procs").write_text(f"{pid}\n")
    try:
        group.rmdir()
    except OSError as exc:
        raise LabError(f"cannot remove the cgroup {group}: {exc}") from None


def etcd_answers(port: int) -> bool:
    with socket.create_connection((require_loopback(ETCD_ADDRESS), port), timeout=1.0):
        return True


class PerfPart(Part):
    """The disks fio measures and a real etcd for ``etcdctl check perf``."""

    name = "perf"
    undo: ClassVar[dict[str, Callable[[Any], None]]] = {"cpu_cgroup": remove_cgroup, "slow_disk": remove_slow_disk}

    def start(self, ctx: LabContext) -> dict[str, Any]:
        plan = PerfPlan()
        for fault in ctx.faults_for(self.name):
            fault.apply(plan)
        directory = ctx.directory(self.name)
        local_dir = directory / "local-disk"
        node_dir = directory / "node-etcd"
        local_dir.mkdir(exist_ok=True)
        self.state = {"local_dir": str(local_dir), "node_etcd_dir": str(node_dir)}
        if plan.slow_disk:
            if not ctx.as_root:
                raise LabError("the slow-disk fault needs root (loop device, mount, block throttle)")
            self.state["slow_disk"] = make_slow_disk(directory / "slow-disk.img", node_dir)
        else:
            node_dir.mkdir(exist_ok=True)

        now = dt.datetime.now(dt.UTC)
        server = ctx.ca.issue_leaf(["etcd.kkp.lab"], now - dt.timedelta(hours=1), now + dt.timedelta(days=30),
                                   stem="etcd-server", directory=directory, ip_addresses=[ETCD_ADDRESS])
        client = ctx.ca.issue_client("kkp-readiness", [], now - dt.timedelta(hours=1), now + dt.timedelta(days=30),
                                     stem="etcd-client", directory=directory)
        data_dir = directory / "etcd-data"
        shutil.rmtree(data_dir, ignore_errors=True)

        def make() -> tuple[Daemon, Any]:
            client_port, peer_port = free_port(ETCD_ADDRESS, udp=False), free_port(ETCD_ADDRESS, udp=False)
            client_url, peer_url = f"https://{ETCD_ADDRESS}:{client_port}", f"http://{ETCD_ADDRESS}:{peer_port}"
            argv = [ETCD, "--name", "kkp-lab", "--data-dir", str(data_dir),
                    "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                    "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                    "--initial-cluster", f"kkp-lab={peer_url}", "--client-cert-auth",
                    "--trusted-ca-file", str(ctx.ca.bundle_path), "--cert-file", str(server.fullchain),
                    "--key-file", str(server.key)]
            daemon = Daemon("etcd", argv, directory / "etcd.log", marker=str(data_dir), port=client_port)
            return daemon, lambda: etcd_answers(client_port)

        if plan.start_etcd:
            etcd = self.launch(make)
            assert etcd.port is not None
            assert etcd.pid is not None
            port = etcd.port
            if plan.etcd_cpu_quota is not None:
                if not ctx.as_root:
                    raise LabError("the etcd CPU quota fault needs root (cgroup v1 cpu controller)")
                self.state["cpu_cgroup"] = starve_cpu(etcd.pid, f"kkp-lab-etcd-{os.getpid()}-{etcd.pid}",
                                                      plan.etcd_cpu_quota)
        else:
            port = free_port(ETCD_ADDRESS, udp=False)
        self.state.update({
            "etcd_endpoint": f"https://{ETCD_ADDRESS}:{port}",
            "etcd_port": port,
            "etcd_ca": str(ctx.ca.bundle_path),
            "etcd_cert": str(client.fullchain),
            "etcd_key": str(client.key),
        })
        return self.state

    def answering(self) -> bool:
        return not self.daemons or etcd_answers(int(self.state["etcd_port"]))
