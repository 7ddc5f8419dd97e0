"""The handover and fleet documents from synthetic results: escaping, evidence, figures, every verdict kind,
the artifact list, the fleet's verdict, and the CLI's refusal to touch a sealed run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kkp_readiness.cli import main
from kkp_readiness.report.fleet import fleet_exit_code, load_fleet, load_fleet_run, render_fleet
from kkp_readiness.report.handover import HistoryView, overall, render_handover, run_artifacts, write_handover
from kkp_readiness.report.manifest import write_manifest
from kkp_readiness.verdict import ExitCode


def requirement(rid: str, verdict: str, tests: list[dict[str, Any]] | None = None, section: str = "DNS") -> dict:
    return {"id": rid, "section": section, "title": f"title of {rid}", "requirement": f"text of {rid}",
            "remediation": f"fix {rid}", "level": "required", "severity": "high", "docs": "https://docs.example.com",
            "verdict": verdict, "messages": [], "tests": tests or []}


def check_result(nodeid: str, verdict: str, message: str = "", evidence: list | None = None,
                figures: list | None = None) -> dict:
    return {"nodeid": nodeid, "verdict": verdict, "message": message, "duration": 0.5,
            "evidence": evidence or [], "figures": figures or []}




def results(rows: list[dict], exit_code: int = 1, profile: str = "site") -> dict:
    return {"schema": 2, "exit_code": exit_code, "summary": {},
            "run": {"id": f"20261125T000000Z-{profile}-0001", "profile": profile, "seeds": ["s1"], "started": "x"},
            "requirements": rows, "waivers": []}


SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


def test_evidence_is_escaped_and_charts_are_images() -> None:
    rows = [requirement("DNS-001", "fail", [check_result(
        "t::test_x[a]", "fail", "[DNS-001] found <script>alert(1)</script>",
        evidence=[{"name": "answer", "kind": "json", "content": '{"a": "<b>"}'},
                  {"name": "chart", "kind": "svg", "content": SVG}],
        figures=[{"name": "fdatasync p99", "value": 12.5, "unit": "ms", "better": "lower"}])])]
    document = render_handover(results(rows))
    assert "<script>" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert "data:image/svg+xml;base64," in document  # an image cannot run script
    assert SVG not in document
    assert "fdatasync p99: <b>12.5 ms</b>" in document
    assert "Remediation:</b> fix DNS-001" in document


def test_every_kind_of_requirement_says_what_it_is() -> None:
    rows = [requirement("DNS-001", "pass", [check_result("t::a", "pass")]),
            requirement("DNS-002", "not-implemented"), requirement("DNS-003", "not-run"),
            requirement("DNS-004", "skip", [check_result("t::b", "skip", "applies only where ...")])]
    document = render_handover(results(rows, exit_code=0))
    assert "no automated check exists yet" in document
    assert "not selected by this run" in document
    assert "does not apply to this site" in document
    assert "Remediation:</b> fix DNS-001" not in document  # nothing to fix on a pass
    assert 'id="overall-verdict" class="overall v-pass">READY<' in document


@pytest.mark.parametrize(("code", "waived", "headline"), [
    (ExitCode.OK, 0, "READY"), (ExitCode.OK, 2, "READY"), (ExitCode.FAILED, 0, "NOT READY"),
    (ExitCode.ERRORS, 0, "INCOMPLETE"), (ExitCode.WARNINGS, 0, "READY WITH WARNINGS"),
    (ExitCode.USAGE, 0, "NO VERDICT"), (ExitCode.INTERRUPTED, 0, "NO VERDICT"),
])
def test_overall_headline(code: int, waived: int, headline: str) -> None:
    big, why, _ = overall(code, {"waived": waived})
    assert big == headline
    assert ("only by waiver" in why) == bool(waived)


def test_history_and_artifacts(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(results([requirement("DNS-001", "pass")])))
    (tmp_path / "allure-report").mkdir()
    (tmp_path / "allure-report" / "index.html").write_text("x")
    write_manifest(tmp_path, "r")
    history = HistoryView(previous_run="20261124T000000Z-site-0000", changes=[("regressed", "DNS-001 pass -> fail")])
    path = write_handover(tmp_path, history=history)
    document = path.read_text()
    assert "regressed" in document
    assert "20261124T000000Z-site-0000" in document
    listed = {a.path for a in run_artifacts(tmp_path)}
    assert listed == {"results.json", "allure-report/index.html"}  # not itself, not the manifest
    assert "the Allure report: 1 files" in document
    assert "is not signed" in document
    signed = render_handover(results([]), run_artifacts(tmp_path), signing_fingerprint="SHA256:abc")
    assert "SHA256:abc" in signed


def test_fleet_is_as_bad_as_its_worst_run(tmp_path: Path) -> None:
    runs = []
    for name, code, verdict in (("seed-a", 0, "pass"), ("seed-b", 1, "fail"), ("seed-c", 4, "warn")):
        directory = tmp_path / name
        directory.mkdir()
        rows = [requirement("DNS-001", verdict, [check_result("t::a", verdict, f"{name} says {verdict}")])]
        (directory / "results.json").write_text(json.dumps(results(rows, exit_code=code, profile=name)))
        runs.append(load_fleet_run(directory))
    assert fleet_exit_code(runs) == ExitCode.FAILED
    assert fleet_exit_code(runs[::2]) == ExitCode.WARNINGS
    document = render_fleet(runs)
    assert 'class="overall v-fail">NOT READY<' in document
    for index in (1, 2, 3):
        assert f'id="r{index}-DNS-001"' in document  # each run's finding has its own anchor
        assert f'href="#r{index}-DNS-001"' in document  # and the matrix links to it
    assert "seed-b says fail" in document


def test_cli_refuses_to_write_into_a_sealed_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "results.json").write_text(json.dumps(results([requirement("DNS-001", "pass")], exit_code=0)))
    assert main(["handover", str(tmp_path), "--no-history"]) == ExitCode.OK  # not sealed yet
    write_manifest(tmp_path, "r")
    assert main(["handover", str(tmp_path), "--no-history"]) == ExitCode.USAGE
    assert "sealed" in capsys.readouterr().err
    out = tmp_path.parent / "copy.html"
    assert main(["handover", str(tmp_path), "--no-history", f"--out={out}"]) == ExitCode.OK
    assert out.read_text() == (tmp_path / "handover.html").read_text()  # deterministic
    assert main(["merge", str(tmp_path), str(tmp_path / "missing"), f"--out={out}"]) == ExitCode.USAGE


def test_schema_1_findings_are_shown() -> None:
    row = requirement("DNS-004", "fail")
    row["tests"] = [{"nodeid": "t::test_x[seed]", "verdict": "fail"}]  # schema 1: no message in the test
    row["messages"] = [{"test": "t::test_x[seed]", "verdict": "fail", "message": "[DNS-004] found NXDOMAIN"}]
    for key in ("requirement", "remediation"):
        del row[key]
    document = render_handover({**results([row]), "schema": 1})
    assert "[DNS-004] found NXDOMAIN" in document


def test_only_http_links_are_live() -> None:
    row = requirement("DNS-001", "pass")
    row["docs"] = "javascript:alert(1)"
    document = render_handover(results([row]))
    assert 'href="javascript' not in document
    assert "javascript:alert(1)" in document  # shown as text


def test_the_cover_says_how_much_was_checked() -> None:
    rows = [requirement("DNS-001", "pass", [check_result("t::a", "pass")]), requirement("DNS-002", "not-implemented"),
            requirement("DNS-003", "not-run")]
    document = render_handover(results(rows, exit_code=0))
    assert "Of the 3 requirements of the catalogue, 1 were checked and 2 were not" in document


def test_figures_must_be_finite() -> None:
    from kkp_readiness.evidence import Evidence

    evidence = Evidence()
    with pytest.raises(ValueError, match="not a finite number"):
        evidence.figure("p99", float("nan"), "ms")
    evidence.figure("slowest", 0.000012345678, "s")
    assert evidence.figures[0].value == 1.23457e-05  # significant digits, not decimals


def test_cli_vouches_only_for_a_run_that_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kkp_readiness.report.manifest import key_fingerprint

    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(results([requirement("DNS-001", "fail")], exit_code=1)))
    key = Ed25519PrivateKey.generate()
    write_manifest(run, "r", key)
    out = tmp_path / "h.html"
    assert main(["handover", str(run), "--no-history", f"--out={out}"]) == ExitCode.OK
    assert key_fingerprint(key.public_key()) in out.read_text()
    (run / "results.json").write_text(json.dumps(results([requirement("DNS-001", "pass")], exit_code=0)))
    assert main(["handover", str(run), "--no-history", f"--out={out}"]) == ExitCode.FAILED
    document = out.read_text()
    assert 'id="document-warnings"' in document
    assert "results.json (its SHA-256 differs from the manifest" in document
    assert "manifest.json is signed (Ed25519" not in document  # no claim for a run that does not verify
    assert "does not match its manifest" in capsys.readouterr().err


def test_fleet_says_which_run_does_not_verify(tmp_path: Path) -> None:
    good, forged = tmp_path / "good", tmp_path / "forged"
    for directory in (good, forged):
        directory.mkdir()
        (directory / "results.json").write_text(json.dumps(results([requirement("DNS-001", "pass")], exit_code=0)))
        write_manifest(directory, directory.name)
    manifest = json.loads((forged / "manifest.json").read_text())
    manifest["signature"] = {"key_fingerprint": "SHA256:forged"}
    (forged / "manifest.json").write_text(json.dumps(manifest))
    runs = load_fleet([good, forged, good])
    assert [run.directory for run in runs] == [good, forged]  # each run once
    assert runs[0].verification == "verified, unsigned"
    assert not runs[1].verified
    document = render_fleet(runs)
    assert 'id="document-warnings"' in document
    assert "SHA256:forged" not in document.split('id="artifacts"')[0].split("document-warnings")[0]
    assert document.count('id="r1-identity"') == document.count('id="r2-identity"') == 1
