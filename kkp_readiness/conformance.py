"""Reading the results of a Kubernetes conformance run (Sonobuoy or hydrophone) for PERF-007.

A conformance run is the CNCF's proof that a cluster on this infrastructure behaves as Kubernetes
should; the suite does not run it (it takes hours and creates workloads), it reads what the run left:

* ``sonobuoy retrieve`` writes a tarball ``<timestamp>_sonobuoy_<uuid>.tar.gz`` holding
  ``plugins/e2e/results/global/junit_01.xml`` and ``.../e2e.log`` (and ``serverversion.json``);
* ``hydrophone --output-dir DIR`` writes ``DIR/e2e.log`` and ``DIR/junit_01.xml``;
* a directory into which a Sonobuoy tarball was extracted holds the tarball's paths.

The junit file is the one the Kubernetes e2e binary writes (ginkgo v2): one ``<testcase>`` per spec,
with a ``<failure>`` or ``<error>`` child when it failed and a ``<skipped>`` child when it did not run.
A focused conformance run marks every other spec skipped, so only the names carrying
``[Conformance]`` count. The Kubernetes version the run tested comes from the e2e framework's log
line ``kube-apiserver version: v1.31.4`` in ``e2e.log`` (klog format since ginkgo v2:
``I1010 16:34:13.062742 9569 e2e.go:254] kube-apiserver version: v1.31.4``; before,
``Jul 15 10:23:45.123: INFO: kube-apiserver version: v1.21.1``).

This module only reads and returns data (no verdicts); a file that cannot be read raises
:class:`ConformanceResultsError`, which the plugin turns into an ``error`` verdict: "could not look"
must never read as "the conformance run failed".

>>> results = read_results("/tmp/202506011200_sonobuoy_5e2b0c1a.tar.gz")  # doctest: +SKIP
>>> results.passed_count, results.failed, results.server_version  # doctest: +SKIP
(402, (), 'v1.31.4')
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
import tarfile
import xml.etree.ElementTree as ET  # defusedxml is not installed; see _parse_junit
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kkp_readiness.errors import ProbeError

JUNIT_NAME = "junit_01.xml"
E2E_LOG_NAME = "e2e.log"
SERVER_VERSION_NAME = "serverversion.json"
#: Where ``sonobuoy retrieve`` puts the e2e plugin's results inside its tarball.
SONOBUOY_RESULTS_DIR = "plugins/e2e/results/global"
CONFORMANCE_TAG = "[Conformance]"

#: Upper bounds, so that a wrong path (a disk image, a tarball bomb) cannot exhaust memory or time:
#: a full e2e junit file is a few MB, an e2e.log tens of MB, a Sonobuoy tarball a few hundred members.
MAX_JUNIT_BYTES = 64 * 2**20
#: The e2e.log is only scanned for the version line, which the suite's set-up writes near its top.
MAX_LOG_SCAN_BYTES = 32 * 2**20
MAX_LINE_BYTES = 64 * 2**10
MAX_SMALL_FILE_BYTES = 2**20
MAX_TAR_MEMBERS = 200_000
MAX_TAR_TOTAL_BYTES = 4 * 2**30

#: The e2e framework's log lines naming the server it tested (test/e2e/e2e.go, setupSuite), best first.
_VERSION_PATTERNS = (
    ("kube-apiserver version", re.compile(rb"kube-apiserver version: (v?\d+\.\d+\.\d+\S*)")),
    ("Server Version", re.compile(rb"Server Version: (v?\d+\.\d+\.\d+\S*)")),
)
#: The e2e binary's own version: a fallback only, as a development build logs v0.0.0-master.
_E2E_VERSION = re.compile(rb"e2e test version: (v?[1-9]\d*\.\d+\.\d+\S*)")


class ConformanceResultsError(ProbeError):
    """The conformance results could not be read: missing path, unreadable tarball, no junit, bad XML."""


@dataclass(frozen=True)
class ConformanceResults:
    """What a conformance run's results say: the [Conformance] specs by outcome and the version tested."""

    #: The file or directory the profile named.
    source: str
    #: The junit file read (a path, or ``tarball!member``).
    junit: str
    passed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    #: Specs without ``[Conformance]`` in their name (skipped by a focused run; not judged).
    other_tests: int = 0
    #: The API server's gitVersion the run tested, or None when the results do not say.
    server_version: str | None = None
    #: Where the version was read, or why it was not found.
    version_source: str = ""
    #: The e2e.log read (a path, or ``tarball!member``), None when there was none.
    e2e_log: str | None = None

    @property
    def total(self) -> int:
        return len(self.passed) + len(self.failed) + len(self.skipped)

    def counts(self) -> dict[str, int]:
        """The numbers a report shows: [Conformance] specs by outcome, and the other specs."""
        return {"conformance_tests": self.total, "passed": len(self.passed), "failed": len(self.failed),
                "skipped": len(self.skipped), "other_tests": self.other_tests}

    def evidence(self) -> dict[str, object]:
        """Everything the check attaches: counts, failing and skipped names, version and files read."""
        return {"source": self.source, "junit": self.junit, "e2e_log": self.e2e_log, **self.counts(),
                "failed_tests": list(self.failed), "skipped_tests": list(self.skipped),
                "server_version": self.server_version, "version_source": self.version_source}


