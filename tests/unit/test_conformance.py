"""Reading conformance results (PERF-007): Sonobuoy tarballs, hydrophone directories, junit and e2e.log."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from kkp_readiness import conformance
from kkp_readiness.conformance import ConformanceResultsError, find_version, read_results, summarize
from kkp_readiness.errors import ProbeError
from kkp_readiness.lab.conformance_part import (
    CONFORMANCE_SPECS,
    FAILING_SPEC,
    OTHER_SPECS,
    ConformancePlan,
    write_tarball,
)

DATA = Path(__file__).parent.parent / "data" / "conformance"
SONOBUOY = DATA / "sonobuoy"
HYDROPHONE = DATA / "hydrophone"
JUNIT = "plugins/e2e/results/global/junit_01.xml"
E2E_LOG = "plugins/e2e/results/global/e2e.log"

FAILED = (
    "[It] [sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should be able to deny pod and configmap "
    "creation [Conformance]",
    "[It] [sig-network] Networking Granular Checks: Pods should function for node-pod communication: udp "
    "[LinuxOnly] [NodeConformance] [Conformance]",
)
SKIPPED = ("[It] [sig-apps] Daemon set [Serial] should run and stop simple daemon [Conformance]",)


def tarball(tmp_path: Path, members: dict[str, bytes], name: str = "202506020730_sonobuoy_d2a9b8c4.tar.gz") -> Path:
    """A gzip'd tarball of ``members`` (name -> content), as ``sonobuoy retrieve`` writes one."""
    path = tmp_path / name
    with tarfile.open(path, "w:gz") as archive:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def sonobuoy_members(*leave_out: str) -> dict[str, bytes]:
    """The recorded Sonobuoy results' files, by their path inside the tarball."""
    return {p.relative_to(SONOBUOY).as_posix(): p.read_bytes() for p in sorted(SONOBUOY.rglob("*"))
            if p.is_file() and p.relative_to(SONOBUOY).as_posix() not in leave_out}


def test_sonobuoy_tarball_counts_failed_and_skipped_conformance_tests(tmp_path: Path) -> None:
    path = tarball(tmp_path, sonobuoy_members())
    results = read_results(path)
    assert results.counts() == {"conformance_tests": 6, "passed": 3, "failed": 2, "skipped": 1, "other_tests": 2}
    assert results.failed == FAILED  # a <failure> and a panic's <error> both fail
    assert results.skipped == SKIPPED
    assert results.server_version == "v1.30.8"
    assert results.version_source == "'kube-apiserver version' line of e2e.log"
    assert results.junit == f"{path}!{JUNIT}"
    assert results.e2e_log == f"{path}!{E2E_LOG}"
    evidence = results.evidence()
    assert evidence["failed_tests"] == list(FAILED)
    assert evidence["source"] == str(path)


def test_extracted_sonobuoy_directory_reads_the_known_path() -> None:
    results = read_results(SONOBUOY)
    assert (results.failed, results.skipped, results.server_version) == (FAILED, SKIPPED, "v1.30.8")
    assert results.junit == str(SONOBUOY / JUNIT)


def test_hydrophone_directory_all_passed() -> None:
    results = read_results(HYDROPHONE)
    assert results.counts() == {"conformance_tests": 3, "passed": 3, "failed": 0, "skipped": 0, "other_tests": 4}
    assert results.passed[0] == "[It] [sig-apps] Deployment deployment should support rollover [Conformance]"
    assert results.server_version == "v1.31.4"
    assert results.e2e_log == str(HYDROPHONE / "e2e.log")


def test_junit_file_with_its_e2e_log() -> None:
    results = read_results(HYDROPHONE / "junit_01.xml")
    assert (results.total, results.server_version) == (3, "v1.31.4")


def test_tarball_under_a_prefix_directory(tmp_path: Path) -> None:
    """A tarball re-made from an extracted one (``results/plugins/...``) is found by its known path."""
    path = tarball(tmp_path, {f"./results/{k}": v for k, v in sonobuoy_members().items()})
    assert read_results(path).failed == FAILED


def test_version_from_serverversion_json_without_e2e_log(tmp_path: Path) -> None:
    results = read_results(tarball(tmp_path, sonobuoy_members(E2E_LOG)))
    assert (results.server_version, results.version_source) == ("v1.30.8", "serverversion.json of the tarball")
    assert results.e2e_log is None


def test_no_version_anywhere_is_said(tmp_path: Path) -> None:
    results = read_results(tarball(tmp_path, sonobuoy_members(E2E_LOG, "serverversion.json")))
    assert results.server_version is None
    assert results.version_source == "no e2e.log next to junit_01.xml"
    directory = tmp_path / "hydrophone"
    directory.mkdir()
    shutil.copy(HYDROPHONE / "junit_01.xml", directory)
    (directory / "e2e.log").write_text("Running Suite: Kubernetes e2e suite - /usr/local/bin\n")
    assert read_results(directory).version_source == "no 'kube-apiserver version:' line in e2e.log"


