"""Starting, watching and stopping the lab's daemons.

Daemons are started in their own session (``start_new_session=True``) so that they outlive the
Python process that started them (``lab up`` exits, ``lab down`` later stops them) and so that a
daemon's helpers (NGINX workers) share one process group that can be signalled at once.

Stopping must be safe from another process that only knows PIDs from ``state.json``: a PID is
only signalled after ``/proc/PID/cmdline`` shows it still runs the expected command (its
``marker``, a path inside the lab's work directory), so a recycled PID is never killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kkp_readiness.errors import LabError
from kkp_readiness.lab.topology import require_loopback

#: How long a daemon may take to answer after it was started.
READY_TIMEOUT = 15.0
#: How long a daemon may take to exit after SIGTERM before it gets SIGKILL.
STOP_TIMEOUT = 5.0


class DaemonError(LabError):
    """A daemon exited or did not become ready; the message names it, its command and log tail."""

    def __init__(self, message: str, exited: bool, log_tail: str) -> None:
        super().__init__(message)
        self.exited = exited
        self.log_tail = log_tail


def free_port(address: str, udp: bool = True, attempts: int = 50) -> int:
    """Return a port that is free on ``address`` for TCP and, if ``udp``, for UDP as well.

    The kernel picks an unused TCP port (bind to port 0); DNS needs the same number free for UDP
    too, so the UDP side is checked and another port is tried when it is taken. The port is
    released before returning, so a daemon can bind it; callers retry if another process wins
    the race in between.
    """
    require_loopback(address)
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = tcp.getsockname()[1]
            if not udp:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dgram:
                try:
                    dgram.bind((address, port))
                except OSError:
                    continue
                return port
    raise LabError(f"no port free for both TCP and UDP on {address} after {attempts} attempts")


# --- /proc helpers -------------------------------------------------------------------------------


def _read_proc(pid: int, entry: str) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/{entry}").read_bytes()
    except OSError:
        return None


def proc_cmdline(pid: int) -> str:
    """The command line of ``pid`` with NULs as spaces ('' if gone, a zombie or unreadable)."""
    raw = _read_proc(pid, "cmdline")
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() if raw else ""


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, pgrp, session) of ``pid`` from ``/proc/PID/stat``, or None if it is gone."""
    raw = _read_proc(pid, "stat")
    if raw is None:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[2]), int(fields[3])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (a zombie has exited, it only awaits reaping)."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _exe_name(pid: int) -> str:
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name
    except OSError:
        return ""


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Daemon:
    """One long-running process of the lab (a dnsmasq, an NGINX master and its workers).

    ``marker`` is a string that appears in the process's command line for as long as it runs
    (the lab uses the path of its configuration file, unique to the work directory); it is how
    a PID read back from ``state.json`` is recognised as still ours. ``logs`` are the files whose
    last lines explain a failure (the daemon's own stdout/stderr file comes first).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        marker: str,
        extra_logs: Sequence[Path] = (),
        cwd: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.marker = marker
        self.extra_logs = [Path(p) for p in extra_logs]
        self.cwd = cwd
        #: The port the daemon listens on, if it has one; informational.
        self.port = port
        self.pid: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None

    # -- description, for state.json and error messages -----------------------------------------

    @property
    def command_line(self) -> str:
        return " ".join(self.argv)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "argv": self.argv,
            "marker": self.marker,
            "log": str(self.log_path),
            "extra_logs": [str(p) for p in self.extra_logs],
            "port": self.port,
        }

    @classmethod
    def adopt(cls, description: dict[str, Any]) -> Daemon:
        """Rebuild a handle on a daemon started by another ``Lab`` (maybe another process)."""
        daemon = cls(
            description["name"],
            description["argv"],
            Path(description["log"]),
            description["marker"],
            [Path(p) for p in description.get("extra_logs", [])],
            port=description.get("port"),
        )
        daemon.pid = int(description["pid"]) if description.get("pid") else None
        return daemon

    def log_tail(self, lines: int = 20) -> str:
        parts = []
        for path in [self.log_path, *self.extra_logs]:
            text = _tail(path, lines)
            if text:
                parts.append(f"--- {path} ---\n{text}")
        return "\n".join(parts) or "(no log output)"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> int:
        if self.is_running():
            raise LabError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.cwd,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise LabError(f"cannot start {self.name}: {exc}\ncommand: {self.command_line}") from exc
        self.pid = self._popen.pid
        return self.pid

    def belongs(self, pid: int) -> bool:
        """True if ``pid`` is alive and runs this daemon's command (checked via its marker)."""
        return pid_alive(pid) and self.marker in proc_cmdline(pid)

    def _leader_verified(self) -> bool:
        """The PID is still the daemon we started (our live child, or it shows the marker)."""
        if self.pid is None:
            return False
        if self._popen is not None:
            return self._popen.poll() is None
        return self.belongs(self.pid)

    def is_running(self) -> bool:
        # For our own child poll() is exact (right after the fork /proc/PID/cmdline still shows
        # the Python parent until exec, so the marker is not there yet); others need the marker.
        return self._leader_verified()

    def wait_ready(self, check: Callable[[], bool], timeout: float = READY_TIMEOUT) -> None:
        """Poll ``check`` until it returns True; raise ``DaemonError`` on exit or timeout.

        ``check`` exceptions count as "not ready yet"; the last one is quoted in the error.
        """
        deadline = time.monotonic() + timeout
        last_error = ""
        interval = 0.01  # daemons usually answer within tens of milliseconds: poll fast, then back off
        while True:
            if not self.is_running():
                code = self._popen.poll() if self._popen is not None else None
                # Give the log a moment to be flushed by the exiting process.
                time.sleep(0.05)
                tail = self.log_tail()
                raise DaemonError(
                    f"{self.name} exited (code {code}) before it was ready\n"
                    f"command: {self.command_line}\n{tail}",
                    exited=True,
                    log_tail=tail,
                )
            try:
                if check():
                    return
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                tail = self.log_tail()
                raise DaemonError(
                    f"{self.name} did not answer within {timeout:g} s"
                    + (f" (last probe error: {last_error})" if last_error else "")
                    + f"\ncommand: {self.command_line}\n{tail}",
                    exited=False,
                    log_tail=tail,
                )
            time.sleep(interval)
            interval = min(interval * 2, 0.1)

    def _targets(self) -> list[int]:
        """The processes to signal: the verified leader's whole group, else identifiable members.

        The daemon runs in its own session, so its PID is also its process-group id. While the
        leader is verified, the group is ours. If the leader is gone (crashed master), only group
        members that still show the marker or run the same executable are taken.
        """
        if self.pid is None:
            return []
        pgid = self.pid
        members = _group_members(pgid)
        if self._leader_verified():
            return members or [self.pid]
        executable = Path(self.argv[0]).name
        ours = []
        for pid in members:
            stat = _proc_stat(pid)
            if stat is None or stat[2] != pgid:
                continue
            if self.marker in proc_cmdline(pid) or _exe_name(pid) == executable:
                ours.append(pid)
        return ours

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the daemon's processes, SIGKILL what is left after ``timeout``; idempotent."""
        if self.pid is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
            targets = self._targets()
            if not targets:
                break
            try:
                if self._leader_verified():
                    # Verified leader: signal the whole group, including helpers forked meanwhile.
                    os.killpg(self.pid, sig)
                else:
                    for pid in targets:
                        os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                self._collect()
                if not any(pid_alive(pid) for pid in targets):
                    break
                time.sleep(0.02)
        self._collect()
        remaining = [pid for pid in self._targets() if pid_alive(pid)]
        if remaining:
            raise LabError(f"{self.name}: processes {remaining} survived SIGKILL")

    def _collect(self) -> None:
        if self._popen is not None:
            self._popen.poll()
        elif self.pid is not None:
            _reap(self.pid)