@dataclass
class _Found:
    """What one pass over a tarball or directory collected, keyed by the directory each file is in."""

    junit: dict[str, bytes] = field(default_factory=dict)
    versions: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    server_version: str | None = None


def read_results(path: str | Path) -> ConformanceResults:
    """The results at ``path``: a Sonobuoy tarball, a directory (hydrophone or extracted Sonobuoy), or a
    ``junit_01.xml`` with its ``e2e.log`` next to it. Raises :class:`ConformanceResultsError`."""
    source = Path(path).expanduser()
    try:
        if source.is_dir():
            return _read_directory(source)
        if not source.is_file():
            raise ConformanceResultsError(f"conformance results {source}: no such file or directory")
        if source.name.endswith(".xml"):
            return _read_junit_file(source, str(source))
        if not tarfile.is_tarfile(source):
            raise ConformanceResultsError(f"conformance results {source}: neither a tarball (sonobuoy retrieve), "
                                          f"a directory with {JUNIT_NAME}, nor a {JUNIT_NAME}")
        return _read_tarball(source)
    except OSError as exc:
        raise ConformanceResultsError(f"conformance results {source}: cannot read: {exc}") from exc


def summarize(junit: bytes, origin: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], int]:
    """(passed, failed, skipped) [Conformance] spec names, and the number of other specs, of a junit file.

    Each outcome is sorted, and a spec listed twice (ginkgo's flake retries) counts once, by its worst
    outcome: a conformance run with a retried failure is not a clean run.
    """
    outcome: dict[str, str] = {}
    others = 0
    rank = {"passed": 0, "skipped": 1, "failed": 2}
    for case in _parse_junit(junit, origin).iter("testcase"):
        name = " ".join((case.get("name") or "").split())
        if CONFORMANCE_TAG not in name:
            others += 1
            continue
        state = _state(case)
        if rank[state] >= rank[outcome.get(name, "passed")]:
            outcome[name] = state
    by_state = {s: tuple(sorted(n for n, o in outcome.items() if o == s)) for s in rank}
    return by_state["passed"], by_state["failed"], by_state["skipped"], others


def find_version(lines: Iterable[bytes]) -> tuple[str | None, str]:
    """(the API server version the run tested, which log line said so), from e2e.log's lines.

    The e2e framework logs ``kube-apiserver version: ...`` once at suite set-up; the e2e binary's
    own version is only a fallback (Sonobuoy picks the binary matching the server, a development
    build logs ``v0.0.0-master``, which is no version and ignored).
    """
    fallback: str | None = None
    for line in lines:
        for label, pattern in _VERSION_PATTERNS:
            match = pattern.search(line)
            if match:
                return match[1].decode("ascii", "replace"), f"'{label}' line of {E2E_LOG_NAME}"
        if fallback is None:
            match = _E2E_VERSION.search(line)
            if match:
                fallback = match[1].decode("ascii", "replace")
    if fallback:
        return fallback, f"'e2e test version' line of {E2E_LOG_NAME} (no kube-apiserver version line)"
    return None, f"no 'kube-apiserver version:' line in {E2E_LOG_NAME}"