@pytest.mark.parametrize(("line", "version"), [
    (b"  I1010 16:34:13.062742 9569 e2e.go:254] kube-apiserver version: v1.34.1-eks-d96d92f\n", "v1.34.1-eks-d96d92f"),
    (b"Jul 15 10:23:45.123: INFO: kube-apiserver version: v1.21.1\n", "v1.21.1"),
    (b"Server Version: v1.29.3\n", "v1.29.3"),
], ids=["klog", "ginkgo-v1", "server-version"])
def test_version_line_formats(line: bytes, version: str) -> None:
    assert find_version([b"Running Suite: Kubernetes e2e suite\n", line])[0] == version


def test_e2e_binary_version_is_a_fallback_and_a_development_build_is_none() -> None:
    assert find_version([b"I0101 e2e.go:245] e2e test version: v1.31.4\n"])[0] == "v1.31.4"
    assert find_version([b"I0101 e2e.go:245] e2e test version: v0.0.0-master+$Format:%H$\n"])[0] is None


def test_retried_spec_counts_once_by_its_worst_outcome() -> None:
    junit = (b'<testsuites><testsuite name="Kubernetes e2e suite">'
             b'<testcase name="[It] a [Conformance]" status="failed"><failure type="failed">x</failure></testcase>'
             b'<testcase name="[It] a [Conformance]" status="passed"></testcase>'
             b"</testsuite></testsuites>")
    assert summarize(junit, "junit") == ((), ("[It] a [Conformance]",), (), 0)


def test_lab_results_round_trip(tmp_path: Path) -> None:
    """The lab part's generated tarball reads as what its plan says."""
    healthy = read_results(write_tarball(tmp_path / "healthy.tar.gz", ConformancePlan("v1.31.4").files()))
    assert (len(healthy.passed), healthy.failed, healthy.other_tests) == (len(CONFORMANCE_SPECS), (), len(OTHER_SPECS))
    assert healthy.server_version == "v1.31.4"
    broken = read_results(write_tarball(tmp_path / "broken.tar.gz",
                                        ConformancePlan("v1.30.8", failed=[FAILING_SPEC]).files()))
    assert (broken.failed, broken.server_version) == ((f"[It] {FAILING_SPEC}",), "v1.30.8")


# -- could not look: errors, never findings ------------------------------------------------------------


def test_errors_are_probe_errors() -> None:
    assert issubclass(ConformanceResultsError, ProbeError)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ConformanceResultsError, match="no such file or directory"):
        read_results(tmp_path / "absent.tar.gz")


def test_tarball_without_junit(tmp_path: Path) -> None:
    with pytest.raises(ConformanceResultsError, match=r"holds no junit_01\.xml"):
        read_results(tarball(tmp_path, sonobuoy_members(JUNIT)))


def test_directory_without_junit(tmp_path: Path) -> None:
    with pytest.raises(ConformanceResultsError, match=r"no junit_01\.xml in it"):
        read_results(tmp_path)


def test_malformed_xml(tmp_path: Path) -> None:
    path = tarball(tmp_path, {JUNIT: b'<testsuites><testsuite name="Kubernetes e2e suite"><testcase name="x"'})
    with pytest.raises(ConformanceResultsError, match="malformed XML"):
        read_results(path)


def test_xml_that_is_not_junit(tmp_path: Path) -> None:
    (tmp_path / "junit_01.xml").write_text("<html><body>502 Bad Gateway</body></html>")
    with pytest.raises(ConformanceResultsError, match="not a junit"):
        read_results(tmp_path)


def test_entities_are_refused(tmp_path: Path) -> None:
    (tmp_path / "junit_01.xml").write_text('<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaa">]>'
                                           "<testsuites>&a;</testsuites>")
    with pytest.raises(ConformanceResultsError, match="DTD or entities"):
        read_results(tmp_path)


def test_not_a_tarball(tmp_path: Path) -> None:
    path = tmp_path / "results.tar.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00 truncated gzip")
    with pytest.raises(ConformanceResultsError, match=r"(neither a tarball|not a readable tarball)"):
        read_results(path)


def test_truncated_tarball(tmp_path: Path) -> None:
    whole = tarball(tmp_path, sonobuoy_members()).read_bytes()
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ConformanceResultsError):
        read_results(path)


def test_links_and_names_leaving_the_archive_are_never_read(tmp_path: Path) -> None:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        data = (HYDROPHONE / "junit_01.xml").read_bytes()
        for name in ("../junit_01.xml", "/etc/junit_01.xml"):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo(JUNIT)
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    with pytest.raises(ConformanceResultsError, match=r"holds no junit_01\.xml"):
        read_results(path)


def test_oversized_junit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conformance, "MAX_JUNIT_BYTES", 100)
    with pytest.raises(ConformanceResultsError, match="more than a junit file"):
        read_results(tarball(tmp_path, sonobuoy_members()))
