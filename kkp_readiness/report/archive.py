"""A run directory as one ``.tar.gz`` and back, so that runs can be kept, sent and put back into the history.

An archive is something received, so restoring trusts nothing in it: every member must be a plain file or
directory below one run directory (no absolute paths, no ``..``, no links or devices), the extraction uses
tarfile's ``data`` filter as a second line of defence, and goes to a hidden directory first, so that a
half-restored run never shows up in the history (find_runs skips dot-directories). The archive's size is bounded
before anything is written (``MAX_MEMBERS``, ``MAX_TOTAL_BYTES``, the free space of the reports directory).
Whether the restored run is the one that was archived is for ``verify_run`` to say (the archive carries the
run's manifest), and it says so while the run is still hidden: a run that does not verify is moved to
``.restore-failed-<name>`` for inspection and never becomes history.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kkp_readiness.report.history import HistoryError
from kkp_readiness.report.manifest import ManifestError, Verification, sha256_file, verify_run

#: What a run directory may be called inside an archive (a run id, ``new_run_id``'s form, or a directory name).
#: Never a dot-name (hidden: staging and failed restores) and never ``latest`` (see ``RESERVED_NAMES``).
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Names of the reports directory that are not runs: ``latest`` is the symlink to the newest run.
RESERVED_NAMES = frozenset({"latest"})
#: Tar bomb limits. An archive is something received, and its headers may declare any number of members and
#: any sizes (a few kilobytes of gzip can expand to terabytes), so restoring refuses, before writing anything,
#: an archive beyond what a run directory ever is: a run holds hundreds to a few thousand files (reports,
#: evidence, Allure results) and at most some hundreds of MiB; these limits leave two orders of magnitude of
#: room and still keep a hostile archive from filling the disk or exhausting inodes and memory.
MAX_MEMBERS = 100_000
MAX_TOTAL_BYTES = 8 * 1024**3  # 8 GiB uncompressed
#: Where a restored run that does not match its manifest is kept for inspection: hidden, so not history.
FAILED_PREFIX = ".restore-failed-"


class ArchiveError(HistoryError):
    """An archive cannot be written, read or safely restored; the message names the archive and why."""


class UnverifiedRestoreError(ArchiveError):
    """The restored run does not match its manifest (or has none): kept hidden in ``kept``, not in the history."""

    def __init__(self, message: str, kept: Path, findings: list[str]) -> None:
        super().__init__(message)
        self.kept = kept
        self.findings = findings


@dataclass(frozen=True)
class Restored:
    """A restored run: where it is, and what ``verify_run`` found (None when it had no usable manifest and was
    kept anyway, see ``restore(keep_unverified=True)``)."""

    path: Path
    verification: Verification | None
    findings: list[str]

    @property
    def verified(self) -> bool:
        return self.verification is not None and self.verification.ok


def _safe_name(name: str) -> bool:
    return bool(SAFE_NAME.match(name)) and name.lower() not in RESERVED_NAMES


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Owner and group are the archiving user's business, not the run's: leave them out."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _contents(run_dir: Path) -> tuple[list[Path], list[Path]]:
    """(plain files and directories, everything else: symbolic links, FIFOs, sockets, devices), both sorted;
    links to directories are not followed."""
    entries: list[Path] = []
    others: list[Path] = []
    for directory, dirnames, filenames in os.walk(run_dir):
        for entry in (Path(directory, name) for name in (*dirnames, *filenames)):
            if not entry.is_symlink() and (entry.is_dir() or entry.is_file()):
                entries.append(entry)
            else:
                others.append(entry)
    return sorted(entries), sorted(others)


def unarchivable(run_dir: Path) -> list[Path]:
    """What ``archive_run`` cannot pack: symbolic links and special files below ``run_dir``, sorted."""
    return _contents(Path(run_dir))[1]


def archive_run(run_dir: Path, out: Path, name: str | None = None, force: bool = False) -> str:
    """Write ``run_dir`` (plain files and directories, sorted) as ``out`` under the top directory ``name``
    (default: the directory's name); the archive's SHA-256.

    Symbolic links and special files cannot be restored (restoring refuses them), so a run holding any is
    refused with the list of them, unless ``force`` leaves them out (``unarchivable`` names them).
    """
    run_dir = Path(run_dir)
    name = name or run_dir.name
    if not _safe_name(name):
        raise ArchiveError(f"{name!r} cannot name a run directory in an archive")
    out = Path(out)
    if out.exists():
        raise ArchiveError(f"{out} exists already; name another file with --out")
    if out.resolve().is_relative_to(run_dir.resolve()):
        raise ArchiveError(f"{out} is inside the run directory {run_dir}: the archive would change the run")
    entries, others = _contents(run_dir)
    if others and not force:
        listed = ", ".join(path.relative_to(run_dir).as_posix() for path in others)
        raise ArchiveError(f"cannot archive {run_dir}: it holds symbolic links or special files, which an archive "
                           f"does not carry: {listed}; --force archives the run without them")
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
    return sha256_file(out)


def _checked_members(archive: Path, tar: tarfile.TarFile) -> tuple[str, list[tarfile.TarInfo], int]:
    """The run directory's name, the members and their total size, or an ``ArchiveError`` naming the first
    unsafe member or the limit the archive goes beyond (read member by member: a bomb is not listed whole)."""
    members: list[tarfile.TarInfo] = []
    total = 0
    tops: set[str] = set()
    for member in tar:
        members.append(member)
        if len(members) > MAX_MEMBERS:
            raise ArchiveError(f"{archive}: refusing an archive of more than {MAX_MEMBERS} members "
                               "(MAX_MEMBERS): a run directory is never that large")
        total += max(member.size, 0)
        if total > MAX_TOTAL_BYTES:
            raise ArchiveError(f"{archive}: refusing an archive of more than {MAX_TOTAL_BYTES / 1024**3:g} GiB "
                               "uncompressed (MAX_TOTAL_BYTES): a run directory is never that large")
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
    if not _safe_name(top):
        raise ArchiveError(f"{archive}: {top!r} cannot be a run directory's name")
    return top, members, total


def restore_run(archive: Path, reports_dir: Path) -> Path:
    """Extract ``archive`` as a new, verified run directory under ``reports_dir``; its path (see ``restore``)."""
    return restore(archive, reports_dir).path


def restore(archive: Path, reports_dir: Path, keep_unverified: bool = False) -> Restored:
    """Extract ``archive`` as a new run directory under ``reports_dir``. Never overwrites a run.

    The run is verified against its manifest while still hidden; one that does not match (or has no usable
    manifest) is moved to ``.restore-failed-<name>`` and an ``UnverifiedRestoreError`` says what changed and
    where it is, unless ``keep_unverified`` puts it into the history anyway (the caller must say so loudly).
    """
    archive, reports_dir = Path(archive), Path(reports_dir)
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            return _extract(archive, tar, reports_dir, keep_unverified)
    except FileNotFoundError:
        raise ArchiveError(f"{archive}: no such archive") from None
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"{archive} cannot be restored into {reports_dir}: {exc}") from None


def _verify(run_dir: Path) -> tuple[Verification | None, list[str]]:
    """What ``verify_run`` found and its report; (None, [why]) without a usable manifest."""
    try:
        verification = verify_run(run_dir)
    except ManifestError as exc:
        return None, [str(exc)]
    return verification, verification.lines()


def _free_name(reports_dir: Path, top: str) -> Path:
    """``.restore-failed-<top>``, numbered when an earlier failed restore of the same run is still there."""
    candidate, number = reports_dir / f"{FAILED_PREFIX}{top}", 1
    while candidate.exists() or candidate.is_symlink():
        number += 1
        candidate = reports_dir / f"{FAILED_PREFIX}{top}-{number}"
    return candidate


def _extract(archive: Path, tar: tarfile.TarFile, reports_dir: Path, keep_unverified: bool) -> Restored:
    top, members, total = _checked_members(archive, tar)
    target = reports_dir / top
    if target.exists() or target.is_symlink():
        raise ArchiveError(f"{target} exists already: refusing to overwrite a run directory")
    reports_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(reports_dir).free
    if free <= total:
        raise ArchiveError(f"{archive} needs {total} bytes uncompressed, but {reports_dir} has only {free} bytes "
                           "free: nothing was restored")
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=reports_dir))
    try:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(staging, members=members, filter="data")
        else:  # a Python without extraction filters (< 3.11.4): the member checks above are all there is
            tar.extractall(staging, members=members)
        verification, findings = _verify(staging / top)
        if not (verification is not None and verification.ok) and not keep_unverified:
            kept = _free_name(reports_dir, top)
            (staging / top).rename(kept)
            why = ("has no usable manifest" if verification is None
                   else "does not match its manifest")
            raise UnverifiedRestoreError(
                f"{archive}: the restored run {top} {why}:\n" + "\n".join(f"  {line}" for line in findings)
                + f"\ninspect it in {kept} or delete it; it was not added to the history", kept, findings)
        if target.exists() or target.is_symlink():
            raise ArchiveError(f"{target} appeared while restoring: refusing to overwrite it")
        (staging / top).rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Restored(target, verification, findings)
