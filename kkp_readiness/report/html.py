"""pytest-html integration: requirement columns, title, evidence as extras.

Registered only when pytest-html is active, so its hook specifications exist.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from typing import Any

from kkp_readiness.report.chart import VERDICT_COLOURS as _VERDICT_COLOURS


def _info(report: Any) -> dict[str, Any]:
    return getattr(report, "kkp", None) or {}


class HtmlReportColumns:
    """Adds Requirement, Section, Severity, Verdict and Docs columns to the results table, and a table of
    every catalogue requirement with its verdict (not-implemented and not-run included) above it."""

    def __init__(self, title: str, requirement_rows: Callable[[], list[dict[str, Any]]]) -> None:
        self.title = title
        self.requirement_rows = requirement_rows

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        rows = self.requirement_rows()
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
        overview = ", ".join(f"{count} {verdict}" for verdict, count in sorted(counts.items()))
        lines = [f"<h2>Requirements ({len(rows)}: {html.escape(overview)})</h2>",
                 '<table id="requirements"><thead><tr><th>Requirement</th><th>Title</th><th>Level</th>'
                 "<th>Verdict</th><th>Finding</th></tr></thead><tbody>"]
        for row in (r for r in rows if r["tests"]):
            colour = _VERDICT_COLOURS.get(row["verdict"], "#9e9e9e")
            worst = [m for m in row["messages"] if m["verdict"] == row["verdict"]] or row["messages"]
            finding = worst[0]["message"].splitlines()[0] if worst else ""
            lines.append(
                f'<tr><td><a href="{html.escape(row["docs"])}">{html.escape(row["id"])}</a></td>'
                f"<td>{html.escape(row['title'])}</td><td>{html.escape(row['level'])}</td>"
                f'<td style="color:{colour};font-weight:bold">{html.escape(row["verdict"].upper())}</td>'
                f"<td>{html.escape(finding)}</td></tr>"
            )
        lines.append("</tbody></table>")
        for verdict, meaning in (("not-run", "implemented but not selected in this run"),
                                 ("not-implemented", "no check exists yet; never counted as passed")):
            ids = [r["id"] for r in rows if r["verdict"] == verdict]
            if ids:
                lines.append(f"<p><b>{verdict.upper()}</b> ({len(ids)}, {meaning}): {html.escape(', '.join(ids))}</p>")
        postfix.extend(lines)

    def pytest_html_report_title(self, report: Any) -> None:
        report.title = self.title

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(1, '<th class="sortable" data-column-type="requirement">Requirement</th>')
        cells.insert(2, '<th class="sortable" data-column-type="section">Section</th>')
        cells.insert(3, '<th class="sortable" data-column-type="severity">Severity</th>')
        cells.insert(4, '<th class="sortable" data-column-type="verdict">Verdict</th>')
        cells.insert(5, "<th>Docs</th>")

    def pytest_html_results_table_row(self, report: Any, cells: list[str]) -> None:
        info = _info(report)
        verdict = info.get("verdict", "")
        colour = _VERDICT_COLOURS.get(verdict, "inherit")
        docs = info.get("docs", "")
        cells.insert(1, f'<td class="col-requirement">{html.escape(info.get("requirement", ""))}</td>')
        cells.insert(2, f'<td class="col-section">{html.escape(info.get("section", ""))}</td>')
        cells.insert(3, f'<td class="col-severity">{html.escape(info.get("severity", ""))}</td>')
        cells.insert(
            4,
            f'<td class="col-verdict" style="color:{colour};font-weight:bold">{html.escape(verdict.upper())}</td>',
        )
        link = f'<a href="{html.escape(docs)}" target="_blank">docs</a>' if docs else ""
        cells.insert(5, f'<td class="col-docs">{link}</td>')


def add_extras(report: Any, evidence_items: list[tuple[str, str, str]], message: str) -> None:
    """Attach evidence (and the verdict message) to the report for pytest-html."""
    import pytest_html

    extras = list(getattr(report, "extras", []))
    if message:
        extras.append(pytest_html.extras.text(message, name="verdict"))
    for name, kind, content in evidence_items:
        if kind == "svg":  # embedded as data, so the self-contained report stays one file
            extras.append(pytest_html.extras.svg(base64.b64encode(content.encode()).decode(), name=name))
        else:
            extras.append(pytest_html.extras.text(content, name=name))
    report.extras = extras
