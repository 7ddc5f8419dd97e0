"""From test reports to requirement verdicts and ``results.json``.

Verdicts are derived only from the reports pytest hands the controller (serial or from xdist
workers alike), so ``-n 2`` and a serial run give the same results. Every catalogue entry
appears: ``not-implemented`` when no test carries it, ``not-run`` when it was not selected;
never ``pass`` unless a test passed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kkp_readiness.catalogue import Catalogue
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
