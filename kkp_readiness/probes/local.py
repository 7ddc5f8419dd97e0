"""Commands on the machine running the suite (the ``local`` performance target, etcdctl against a named etcd).

Time-bound like every probe: the command runs in its own process group, which is killed as a whole
when the time is up, so that a hung fio or etcdctl cannot outlive the run.

>>> run_local(["sh", "-c", "echo hi"], timeout=5).stdout
'hi\\n'
"""

from __future__ import annotations

import os
import signal
import subprocess

from kkp_readiness.errors import ProbeError
from kkp_readiness.probes.ssh import CommandResult


def run_local(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> CommandResult:
    """Run ``argv``; ``ProbeError`` when it cannot start or does not finish within ``timeout`` seconds."""
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   errors="replace", start_new_session=True,
                                   env={**os.environ, **env} if env else None)
    except OSError as exc:
        raise ProbeError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ProbeError(f"`{' '.join(argv[:3])} ...` did not finish within {timeout:g} s (stopped)") from None
    return CommandResult(" ".join(argv), process.returncode, stdout, stderr)


def run_script(script: str, timeout: float) -> CommandResult:
    """Run a POSIX shell script locally (the same scripts the ``node`` target runs over SSH)."""
    return run_local(["sh", "-c", script], timeout)
