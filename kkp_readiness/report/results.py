"""From test reports to requirement verdicts and ``results.json``.

Verdicts are derived only from the reports pytest hands the controller (serial or from xdist
workers alike), so ``-n 2`` and a serial run give the same results. Every catalogue entry
appears: ``not-implemented`` when no test carries it, ``not-run`` when it was not selected;
never ``pass`` unless a test passed.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kkp_readiness.catalogue import Catalogue
from kkp_readiness.errors import KkpReadinessError
from kkp_readiness.redact import redact_obj
from kkp_readiness.verdict import Verdict, exit_code, worst


@dataclass
class TestOutcome:
    """The verdict of one test item (one target of one requirement)."""

    nodeid: str
    requirement: str
    verdict: Verdict = Verdict.PASS
    message: str = ""
    duration: float = 0.0
    evidence: list[dict[str, str]] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"nodeid": self.nodeid, "verdict": str(self.verdict), "message": self.message,
                "duration": round(self.duration, 3), "evidence": self.evidence, "figures": self.figures}


@dataclass
class ResultsCollector:
    """Folds per-phase reports into per-test and per-requirement verdicts."""

    catalogue: Catalogue
    implemented: set[str]
    tests: dict[str, TestOutcome] = field(default_factory=dict)

    def record(self, nodeid: str, info: dict[str, Any], duration: float) -> None:
        """Record one phase's verdict (setup, call, teardown) of one test; the worst phase wins."""
        verdict = Verdict(info["verdict"])
        outcome = self.tests.get(nodeid)
        if outcome is None:
            outcome = self.tests[nodeid] = TestOutcome(nodeid, info["requirement"], verdict, info.get("message", ""))
        elif worst([outcome.verdict, verdict]) is verdict and verdict is not outcome.verdict:
            outcome.verdict = verdict
            outcome.message = info.get("message", "")
        outcome.duration += duration
        outcome.evidence.extend(info.get("evidence", ()))
        outcome.figures.extend(info.get("figures", ()))

    def requirements(self) -> list[dict[str, Any]]:
        """One object per catalogue entry, in checklist order."""
        by_requirement: dict[str, list[TestOutcome]] = {}
        for outcome in self.tests.values():
            by_requirement.setdefault(outcome.requirement, []).append(outcome)
        rows = []
        for requirement in self.catalogue:
            outcomes = by_requirement.get(requirement.id, [])
            if outcomes:
                verdict = worst(o.verdict for o in outcomes)
            elif requirement.id in self.implemented:
                verdict = Verdict.NOT_RUN
            else:
                verdict = Verdict.NOT_IMPLEMENTED
            messages = [
                {"test": o.nodeid, "verdict": str(o.verdict), "message": o.message}
                for o in outcomes
                if o.message and o.verdict is not Verdict.PASS
            ]
            rows.append({
                "id": requirement.id,
                "section": requirement.section,
                "title": requirement.title,
                "requirement": requirement.requirement,
                "remediation": requirement.remediation,
                "level": requirement.level,
                "severity": requirement.severity,
                "docs": requirement.docs,
                "verdict": str(verdict),
                "messages": messages,
                "tests": [o.to_dict() for o in outcomes],
            })
        return rows

    def selected_verdicts(self) -> list[Verdict]:
        return [Verdict(row["verdict"]) for row in self.requirements() if row["tests"]]

    def exit_code(self) -> int:
        return exit_code(self.selected_verdicts())


def summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(row["verdict"] for row in rows)
    return {str(v): counts.get(str(v), 0) for v in Verdict}


def write_results(path: Path, run: dict[str, Any], rows: list[dict[str, Any]], exit_status: int,
                  waivers: list[dict[str, Any]] | None = None) -> None:
    """Write ``results.json`` (redacted like every artifact), with the run's waivers and whether each expired."""
    document = {
        "schema": 2,  # 2: tests carry message, evidence and figures; requirements their text and remediation
        "run": run,
        "exit_code": exit_status,
        "summary": summary(rows),
        "requirements": rows,
        "waivers": waivers or [],
    }
    path.write_text(json.dumps(redact_obj(document), indent=2) + "\n", encoding="utf-8")


class ResultsError(KkpReadinessError):
    """A ``results.json`` cannot be read back: missing, not JSON, or not a results document."""


_ROW_TEXT = ("section", "title", "requirement", "remediation", "level", "severity", "docs")


def load_results(path: Path) -> dict[str, Any]:
    """A run's ``results.json`` (``path`` is the file or its run directory), checked and brought to schema 2.

    Everything that renders a run later (``handover``, ``merge``) reads it through here, so that a schema-1
    document (its messages only in ``messages``), a hand-edited one or a truncated one either renders
    completely or fails with the file and the field named, never with a traceback or a silently dropped finding.
    """
    path = Path(path)
    results_file = path / "results.json" if path.is_dir() else path
    try:
        document = json.loads(results_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"{results_file} cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ResultsError(f"{results_file} is not JSON: {exc}") from None
    return normalise_results(document, str(results_file))


def normalise_results(document: Any, source: str = "results") -> dict[str, Any]:
    """``document`` with every field the renderers use present and typed (see ``load_results``)."""
    if not isinstance(document, dict) or not isinstance(document.get("requirements"), list):
        raise ResultsError(f"{source} is not a kkp-readiness results document (no list of requirements)")
    run = document.get("run")
    exit_status = document.get("exit_code")
    out: dict[str, Any] = {
        **document,
        "run": run if isinstance(run, dict) else {},
        "exit_code": exit_status if isinstance(exit_status, int) else 2,
        "waivers": [w for w in document.get("waivers") or [] if isinstance(w, dict)],
        "requirements": [_normalise_row(row, index, source) for index, row in enumerate(document["requirements"])],
    }
    return out


def _normalise_row(row: Any, index: int, source: str) -> dict[str, Any]:
    if not isinstance(row, dict) or not isinstance(row.get("id"), str) or row.get("verdict") not in set(map(
            str, Verdict)):
        raise ResultsError(f"{source}: requirements[{index}] has no id or no known verdict")
    messages = [m for m in row.get("messages") or [] if isinstance(m, dict)]
    by_test = {m.get("test"): str(m.get("message") or "") for m in messages}
    tests = []
    for test in row.get("tests") or []:
        if not isinstance(test, dict) or not isinstance(test.get("nodeid"), str):
            raise ResultsError(f"{source}: a test of {row['id']} has no nodeid")
        tests.append({
            "nodeid": test["nodeid"],
            "verdict": str(test.get("verdict") or row["verdict"]),
            # schema 1 kept a test's message only in the requirement's messages
            "message": str(test.get("message") or by_test.get(test["nodeid"], "")),
            "duration": test.get("duration") if isinstance(test.get("duration"), int | float) else 0.0,
            "evidence": [e for e in test.get("evidence") or [] if isinstance(e, dict)],
            "figures": [f for f in test.get("figures") or [] if isinstance(f, dict)
                        and isinstance(f.get("value"), int | float) and not isinstance(f.get("value"), bool)
                        and math.isfinite(f["value"])],
        })
    return {**row, **{key: str(row.get(key) or "") for key in _ROW_TEXT}, "messages": messages, "tests": tests}
