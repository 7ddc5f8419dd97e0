"""A run directory as one ``.tar.gz`` and back, so that runs can be kept, sent and put back into the history.

An archive is something received, so restoring trusts nothing in it: every member must be a plain file or
directory below one run directory (no absolute paths, no ``..``, no links or devices), the extraction uses
tarfile's ``data`` filter as a second line of defence, and goes to a hidden directory first, so that a
half-restored run never shows up in the history (find_runs skips dot-directories). Whether the restored run is
the one that was archived is then for ``verify_run`` to say: the archive carries the run's manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from kkp_readiness.report.history import HistoryError

#: What a run directory may be called inside an archive (a run id, ``new_run_id``'s form, or a directory name).
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ArchiveError(HistoryError):
    """An archive cannot be written, read or safely restored; the message names the archive and why."""


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Owner and group are the archiving user's business, not the run's: leave them out."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def archive_run(run_dir: Path, out: Path, name: str | None = None) -> str:
    """Write ``run_dir`` (plain files and directories, sorted) as ``out`` under the top directory ``name``
    (default: the directory's name); the archive's SHA-256."""
    name = name or run_dir.name
    if not SAFE_NAME.match(name):
        raise ArchiveError(f"{name!r} cannot name a run directory in an archive")
    out = Path(out)
    if out.exists():
        raise ArchiveError(f"{out} exists already; name another file with --out")
    if out.resolve().is_relative_to(run_dir.resolve()):
        raise ArchiveError(f"{out} is inside the run directory {run_dir}: the archive would change the run")
    entries = sorted(p for p in run_dir.rglob("*") if not p.is_symlink() and (p.is_dir() or p.is_file()))
    temporary = out.with_name(f".{out.name}.partial")
    try:
        with open(temporary, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as packed, \
                tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(run_dir, arcname=name, recursive=False, filter=_normalise)
            for path in entries:
                tar.add(path, arcname=f"{name}/{path.relative_to(run_dir).as_posix()}", recursive=False,
                        filter=_normalise)
        os.replace(temporary, out)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ArchiveError(f"cannot write the archive {out}: {exc.strerror or exc}") from None
    return sha256_of(out)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked_members(archive: Path, tar: tarfile.TarFile) -> tuple[str, list[tarfile.TarInfo]]:
    """The run directory's name and the members, or an ``ArchiveError`` naming the first unsafe member."""
    members = tar.getmembers()
    tops: set[str] = set()
    for member in members:
        path = PurePosixPath(member.name)
        if not member.name or path.is_absolute() or member.name.startswith("/") or "\\" in member.name:
            raise ArchiveError(f"{archive}: refusing the absolute or unusual path {member.name!r}")
        if ".." in path.parts:
            raise ArchiveError(f"{archive}: refusing {member.name!r}, which points outside the run directory")
        if not (member.isfile() or member.isdir()):
            kind = ("a symbolic link" if member.issym() else "a hard link" if member.islnk()
                    else "a device" if member.isdev() else "not a plain file")
            raise ArchiveError(f"{archive}: refusing {member.name!r}: it is {kind}")
        parts = [part for part in path.parts if part != "."]
        if not parts:
            continue
        tops.add(parts[0])
        if len(parts) == 1 and not member.isdir():
            raise ArchiveError(f"{archive}: {member.name!r} is not inside a run directory")
    if len(tops) != 1:
        raise ArchiveError(f"{archive}: an archive of one run directory is expected, found {sorted(tops) or 'none'}")
    top = tops.pop()
    if not SAFE_NAME.match(top):
        raise ArchiveError(f"{archive}: {top!r} cannot be a run directory's name")
    return top, members


def restore_run(archive: Path, reports_dir: Path) -> Path:
    """Extract ``archive`` as a new run directory under ``reports_dir``; its path. Never overwrites a run."""
    archive, reports_dir = Path(archive), Path(reports_dir)
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            return _extract(archive, tar, reports_dir)
    except FileNotFoundError:
        raise ArchiveError(f"{archive}: no such archive") from None
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"{archive} cannot be restored into {reports_dir}: {exc}") from None


def _extract(archive: Path, tar: tarfile.TarFile, reports_dir: Path) -> Path:
    top, members = _checked_members(archive, tar)
    target = reports_dir / top
    if target.exists() or target.is_symlink():
        raise ArchiveError(f"{target} exists already: refusing to overwrite a run directory")
    reports_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=reports_dir))
    try:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(staging, members=members, filter="data")
        else:  # a Python without extraction filters (< 3.11.4): the member checks above are all there is
            tar.extractall(staging, members=members)
        if target.exists():
            raise ArchiveError(f"{target} appeared while restoring: refusing to overwrite it")
        (staging / top).rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