# -- sources ------------------------------------------------------------------------------------------


def _read_directory(directory: Path) -> ConformanceResults:
    """hydrophone's output directory, or an extracted Sonobuoy tarball (its known relative path)."""
    for candidate in (directory / JUNIT_NAME, directory / SONOBUOY_RESULTS_DIR / JUNIT_NAME):
        if candidate.is_file():
            results = _read_junit_file(candidate, str(directory))
            if results.server_version is None:
                version = _server_version_file(directory / SERVER_VERSION_NAME)
                if version:
                    return _with_version(results, version, f"{SERVER_VERSION_NAME} of the results")
            return results
    raise ConformanceResultsError(f"conformance results {directory}: no {JUNIT_NAME} in it nor in "
                                  f"{SONOBUOY_RESULTS_DIR}/ (hydrophone --output-dir, or an extracted "
                                  "sonobuoy retrieve tarball)")


def _read_junit_file(junit: Path, source: str) -> ConformanceResults:
    """A junit file on disk and the e2e.log next to it (if any)."""
    size = junit.stat().st_size
    if size > MAX_JUNIT_BYTES:
        raise ConformanceResultsError(f"conformance results {junit}: {size} bytes, more than a junit file "
                                      f"of an e2e run ({MAX_JUNIT_BYTES} at most)")
    data = junit.read_bytes()
    log = junit.with_name(E2E_LOG_NAME)
    if log.is_file():
        with log.open("rb") as stream:
            version, said = find_version(_bounded_lines(stream, MAX_LOG_SCAN_BYTES))
        log_name: str | None = str(log)
    else:
        version, said, log_name = None, f"no {E2E_LOG_NAME} next to {JUNIT_NAME}", None
    return _results(source, str(junit), data, log_name, version, said)


def _read_tarball(tarball: Path) -> ConformanceResults:
    """A ``sonobuoy retrieve`` tarball, read as a stream: nothing is extracted to disk, only regular
    members with safe relative names are looked at, and every size is bounded."""
    found = _Found()
    try:
        with tarfile.open(tarball, mode="r|*") as archive:
            for member, name in _safe_members(archive, tarball):
                base = posixpath.basename(name)
                if base not in (JUNIT_NAME, E2E_LOG_NAME, SERVER_VERSION_NAME):
                    continue
                stream = archive.extractfile(member)
                if stream is None:
                    continue
                directory = posixpath.dirname(name)
                if base == JUNIT_NAME:
                    if member.size > MAX_JUNIT_BYTES:
                        raise ConformanceResultsError(f"conformance results {tarball}: {name} has {member.size} "
                                                      f"bytes, more than a junit file ({MAX_JUNIT_BYTES} at most)")
                    found.junit[directory] = stream.read()
                elif base == E2E_LOG_NAME:
                    found.versions[directory] = find_version(_bounded_lines(stream, MAX_LOG_SCAN_BYTES))
                elif directory == "" and member.size <= MAX_SMALL_FILE_BYTES:
                    found.server_version = _git_version(stream.read())
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:  # zlib/gzip errors surface as these
        raise ConformanceResultsError(f"conformance results {tarball}: not a readable tarball: {exc}") from exc
    directory = _pick_results_dir(found.junit, tarball)
    version, said = found.versions.get(directory, (None, f"no {E2E_LOG_NAME} next to {JUNIT_NAME}"))
    if version is None and found.server_version:
        version, said = found.server_version, f"{SERVER_VERSION_NAME} of the tarball"
    log_name = f"{tarball}!{posixpath.join(directory, E2E_LOG_NAME)}" if directory in found.versions else None
    return _results(str(tarball), f"{tarball}!{posixpath.join(directory, JUNIT_NAME)}", found.junit[directory],
                    log_name, version, said)


