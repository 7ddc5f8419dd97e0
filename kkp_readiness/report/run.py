"""The identity and directory of one run: ``reports/<run-id>/`` and ``reports/latest``.

The controller process creates the directory; xdist workers receive its path through
``workerinput`` so that every process writes into the same run.
"""

from __future__ import annotations

import getpass
import os
import platform as _platform
import secrets
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kkp_readiness import __version__

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def git_commit() -> str | None:
    """The commit of the suite itself, when it runs from a git checkout."""
    try:
        result = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def new_run_id(profile_name: str, now: datetime | None = None) -> str:
    """Sortable, unique and readable: ``20261124T174455Z-lab-3f9a``."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{profile_name}-{secrets.token_hex(2)}"


@dataclass
class RunInfo:
    """Who ran what, when, from where: the ``run`` object of results.json."""

    id: str
    profile: str
    profile_path: str
    profile_sha256: str
    started: str
    site: str = ""  # the profile's description
    base_domain: str = ""
    kkp_version: str = ""
    kkp_edition: str = ""
    seeds: list[str] = field(default_factory=list)
    tool_version: str = __version__
    tool_commit: str | None = None
    host: str = field(default_factory=socket.gethostname)
    operator: str = field(default_factory=lambda: _safe_user())
    system: str = field(default_factory=_platform.platform)
    python: str = field(default_factory=_platform.python_version)
    pytest_args: list[str] = field(default_factory=list)
    markexpr: str = ""
    keywordexpr: str = ""
    active: bool = False
    history_dir: str | None = None  # the profile's handover.history_dir, resolved (handover's comparison)
    history_runs: int = 10  # the profile's handover.history_runs
    cluster_source: str = "live"  # or "snapshot:<DIR>": an offline audit of what `kkp-readiness collect` saved
    finished: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _safe_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def create_run_dir(reports_dir: Path, run_id: str) -> Path:
    """Make ``reports/<run-id>/`` and point ``reports/latest`` at it (atomically)."""
    run_dir = reports_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    latest = reports_dir / "latest"
    temporary = reports_dir / f".latest-{run_id}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(run_id, target_is_directory=True)
    os.replace(temporary, latest)
    return run_dir

