"""fio's JSON, read: recorded outputs of real fio versions (Debian's 3.25 and 3.33), and the scripts that run it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kkp_readiness.probes import fio

DATA = Path(__file__).resolve().parents[1] / "data" / "fio"
RECORDED = sorted(DATA.glob("fio-*.out"))


def _fio_json(path: Path) -> dict:
    text = path.read_text()
    return json.loads(text[text.index("\n{") + 1:])


def test_recorded_outputs_cover_several_fio_versions() -> None:
    versions = {_fio_json(path)["fio version"] for path in RECORDED}
    assert {"fio-3.25", "fio-3.33"} <= versions


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_parsed_figures_equal_fios_own(path: Path) -> None:
    raw = _fio_json(path)
    report = fio.parse_fio_json(path.read_text())
    assert report.version == raw["fio version"]
    assert report.filesystem.startswith("ext4")
    for job, raw_job in zip(report.jobs, raw["jobs"], strict=True):
        assert job.name == raw_job["jobname"]
        assert job.write_iops == raw_job["write"]["iops"]
        assert job.write_bw_bytes == raw_job["write"]["bw_bytes"]
        assert job.write_ios == raw_job["write"]["total_ios"]
        assert job.write_bytes == raw_job["write"]["io_bytes"]
        percentiles = raw_job["sync"]["lat_ns"].get("percentile", {})
        assert job.sync_count == raw_job["sync"]["lat_ns"]["N"]
        for key, nanoseconds in percentiles.items():
            assert job.sync_percentiles_ms[key] == nanoseconds / 1e6
        if job.name == "etcd-wal":
            assert job.sync_percentile(99.0) == percentiles["99.000000"] / 1e6
            assert job.sync_count == job.write_ios  # one fdatasync per write


def test_the_throttled_disk_recording_shows_the_slow_syncs() -> None:
    report = fio.parse_fio_json((DATA / "fio-3.33-etcd-recipe-throttled.out").read_text())
    job = report.job("etcd-wal")
    assert job.sync_percentile(99.0) > 10  # ms: the etcd threshold fails
    assert job.write_bytes == job.write_ios * 2300
    assert job.write_bytes < fio.size_bytes("22m")  # stopped by --runtime before 22 MiB


def test_notes_before_the_json_are_skipped() -> None:
    text = (DATA / "fio-3.33-etcd-recipe.out").read_text()
    noted = "note: both iodepth >= 1 and synchronous I/O engine are selected, queue depth will be capped at 1\n" + text
    assert fio.parse_fio_json(noted).job("etcd-wal").sync_count == 10029


def test_a_fio_without_sync_statistics_reports_none() -> None:
    """fio before 3.5 had no fdatasync latencies: the check must say so, not read zeros."""
    document = _fio_json(DATA / "fio-3.25-etcd-recipe.out")
    del document["jobs"][0]["sync"]
    job = fio.parse_fio_json(json.dumps(document)).job("etcd-wal")
    assert job.sync_percentile(99.0) is None
    assert job.sync_count == 0


@pytest.mark.parametrize(("text", "problem"), [
    ("fio: pid=0, err=28/file:filesetup.c:240, func=write, error=No space left on device", "no JSON"),
    ('{"fio version": "fio-3.33", "jobs": [', "malformed"),
    ('{"fio version": "fio-3.33"}', "no jobs"),
])
def test_unreadable_output_is_a_fio_error(text: str, problem: str) -> None:
    with pytest.raises(fio.FioError, match=problem):
        fio.parse_fio_json(text)


RUN = fio.etcd_recipe("/var/lib/etcd", size="22m", block_size=2300, runtime=60)


@pytest.mark.parametrize(("status", "stderr", "error", "words"), [
    (127, "sh: 1: fio: not found", fio.FioMissing, "apt-get install fio"),
    (3, "not a directory: /var/lib/etcd", fio.FioError, "cannot measure in /var/lib/etcd"),
    (124, "", fio.FioError, "did not finish within the time limit"),
    (1, "fio: failed parsing bs=x", fio.FioError, "failed parsing"),
])
def test_exit_statuses_become_errors_that_say_what_to_do(status, stderr, error, words) -> None:
    with pytest.raises(error, match=words):
        fio.read_result(RUN, status, "", stderr, "cp-1")


def test_a_job_error_is_a_fio_error() -> None:
    document = _fio_json(DATA / "fio-3.33-etcd-recipe.out")
    document["jobs"][0]["error"] = 28
    with pytest.raises(fio.FioError, match="error 28"):
        fio.read_result(RUN, 0, json.dumps(document), "No space left on device", "cp-1")


def test_the_command_line_is_the_etcd_recipe() -> None:
    argv = RUN.argv("/d")
    assert {"--rw=write", "--ioengine=sync", "--fdatasync=1", "--size=22m", "--bs=2300", "--runtime=60"} <= set(argv)
    throughput = fio.throughput_run("/d", size="512m", runtime=30).argv("/d")
    assert throughput.count("--directory=/d") == 2
    assert "--stonewall" in throughput
    assert RUN.command_line().startswith("fio --output-format=json --name=etcd-wal")


def _run_script(script: str, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": path})


def test_the_script_without_fio_exits_127(tmp_path: Path) -> None:
    run = fio.etcd_recipe(str(tmp_path), size="1m", block_size=2300, runtime=5)
    result = _run_script(run.script(30), "/nonexistent")
    assert result.returncode == fio.NOT_FOUND
    assert "fio" in result.stderr


def test_the_script_refuses_a_missing_directory(tmp_path: Path) -> None:
    run = fio.etcd_recipe(str(tmp_path / "absent"), size="1m", block_size=2300, runtime=5)
    result = _run_script(run.script(30), os.environ["PATH"])
    assert result.returncode == 3
    assert "not a directory" in result.stderr


def test_the_script_measures_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """A stand-in fio (it writes a file where the real one would, prints recorded JSON) proves the temporary
    directory is made under the measured directory and removed afterwards."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    recorded = DATA / "fio-3.33-etcd-recipe.out"
    (bin_dir / "fio").write_text("#!/bin/sh\nfor a; do case $a in --directory=*) "
                                 "touch \"${a#--directory=}/etcd-wal.0.0\";; "
                                 f"esac; done\nsed 1d {recorded}\n")
    (bin_dir / "fio").chmod(0o755)
    measured = tmp_path / "etcd"
    measured.mkdir()
    run = fio.etcd_recipe(str(measured), size="1m", block_size=2300, runtime=5)
    result = _run_script(run.script(30), f"{bin_dir}:{os.environ['PATH']}")
    report = fio.read_result(run, result.returncode, result.stdout, result.stderr, "here")
    assert report.job("etcd-wal").sync_count == 10029
    assert list(measured.iterdir()) == []