def _safe_members(archive: tarfile.TarFile, tarball: Path) -> Iterator[tuple[tarfile.TarInfo, str]]:
    """Regular members with relative names that stay inside the archive, and a bound on count and size."""
    count = total = 0
    for member in archive:
        count += 1
        total += max(member.size, 0)
        if count > MAX_TAR_MEMBERS or total > MAX_TAR_TOTAL_BYTES:
            raise ConformanceResultsError(f"conformance results {tarball}: more than {MAX_TAR_MEMBERS} members "
                                          f"or {MAX_TAR_TOTAL_BYTES} bytes, not a Sonobuoy results tarball")
        name = posixpath.normpath(member.name)
        if not member.isreg() or name.startswith(("/", "../")) or name == ".." or "\\" in name:
            continue  # links, devices and names leaving the archive are never read
        yield member, name


def _pick_results_dir(junit: dict[str, bytes], tarball: Path) -> str:
    """The directory of the e2e plugin's junit: Sonobuoy's known path (under any prefix), else the only one."""
    if not junit:
        raise ConformanceResultsError(f"conformance results {tarball}: the tarball holds no {JUNIT_NAME} "
                                      f"(expected {SONOBUOY_RESULTS_DIR}/{JUNIT_NAME}, as sonobuoy retrieve "
                                      "writes it)")
    known = sorted(d for d in junit if d == SONOBUOY_RESULTS_DIR or d.endswith("/" + SONOBUOY_RESULTS_DIR))
    if len(known) == 1:
        return known[0]
    if len(junit) == 1:
        return next(iter(junit))
    raise ConformanceResultsError(f"conformance results {tarball}: several {JUNIT_NAME} "
                                  f"({', '.join(sorted(junit))}); name the one to read")


# -- parsing ------------------------------------------------------------------------------------------


def _parse_junit(data: bytes, origin: str) -> ET.Element:
    """The junit document's root.

    defusedxml is not a dependency of the suite; the standard library's parser is safe enough here
    because a junit file has no DTD: a document declaring entities is refused before parsing
    (no entity expansion, no external entities; ElementTree resolves none anyway), and its size is
    bounded by the callers.
    """
    if b"<!ENTITY" in data or b"<!DOCTYPE" in data:
        raise ConformanceResultsError(f"conformance results {origin}: declares a DTD or entities, which no "
                                      "junit file of the e2e suite does; refused")
    try:
        root = ET.fromstring(data)  # entities refused above
    except ET.ParseError as exc:
        raise ConformanceResultsError(f"conformance results {origin}: malformed XML: {exc}") from exc
    if root.tag not in ("testsuites", "testsuite"):
        raise ConformanceResultsError(f"conformance results {origin}: root element <{root.tag}>, not a junit "
                                      "<testsuites> or <testsuite>")
    return root


def _state(case: ET.Element) -> str:
    """passed, failed or skipped, from the children ginkgo writes (``status`` agrees with them)."""
    if case.find("failure") is not None or case.find("error") is not None:
        return "failed"
    if case.find("skipped") is not None:
        return "skipped"
    status = (case.get("status") or "").lower()
    if status in ("failed", "panicked", "interrupted", "aborted", "timedout"):
        return "failed"
    return "skipped" if status in ("skipped", "pending") else "passed"


def _results(source: str, junit_name: str, junit: bytes, log_name: str | None, version: str | None,
             said: str) -> ConformanceResults:
    passed, failed, skipped, others = summarize(junit, junit_name)
    return ConformanceResults(source=source, junit=junit_name, passed=passed, failed=failed, skipped=skipped,
                              other_tests=others, server_version=version, version_source=said, e2e_log=log_name)


def _with_version(results: ConformanceResults, version: str, said: str) -> ConformanceResults:
    return dataclasses.replace(results, server_version=version, version_source=said)


def _bounded_lines(stream: IO[bytes], limit: int) -> Iterator[bytes]:
    """The stream's lines, stopping silently after ``limit`` bytes (the version line is near the top)."""
    read = 0
    while read < limit:
        line = stream.readline(MAX_LINE_BYTES)
        if not line:
            return
        read += len(line)
        yield line


def _git_version(data: bytes) -> str | None:
    """``gitVersion`` of Sonobuoy's ``serverversion.json`` (the /version it read), or None."""
    try:
        value = json.loads(data).get("gitVersion")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and re.match(r"^v?\d+\.\d+", value) else None


def _server_version_file(path: Path) -> str | None:
    if not path.is_file() or path.stat().st_size > MAX_SMALL_FILE_BYTES:
        return None
    return _git_version(path.read_bytes())
