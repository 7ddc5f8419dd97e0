"""Run history: reading runs back, what changed between two, trends as SVG, and archives of runs."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import tarfile
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from kkp_readiness.cli import main
from kkp_readiness.errors import KkpReadinessError, ProfileError
from kkp_readiness.profile import load_profile
from kkp_readiness.report import archive as archive_module
from kkp_readiness.report.archive import ArchiveError, archive_run, restore_run
from kkp_readiness.report.history import (
    HistoryError,
    RunRecord,
    diff,
    figure_series,
    find_runs,
    find_runs_with_skipped,
    history_directories,
    load_run,
    previous_run,
    same_site,
    trend_chart,
    verdict_trend_chart,
)
from kkp_readiness.report.history_view import history_view
from kkp_readiness.report.manifest import sha256_file, write_manifest

SVG = "{http://www.w3.org/2000/svg}"
FSYNC = "fdatasync p99"
IOPS = "write IOPS (4 KiB, queue depth 32)"


# --- builders -----------------------------------------------------------------------------------------------------


def figure(name: str, value: float, unit: str = "ms", better: str = "lower") -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, "better": better}


def requirement(rid: str, verdict: str, message: str = "", figures: list[dict[str, Any]] | None = None,
                schema: int = 2) -> dict[str, Any]:
    """A requirement row as results.py writes it; schema 1 tests carry only nodeid and verdict."""
    ran = verdict not in ("not-run", "not-implemented")
    nodeid = f"tests_infra/test_x.py::test_{rid.lower().replace('-', '_')}"
    test: dict[str, Any] = {"nodeid": nodeid, "verdict": verdict}
    if schema >= 2:
        test |= {"message": message, "duration": 0.1, "evidence": [], "figures": figures or []}
    return {"id": rid, "section": rid.split("-")[0], "title": f"Title of {rid}", "level": "required",
            "severity": "critical", "docs": "", "verdict": verdict,
            "messages": [{"test": nodeid, "verdict": verdict, "message": message}] if message else [],
            "tests": [test] if ran else []}


def document(run_id: str, rows: list[dict[str, Any]], profile: str = "lab", started: str | None = None,
             schema: int = 2, base_domain: str | None = None) -> dict[str, Any]:
    doc = {"schema": schema,
           "run": {"id": run_id, "profile": profile, "started": started or f"2026-11-2{run_id[-1]}T10:00:00+00:00"},
           "exit_code": 0, "summary": {}, "requirements": rows, "waivers": []}
    if base_domain is not None:
        doc["run"]["base_domain"] = base_domain
    return doc


def run(run_id: str, verdicts: dict[str, str], **options: Any) -> RunRecord:
    """A run record of requirement id -> verdict (messages say the verdict, so they can be checked)."""
    rows = [requirement(rid, v, f"{rid} is {v}\nsecond line" if v != "pass" else "") for rid, v in verdicts.items()]
    return RunRecord(Path(run_id), document(run_id, rows, **options))


def write_run(directory: Path, doc: dict[str, Any], name: str | None = None, manifest: bool = True) -> Path:
    run_dir = directory / (name or doc["run"]["id"])
    (run_dir / "allure-results").mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps(doc))
    (run_dir / "report.html").write_text("<html><body>report of " + doc["run"]["id"] + "</body></html>")
    (run_dir / "allure-results" / "a-result.json").write_text("{}")
    if manifest:
        write_manifest(run_dir, doc["run"]["id"])
    return run_dir


def figure_run(run_id: str, *figures: dict[str, Any]) -> RunRecord:
    return RunRecord(Path(run_id), document(run_id, [requirement("PERF-001", "pass", figures=list(figures))]))


# --- diff -------------------------------------------------------------------------------------------------------


def test_diff_classifies_every_kind_of_change() -> None:
    old = run("r1", {"REG-1": "pass", "REG-2": "error", "REG-3": "waived", "REC-1": "fail", "REC-2": "fail",
                     "APP-1": "not-run", "VAN-1": "pass", "VAN-2": "error", "SAME-1": "pass", "SAME-2": "skip",
                     "SAME-3": "warn"})
    new = run("r2", {"REG-1": "fail", "REG-2": "fail", "REG-3": "warn", "REC-1": "pass", "REC-2": "waived",
                     "APP-1": "warn", "APP-2": "pass", "VAN-1": "skip", "SAME-1": "pass", "SAME-2": "not-implemented",
                     "SAME-3": "warn"})
    result = diff(old, new)
    assert {c.id for c in result.regressed} == {"REG-1", "REG-2", "REG-3"}
    assert {c.id for c in result.recovered} == {"REC-1", "REC-2"}
    assert {c.id for c in result.appeared} == {"APP-1", "APP-2"}
    assert {c.id for c in result.vanished} == {"VAN-1", "VAN-2"}
    assert result.has_regressions
    reg = next(c for c in result.regressed if c.id == "REG-1")
    assert (reg.old, reg.new, reg.title, reg.new_message, reg.old_message) == (
        "pass", "fail", "Title of REG-1", "REG-1 is fail", "")
    vanished = next(c for c in result.vanished if c.id == "VAN-2")
    assert (vanished.old, vanished.new, vanished.old_message) == ("error", None, "VAN-2 is error")

    lines = result.lines()
    assert lines[0] == "old: r1 (started 2026-11-21T10:00:00+00:00)"
    assert lines[1] == "new: r2 (started 2026-11-22T10:00:00+00:00)"
    kinds = [line.split()[0] for line in lines[2:]]
    assert kinds == ["regressed"] * 3 + ["appeared"] * 2 + ["vanished"] * 2 + ["recovered"] * 2
    assert [line.split()[1] for line in lines[2:5]] == ["REG-1", "REG-2", "REG-3"]
    assert lines[2] == "regressed REG-1 Title of REG-1: pass -> fail (REG-1 is fail)"
    assert not any("SAME" in line or "second line" in line for line in lines)
    encoded = json.loads(json.dumps(result.to_dict()))
    assert encoded["has_regressions"] is True
    assert [c["id"] for c in encoded["recovered"]] == ["REC-1", "REC-2"]


@pytest.mark.parametrize(("old", "new", "kind"), [
    ("pass", "waived", "regressed"), ("waived", "warn", "regressed"), ("warn", "error", "regressed"),
    ("error", "fail", "regressed"), ("fail", "error", "recovered"), ("warn", "pass", "recovered"),
    ("skip", "fail", "appeared"), ("not-implemented", "pass", "appeared"), ("fail", "not-run", "vanished"),
    ("skip", "not-run", None), ("fail", "fail", None),
])
def test_verdict_order(old: str, new: str, kind: str | None) -> None:
    changes = diff(run("r1", {"X-1": old}), run("r2", {"X-1": new})).changes
    assert [c.kind for c in changes] == ([kind] if kind else [])


def test_identical_runs_have_no_changes() -> None:
    verdicts = {"DNS-001": "pass", "DNS-004": "fail", "CERT-001": "skip"}
    result = diff(run("r1", verdicts), run("r2", verdicts))
    assert not result.has_regressions
    assert result.changes == []
    assert result.figures == []
    assert result.lines()[-1] == "no changes"


def test_schema_1_runs_are_compared(tmp_path: Path) -> None:
    old_doc = document("r1", [requirement("DNS-004", "pass", schema=1),
                              requirement("DNS-001", "fail", "DNS-001 broken", schema=1)], schema=1)
    del old_doc["waivers"]
    old = load_run(write_run(tmp_path, old_doc, manifest=False) / "results.json")
    new = run("r2", {"DNS-004": "fail", "DNS-001": "pass"})
    result = diff(old, new)
    assert [c.id for c in result.regressed] == ["DNS-004"]
    assert [(c.id, c.old_message) for c in result.recovered] == [("DNS-001", "DNS-001 broken")]
    assert result.figures == []
    assert figure_series([old, new]) == {}


@pytest.mark.parametrize(("better", "before", "after", "direction"), [
    ("lower", 10.0, 12.0, "worse"), ("lower", 10.0, 8.0, "better"),
    ("higher", 1000.0, 800.0, "worse"), ("higher", 1000.0, 1300.0, "better"),
    ("lower", 1.0, 1.1, "worse"), ("lower", 1.0, 0.9, "better"),  # exactly the threshold counts
    ("higher", 1.0, 0.9, "worse"),
    ("lower", 1.0, 1.09, None), ("higher", 100.0, 91.0, None), ("lower", 5.0, 5.0, None),  # below it does not
    ("lower", 0.0, 2.0, "worse"),
])
def test_figures_moving_by_the_threshold(better: str, before: float, after: float, direction: str | None) -> None:
    result = diff(figure_run("r1", figure(FSYNC, before, better=better)),
                  figure_run("r2", figure(FSYNC, after, better=better)), threshold=0.10)
    assert [f.direction for f in result.figures] == ([direction] if direction else [])
    assert not result.has_regressions  # figures never make a requirement regression
    if direction:
        (moved,) = result.figures
        assert (moved.requirement, moved.name, moved.old, moved.new) == ("PERF-001", FSYNC, before, after)
        assert result.figures_worse == ([moved] if direction == "worse" else [])
        assert f"figure {direction}" in result.lines()[2]
        assert FSYNC in result.lines()[2]


def test_figures_are_matched_by_test_and_name() -> None:
    old = figure_run("r1", figure(FSYNC, 2.0), figure(IOPS, 5000, "IOPS", "higher"))
    renamed = RunRecord(Path("r2"), document("r2", [requirement("PERF-002", "pass", figures=[figure(FSYNC, 9.0)]),
                                                    requirement("PERF-001", "pass", figures=[figure(IOPS, 2500, "IOPS",
                                                                                                    "higher")])]))
    result = diff(old, renamed)
    assert [(f.name, f.direction, f.relative) for f in result.figures] == [(IOPS, "worse", -0.5)]
    assert [line for line in result.lines() if "-50%" in line] == [result.figures[0].line()]


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(HistoryError, match="threshold"):
        diff(run("r1", {}), run("r2", {}), threshold=-0.1)


# --- finding runs -------------------------------------------------------------------------------------------------


def test_load_run_names_the_path_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=re.escape(str(tmp_path / "nowhere"))):
        load_run(tmp_path / "nowhere")
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(HistoryError, match=r"garbage\.json is not JSON"):
        load_run(tmp_path / "garbage.json")
    (tmp_path / "other.json").write_text('{"format": "kkp-readiness-manifest/1"}')
    with pytest.raises(HistoryError, match=r"other\.json is not a kkp-readiness results document"):
        load_run(tmp_path / "other.json")
    assert issubclass(HistoryError, KkpReadinessError)
    run_dir = write_run(tmp_path, document("r1", []), name="renamed")
    assert (load_run(run_dir).id, load_run(run_dir).path) == ("r1", run_dir)
    assert load_run(run_dir / "results.json").path == run_dir


def test_find_runs_orders_filters_and_deduplicates(tmp_path: Path) -> None:
    reports, history = tmp_path / "reports", tmp_path / "history"
    write_run(reports, document("late", [], started="2026-11-24T10:00:00+00:00"))
    write_run(reports, document("b-early", [], started="2026-11-20T10:00:00+00:00"))
    write_run(reports, document("a-early", [], started="2026-11-20T10:00:00+00:00"))  # same start: by id
    write_run(reports, document("site", [], profile="other-site"))
    write_run(reports, document("hidden", []), name=".restore-x1")
    (reports / "no-results").mkdir()
    (reports / "broken").mkdir()
    (reports / "broken" / "results.json").write_text("{")
    (reports / "latest").symlink_to("late", target_is_directory=True)
    write_run(history, document("late", [], started="2026-11-24T10:00:00+00:00"))  # the same run, archived
    write_run(history, document("oldest", [], started="2026-11-01T10:00:00+00:00"))

    runs = find_runs([reports, history, tmp_path / "missing"], "lab")
    assert [r.id for r in runs] == ["oldest", "a-early", "b-early", "late"]
    assert next(r for r in runs if r.id == "late").path == reports / "late"  # the first found
    assert [r.id for r in find_runs([reports], "other-site")] == ["site"]
    assert find_runs([reports], "nobody") == []


def test_previous_run_is_the_latest_earlier_run_of_the_profile() -> None:
    runs = [RunRecord(Path(i), document(i, [], profile=p, started=s)) for i, p, s in [
        ("r1", "lab", "2026-11-01T00:00:00+00:00"), ("r2", "lab", "2026-11-02T00:00:00+00:00"),
        ("x3", "other", "2026-11-03T00:00:00+00:00"), ("r4", "lab", "2026-11-04T00:00:00+00:00")]]
    assert previous_run(runs[3], runs) is runs[1]
    assert previous_run(runs[1], runs) is runs[0]
    assert previous_run(runs[0], runs) is None
    assert previous_run(runs[2], runs) is None


def test_runs_of_another_site_with_the_same_profile_name_are_not_compared(tmp_path: Path) -> None:
    shared = tmp_path / "history"
    write_run(shared, document("a1", [], base_domain="a.example.com", started="2026-11-01T00:00:00+00:00"))
    write_run(shared, document("b1", [], base_domain="b.example.com", started="2026-11-02T00:00:00+00:00"))
    write_run(shared, document("old1", [], schema=1, started="2026-10-01T00:00:00+00:00"))  # no base_domain
    write_run(shared, document("x1", [], profile="other", base_domain="a.example.com"))
    current = RunRecord(Path("a2"), document("a2", [], base_domain="A.example.com.",
                                             started="2026-11-03T00:00:00+00:00"))
    runs = find_runs([shared], current)
    assert [r.id for r in runs] == ["old1", "a1"]
    assert previous_run(current, runs).id == "a1"  # type: ignore[union-attr]
    everything = find_runs([shared], "lab")  # a profile name alone: every site of that name, as before
    assert [r.id for r in everything] == ["old1", "a1", "b1"]
    assert previous_run(current, everything).id == "a1"  # type: ignore[union-attr]  # not b1, a later run
    unknown = RunRecord(Path("u"), document("u", [], started="2026-11-05T00:00:00+00:00"))
    assert previous_run(unknown, everything).id == "b1"  # type: ignore[union-attr]
    assert same_site(everything[0], everything[1])
    assert not same_site(everything[1], everything[2])


def test_unreadable_runs_are_reported_not_dropped(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    write_run(reports, document("r1", []))
    for name, text in (("broken", "{"), ("alien", '{"run": {}}')):
        (reports / name).mkdir()
        (reports / name / "results.json").write_text(text)
    runs, skipped = find_runs_with_skipped([reports], "lab")
    assert [r.id for r in runs] == ["r1"]
    assert [(path, "not JSON" in why or "not a kkp-readiness" in why) for path, why in skipped] == [
        (reports / "alien", True), (reports / "broken", True)]
    assert [r.id for r in find_runs([reports], "lab")] == ["r1"]

    current = write_run(reports, document("r2", []))
    view = history_view(current, [reports])
    assert view.previous_run == "r1"
    assert f"2 earlier runs in {reports.resolve()} could not be read and are left out" in view.note


def test_history_view_uses_the_change_texts_and_names_no_searched_path(tmp_path: Path, monkeypatch) -> None:
    reports = tmp_path / "reports"
    first = write_run(reports, document("r1", [requirement("DNS-004", "pass"),
                                               requirement("PERF-001", "pass", figures=[figure(FSYNC, 2.0)])],
                                        base_domain="kkp.example.com"))
    view = history_view(first, [reports])
    assert view.note == "This is the first run of profile lab (site kkp.example.com) in its history."
    monkeypatch.chdir(tmp_path)
    assert history_view(first, [Path("reports")]) == history_view(first, [reports / "." / ".." / "reports"]) == view

    second = write_run(reports, document("r2", [requirement("DNS-004", "fail", "x: found NXDOMAIN\nmore"),
                                                requirement("PERF-001", "pass", figures=[figure(FSYNC, 3.0)])]))
    view = history_view(second, [Path("reports")])
    difference = diff(load_run(first), load_run(second))
    assert view.changes == [("regressed", "DNS-004 Title of DNS-004: pass -> fail (x: found NXDOMAIN)"),
                            ("figure worse", f"PERF-001 {FSYNC} on test_perf_001: 2 -> 3 ms (+50%, lower is better)")]
    assert [text for _kind, text in view.changes] == [difference.changes[0].text(), difference.figures[0].text()]
    assert view == history_view(second, [reports.resolve()])


def test_change_and_figure_texts() -> None:
    result = diff(run("r1", {"DNS-004": "pass", "GONE-1": "fail"}), run("r2", {"DNS-004": "fail"}))
    regressed, vanished = result.regressed[0], result.vanished[0]
    assert regressed.text() == "DNS-004 Title of DNS-004: pass -> fail (DNS-004 is fail)"
    assert regressed.line() == f"{'regressed':<10}{regressed.text()}"
    assert vanished.text() == "GONE-1 Title of GONE-1: fail -> absent (GONE-1 is fail)"
    moved = diff(figure_run("r1", figure(FSYNC, 0.0), figure("plain", 4.0, "", "")),
                 figure_run("r2", figure(FSYNC, 2.0), figure("plain", 2.0, "", ""))).figures
    assert [f.text() for f in moved] == [f"PERF-001 {FSYNC} on test_perf_001: 0 -> 2 ms (from 0, lower is better)",
                                         "PERF-001 plain on test_perf_001: 4 -> 2 (-50%)"]
    assert moved[0].line() == f"figure worse   {moved[0].text()}"


def test_history_directories_resolve_relative_to_the_profile(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    minimal = textwrap.dedent("""\
        name: site
        base_domain: kubermatic.example.com
        ingress: {addresses: [192.0.2.10]}
        dns: {servers: [192.0.2.53]}
        seeds: [{name: seed, expose_strategy: NodePort, nodeport_proxy_addresses: [192.0.2.11]}]
    """)
    (site / "plain.yaml").write_text(minimal)
    (site / "with-history.yaml").write_text(minimal + "handover: {history_dir: earlier-runs, history_runs: 5}\n")
    reports = tmp_path / "reports"
    assert history_directories(None, reports) == [reports]
    assert history_directories(load_profile(str(site / "plain.yaml")), reports) == [reports]
    loaded = load_profile(str(site / "with-history.yaml"))
    assert loaded.profile.handover.history_runs == 5
    assert history_directories(loaded, reports) == [reports, site / "earlier-runs"]
    (site / "bad.yaml").write_text(minimal + "handover: {history_runs: 1}\n")
    with pytest.raises(ProfileError, match="history_runs"):
        load_profile(str(site / "bad.yaml"))


# --- trends -------------------------------------------------------------------------------------------------------


def parse_svg(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert {"width", "height", "viewBox"} <= set(root.attrib)
    return root


def texts(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter() if element.tag in (f"{SVG}text", f"{SVG}title")]


def test_figure_series_and_trend_chart() -> None:
    runs = [figure_run(f"20261124T1{n}0000Z-lab-000{n}", figure(FSYNC, v), figure(IOPS, 900 + n, "IOPS", "higher"))
            for n, v in enumerate([2.5, 4.25, 3.0])]
    series = figure_series(runs)
    key = ("tests_infra/test_x.py::test_perf_001", FSYNC)
    assert list(series) == sorted(series)
    assert key in series
    assert [(p.run_id[-4:], p.value, p.unit, p.better) for p in series[key]] == [
        ("0000", 2.5, "ms", "lower"), ("0001", 4.25, "ms", "lower"), ("0002", 3.0, "ms", "lower")]

    svg = trend_chart(series[key], title="etcd <disk> & fsync", unit="ms")
    assert svg == trend_chart(series[key], title="etcd <disk> & fsync", unit="ms")  # deterministic
    root = parse_svg(svg)
    labels = texts(root)
    assert "etcd <disk> & fsync" in labels
    assert "lower is better" in labels
    assert {"2.5", "4.25", "3"} <= set(labels)
    assert {"11-24 10:00", "11-24 11:00", "11-24 12:00"} <= set(labels)
    assert len(root.findall(f"{SVG}circle")) == 3
    assert "20261124T110000Z-lab-0001: 4.25 ms" in labels
    assert "no measurements" in texts(parse_svg(trend_chart([], title="empty", unit="ms")))
    assert "4.2" in texts(parse_svg(trend_chart([("one", 4.2)], title="single", unit="")))


def test_verdict_trend_chart_stacks_counts_per_run() -> None:
    runs = [run("r1", {"A-1": "pass", "A-2": "pass", "A-3": "fail", "A-4": "not-run"}),
            run("r2", {"A-1": "pass", "A-2": "warn", "A-3": "pass", "A-4": "skip"})]
    svg = verdict_trend_chart(runs, title="Verdicts & trend")
    assert svg == verdict_trend_chart(runs, title="Verdicts & trend")
    root = parse_svg(svg)
    labels = texts(root)
    assert {"r1: 2 pass", "r1: 1 fail", "r2: 2 pass", "r2: 1 warn", "r2: 1 skip"} <= set(labels)
    assert not any("not-run" in label for label in labels)
    assert {"pass", "skip", "warn", "fail", "Verdicts & trend", "r1", "r2"} <= set(labels)  # legend, axis
    bars = [r for r in root.findall(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    first = [r for r in bars if r.find(f"{SVG}title").text.startswith("r1")]  # type: ignore[union-attr]
    second = [r for r in bars if r.find(f"{SVG}title").text.startswith("r2")]  # type: ignore[union-attr]
    assert max(float(r.get("x", 0)) for r in first) < min(float(r.get("x", 0)) for r in second)  # oldest left
    assert "no runs" in texts(parse_svg(verdict_trend_chart([])))


# --- archive and restore ------------------------------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "reports", document("20261124T100000Z-lab-abcd", [requirement("DNS-004", "pass")]))


def test_archive_and_restore_round_trip(run_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["archive", str(run_dir)]) == 0
    archive = tmp_path / "20261124T100000Z-lab-abcd.tar.gz"
    assert capsys.readouterr().out == f"{sha256_file(archive)}  {archive}\n"
    assert archive_run(run_dir, tmp_path / "again.tar.gz") == sha256_file(archive)  # same bytes every time
    assert not hasattr(archive_module, "sha256_of")  # one SHA-256 helper: manifest.sha256_file

    restored = tmp_path / "restored"
    assert main(["restore", str(archive), "--reports-dir", str(restored)]) == 0
    out = capsys.readouterr().out
    assert "verified: nothing changed since the run" in out
    assert [r.id for r in find_runs([restored], "lab")] == ["20261124T100000Z-lab-abcd"]
    assert (restored / run_dir.name / "report.html").read_bytes() == (run_dir / "report.html").read_bytes()
    assert [p.name for p in restored.iterdir()] == [run_dir.name]  # no staging directory left

    assert main(["restore", str(archive), "--reports-dir", str(restored)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["archive", str(run_dir)]) == 2  # the default archive exists: not overwritten
    assert main(["archive", str(run_dir), "--out", str(run_dir / "inside.tar.gz")]) == 2


def test_a_changed_run_is_archived_only_with_force(run_dir: Path, tmp_path: Path, capsys) -> None:
    (run_dir / "report.html").write_text("<html>edited</html>")
    out = tmp_path / "run.tar.gz"
    assert main(["archive", str(run_dir), "--out", str(out)]) == 1
    assert "changed:  report.html" in capsys.readouterr().err
    assert not out.exists()
    assert main(["archive", str(run_dir), "--out", str(out), "--force"]) == 0
    assert out.exists()
    assert main(["archive", str(tmp_path / "nothing")]) == 2


def test_a_run_without_manifest_is_archived_only_with_force(tmp_path: Path, capsys) -> None:
    unsealed = write_run(tmp_path / "reports", document("r1", []), manifest=False)
    out = tmp_path / "r1.tar.gz"
    assert main(["archive", str(unsealed), "--out", str(out)]) == 1
    assert "it has no usable manifest" in capsys.readouterr().err
    assert main(["archive", str(unsealed), "--out", str(out), "--force"]) == 0
    restored = tmp_path / "restored"
    assert main(["restore", str(out), "--reports-dir", str(restored)]) == 1
    printed = capsys.readouterr().out
    assert "NOT VERIFIED" in printed
    assert "manifest.json cannot be read" in printed
    assert f"inspect it in {restored / '.restore-failed-r1'} or delete it; it was not added to the history" in printed
    assert [p.name for p in restored.iterdir()] == [".restore-failed-r1"]


def tampered(run_dir: Path, archive: Path) -> Path:
    archive_run(run_dir, archive)
    raw = gzip.decompress(archive.read_bytes())
    original = b"report of 20261124T100000Z-lab-abcd"
    assert raw.count(original) == 1
    archive.write_bytes(gzip.compress(raw.replace(original, original.replace(b"report", b"rEport"))))
    return archive


def test_a_tampered_archive_is_not_added_to_the_history(run_dir: Path, tmp_path: Path, capsys) -> None:
    archive = tampered(run_dir, tmp_path / "run.tar.gz")
    restored = tmp_path / "restored"
    write_run(restored, document("20261101T100000Z-lab-0000", [requirement("DNS-004", "pass")]))
    assert main(["restore", str(archive), "--reports-dir", str(restored)]) == 1
    out = capsys.readouterr().out
    assert "changed:  report.html" in out
    assert "NOT VERIFIED" in out
    failed = restored / f".restore-failed-{run_dir.name}"
    assert f"inspect it in {failed} or delete it; it was not added to the history" in out
    assert not (restored / run_dir.name).exists()
    assert b"rEport" in (failed / "report.html").read_bytes()  # kept for inspection, hidden from the history
    assert [r.id for r in find_runs([restored], "lab")] == ["20261101T100000Z-lab-0000"]
    assert sorted(p.name for p in restored.iterdir()) == [failed.name, "20261101T100000Z-lab-0000"]

    with pytest.raises(ArchiveError, match="it was not added to the history") as raised:
        restore_run(archive, restored)  # again: a second quarantine, the first one is not overwritten
    assert "report.html" in str(raised.value)
    assert len([p for p in restored.iterdir() if p.name.startswith(".restore-failed-")]) == 2
    assert not (restored / run_dir.name).exists()

    kept = archive_module.restore(archive, tmp_path / "kept", keep_unverified=True)
    assert kept.path == tmp_path / "kept" / run_dir.name
    assert kept.verification is not None
    assert kept.verification.changed == ["report.html"]
    assert not kept.verified


def test_restore_refuses_too_many_members(run_dir: Path, tmp_path: Path, monkeypatch) -> None:
    archive = tmp_path / "run.tar.gz"
    archive_run(run_dir, archive)  # 6 members: the run directory, 4 files, allure-results
    monkeypatch.setattr(archive_module, "MAX_MEMBERS", 5)
    with pytest.raises(ArchiveError, match=rf"{re.escape(str(archive))}.*more than 5 members"):
        restore_run(archive, tmp_path / "restored")
    assert not (tmp_path / "restored").exists() or list((tmp_path / "restored").iterdir()) == []
    monkeypatch.setattr(archive_module, "MAX_MEMBERS", 6)
    assert restore_run(archive, tmp_path / "restored").name == run_dir.name


def test_restore_refuses_a_tar_bomb(tmp_path: Path) -> None:
    """A header may declare any size; an uncompressed tar need not even contain the bytes."""
    bomb = tmp_path / "bomb.tar"
    info = tarfile.TarInfo("run/results.json")
    info.size = archive_module.MAX_TOTAL_BYTES + 1
    bomb.write_bytes(info.tobuf(tarfile.PAX_FORMAT))
    with pytest.raises(ArchiveError, match=rf"{re.escape(str(bomb))}.*more than 8 GiB"):
        restore_run(bomb, tmp_path / "restored")
    assert not (tmp_path / "restored").exists() or list((tmp_path / "restored").iterdir()) == []


def test_restore_needs_free_space(run_dir: Path, tmp_path: Path, monkeypatch) -> None:
    archive = tmp_path / "run.tar.gz"
    archive_run(run_dir, archive)
    monkeypatch.setattr(archive_module.shutil, "disk_usage",
                        lambda path: shutil._ntuple_diskusage(100, 100, 10))  # type: ignore[attr-defined]
    with pytest.raises(ArchiveError, match=r"10 bytes? free"):
        restore_run(archive, tmp_path / "restored")
    assert list((tmp_path / "restored").iterdir()) == []


def test_a_run_directory_named_latest_is_refused(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="latest"):
        archive_run(run_dir, tmp_path / "latest.tar.gz", name="latest")
    archive = tar_with(tmp_path, member("latest/results.json"))
    with pytest.raises(ArchiveError, match="'latest' cannot be a run directory's name"):
        restore_run(archive, tmp_path / "reports")
    assert not (tmp_path / "reports" / "latest").exists()


def test_links_and_special_files_are_archived_only_with_force(run_dir: Path, tmp_path: Path, capsys) -> None:
    (run_dir / "evidence").mkdir()
    (run_dir / "evidence" / "link").symlink_to("../report.html")
    (run_dir / "dirlink").symlink_to("allure-results", target_is_directory=True)
    os.mkfifo(run_dir / "pipe")
    with pytest.raises(ArchiveError) as raised:
        archive_run(run_dir, tmp_path / "run.tar.gz")
    assert all(name in str(raised.value) for name in ("evidence/link", "dirlink", "pipe", "--force"))
    assert not (tmp_path / "run.tar.gz").exists()
    assert main(["archive", str(run_dir), "--out", str(tmp_path / "run.tar.gz")]) == 2
    assert "evidence/link" in capsys.readouterr().err
    assert main(["archive", str(run_dir), "--out", str(tmp_path / "run.tar.gz"), "--force"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err
    assert all(name in err for name in ("evidence/link", "dirlink", "pipe"))
    with tarfile.open(tmp_path / "run.tar.gz") as tar:
        names = tar.getnames()
    assert not any(name.endswith(("link", "pipe")) for name in names)


def tar_with(tmp_path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, b"owned" if kind == tarfile.REGTYPE else b""


@pytest.mark.parametrize(("members", "reason"), [
    ([member("run/results.json"), member("run/../../evil")], "points outside"),
    ([member("../evil")], "points outside"),
    ([member("/tmp/evil")], "absolute"),
    ([member("run/results.json"), member("run/link", tarfile.SYMTYPE, "/etc/passwd")], "symbolic link"),
    ([member("run/results.json"), member("run/hard", tarfile.LNKTYPE, "run/results.json")], "hard link"),
    ([member("run/null", tarfile.CHRTYPE)], "device"),
    ([member("run/results.json"), member("other/results.json")], "one run directory"),
    ([member("results.json")], "not inside a run directory"),
])
def test_a_malicious_archive_is_refused(tmp_path: Path, members: list, reason: str) -> None:
    archive = tar_with(tmp_path, *members)
    reports = tmp_path / "deep" / "reports"
    with pytest.raises(ArchiveError, match=reason):
        restore_run(archive, reports)
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "deep" / "evil").exists()
    assert not reports.exists() or list(reports.iterdir()) == []


def test_what_is_not_an_archive_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain.tar.gz").write_text("not an archive")
    for path in (tmp_path / "plain.tar.gz", tmp_path / "missing.tar.gz"):
        with pytest.raises(ArchiveError, match=re.escape(str(path))):
            restore_run(path, tmp_path / "reports")


# --- the diff command ---------------------------------------------------------------------------------------------


def test_diff_command_exit_codes(tmp_path: Path, capsys) -> None:
    reports = tmp_path / "reports"
    old = write_run(reports, document("r1", [requirement("DNS-004", "pass"),
                                             requirement("PERF-001", "pass", figures=[figure(FSYNC, 2.0)])]))
    new = write_run(reports, document("r2", [requirement("DNS-004", "fail", "DNS-004: found NXDOMAIN"),
                                             requirement("PERF-001", "pass", figures=[figure(FSYNC, 3.0)])]))
    assert main(["diff", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "regressed DNS-004" in out
    assert "DNS-004: found NXDOMAIN" in out
    assert "figure worse" in out
    assert main(["diff", str(new), str(old)]) == 0
    assert "recovered DNS-004" in capsys.readouterr().out

    fixed = write_run(reports, document("r3", [requirement("DNS-004", "pass"),
                                               requirement("PERF-001", "pass", figures=[figure(FSYNC, 3.0)])]))
    assert main(["diff", str(old), str(fixed)]) == 0  # a worse figure alone
    assert main(["diff", str(old), str(fixed), "--fail-on-figures"]) == 1
    assert main(["diff", str(old), str(fixed), "--threshold", "60", "--fail-on-figures"]) == 0
    capsys.readouterr()
    assert main(["diff", str(old), str(new), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in report["regressed"]] == ["DNS-004"]
    assert report["exit_code"] == 1

    assert main(["diff", "--previous", str(fixed)]) == 0  # r2 is the previous run of r3
    out = capsys.readouterr().out
    assert "old: r2" in out
    assert "recovered DNS-004" in out
    assert main(["diff", "--previous", str(old)]) == 0
    assert f"no earlier run of profile lab in {reports}" in capsys.readouterr().out

    assert main(["diff", str(old), str(new)]) == 1
    assert "note: OLD" not in capsys.readouterr().out
    assert main(["diff", str(new), str(old)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "note: OLD (r2) started after NEW (r1); the arguments may be swapped"
    assert main(["diff", str(new), str(old), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == [
        "OLD (r2) started after NEW (r1); the arguments may be swapped"]
    assert main(["diff", str(old), str(new), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["notes"] == []

    for bad in (["diff", str(old)], ["diff", str(old), str(tmp_path / "missing")],
                ["diff", "--previous", str(old), str(new)], ["diff", str(old), str(new), "--threshold", "-1"]):
        assert main(bad) == 2, bad
