"""The handover report: one self-contained HTML file an installation team hands to the customer.

Built from ``results.json`` alone (plus the run directory's files for the artifact list), so that
``kkp-readiness handover RUN_DIR`` renders the same document later, and so that nothing a check saw
reaches the document without having gone through the results' redaction first. No external assets:
styles are inline, charts are inline SVG, evidence charts are ``data:`` images (an image cannot run
script), and the page prints to PDF from any browser (``@media print``).

Layout: a cover (verdict, counts, a chart per checklist section, the run's identity, what was not
run and why, the waivers, what changed since the previous run), then every catalogue requirement in
checklist order, then the artifacts with their SHA-256.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kkp_readiness.catalogue import load_catalogue
from kkp_readiness.redact import redact
from kkp_readiness.report.chart import VERDICT_COLOURS, verdict_bar
from kkp_readiness.report.manifest import file_entries
from kkp_readiness.report.results import load_results, normalise_results
from kkp_readiness.verdict import ExitCode

HANDOVER = "handover.html"

#: What the run's exit code means for the customer, worded for the cover.
OVERALL = {
    ExitCode.OK: ("READY", "every selected requirement passed, is waived or does not apply", "pass"),
    ExitCode.FAILED: ("NOT READY", "at least one requirement failed", "fail"),
    ExitCode.ERRORS: ("INCOMPLETE", "no requirement failed, but some could not be checked", "error"),
    ExitCode.WARNINGS: ("READY WITH WARNINGS", "only recommendations are not met", "warn"),
    ExitCode.USAGE: ("NO VERDICT", "the run could not start (command line, profile or waivers)", "not-run"),
    ExitCode.NO_TESTS: ("NO VERDICT", "no check was selected", "not-run"),
    ExitCode.INTERRUPTED: ("NO VERDICT", "the run was interrupted", "not-run"),
}

#: Why a requirement without a verdict of its own has none, in the customer's words.
NOT_JUDGED = {
    "not-run": "implemented, but not selected by this run's markers or keywords",
    "not-implemented": "no automated check exists yet: verify it by hand; never counted as passed",
    "skip": "does not apply to this site's profile",
}


@dataclass
class HistoryView:
    """What the cover says about earlier runs: the comparison with the previous one, and trend charts."""

    previous_run: str | None = None
    changes: list[tuple[str, str]] = field(default_factory=list)  # (kind, text): regressed, recovered, ...
    charts: list[str] = field(default_factory=list)  # inline SVG
    note: str = ""  # e.g. why there is no comparison


@dataclass(frozen=True)
class Artifact:
    path: str
    size: int
    sha256: str


def run_artifacts(run_dir: Path) -> list[Artifact]:
    """Every file of the run except this report and the manifest (which is written after it and lists it)."""
    return [Artifact(**entry) for entry in file_entries(run_dir, exclude=(HANDOVER,))]


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def badge(verdict: str, text: str | None = None) -> str:
    return f'<span class="badge v-{esc(verdict)}">{esc((text or verdict).upper())}</span>'


def overall(exit_code: int, summary: Mapping[str, int]) -> tuple[str, str, str]:
    """(headline, explanation, verdict colour key) of a run, from its exit code."""
    headline, why, key = OVERALL.get(exit_code, ("NO VERDICT", f"exit code {exit_code}", "not-run"))
    if exit_code == ExitCode.OK and summary.get("waived"):
        why += f"; {summary['waived']} requirement(s) pass only by waiver"
    return headline, why, key


STYLE = """
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1100px;
padding:24px;color:#212121;font-size:14px;line-height:1.45}
h1{font-size:26px;margin:0 0 4px}h2{border-bottom:2px solid #424242;padding-bottom:4px;margin-top:32px}
h3{margin:24px 0 8px}table{border-collapse:collapse;width:100%;margin:8px 0}
td,th{border:1px solid #e0e0e0;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f5f5f5}
.badge{display:inline-block;padding:1px 8px;border-radius:3px;color:#fff;font-weight:bold;font-size:12px}
.overall{font-size:30px;padding:10px 18px;border-radius:6px;color:#fff;font-weight:bold;display:inline-block}
.charts{display:flex;flex-wrap:wrap;gap:12px 28px;margin:12px 0}
.req{border:1px solid #e0e0e0;border-left:6px solid #9e9e9e;padding:8px 12px;margin:10px 0;break-inside:avoid}
.req h4{margin:0 0 4px;font-size:15px}.meta{color:#616161;font-size:12px}
pre{white-space:pre-wrap;word-break:break-word;background:#fafafa;border:1px solid #eee;padding:6px;font-size:12px;
margin:4px 0}.msg{background:#fff8e1}.mono{font-family:"DejaVu Sans Mono",monospace;font-size:12px;
word-break:break-all}details{margin:4px 0}summary{cursor:pointer}.fix{background:#e8f5e9;padding:4px 6px}
.kv td:first-child{width:190px;color:#616161}
.warning{border:2px solid #c62828;background:#ffebee;padding:8px 12px;margin-bottom:16px}
@media print{body{max-width:none;padding:0}details{display:block}details>summary{list-style:none}
.cover{break-after:page}h2{break-after:avoid}a{color:inherit}}
""" + "".join(f".v-{key}{{background:{colour}}}.req.v-{key}{{border-left-color:{colour};background:#fff}}"
              for key, colour in VERDICT_COLOURS.items()) + ".v-not-implemented,.v-not-run{color:#212121}"


def render_handover(results: Mapping[str, Any], artifacts: Sequence[Artifact] = (), *,
                    signing_fingerprint: str | None = None, history: HistoryView | None = None,
                    title: str | None = None, warnings: Sequence[str] = ()) -> str:
    """The handover document of one run, from its ``results.json`` document.

    ``warnings`` are shown above everything on the cover (e.g. the run directory no longer matches its manifest).
    """
    results = normalise_results(results)
    run = results["run"]
    rows = results["requirements"]
    headline = title or f"KKP readiness handover: {run.get('profile', '?')}"
    body = [warnings_html(warnings), _cover(results, headline, history), requirements_html(rows),
            artifacts_html(artifacts, run.get("id", ""), signing_fingerprint)]
    return page(f"{headline} ({run.get('id', '')})", body)


def warnings_html(warnings: Sequence[str]) -> str:
    """A red box for what makes the document itself doubtful; nothing when there is nothing to say."""
    if not warnings:
        return ""
    items = "".join(f"<li>{esc(w)}</li>" for w in warnings)
    return f'<div class="warning" id="document-warnings"><b>Read this first:</b><ul>{items}</ul></div>'


def link(url: str) -> str:
    """A link only for http(s) URLs (a ``javascript:`` URL in a received results.json must not become live)."""
    if url.startswith(("https://", "http://")):
        return f'<a href="{esc(url)}">{esc(url)}</a>'
    return esc(url)


def page(title: str, body: Iterable[str]) -> str:
    """A whole self-contained document (inline style, no external asset), redacted once more as a whole."""
    return redact(f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
                  f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")


def _cover(results: Mapping[str, Any], headline: str, history: HistoryView | None) -> str:
    run = results["run"]
    rows = results["requirements"]
    summary = Counter(row["verdict"] for row in rows)
    big, why, key = overall(results["exit_code"], summary)
    unchecked = sum(summary.get(v, 0) for v in NOT_JUDGED)
    counts = "".join(f"<td>{badge(v)}</td><td><b>{n}</b></td>" for v in VERDICT_COLOURS if (n := summary.get(v)))
    parts = [
        '<section class="cover">',
        f"<h1>{esc(headline)}</h1>",
        f'<p class="meta">{esc(run.get("site") or "")}</p>' if run.get("site") else "",
        f"<p>KKP {esc(run.get('kkp_version', '?'))} {esc(str(run.get('kkp_edition', '')).upper())} · base domain "
        f"{esc(run.get('base_domain', '?'))} · seeds {esc(', '.join(run.get('seeds', [])) or '?')}</p>",
        f'<p><span id="overall-verdict" class="overall v-{key}">{esc(big)}</span></p>',
        f"<p>{esc(why)} (exit code {esc(results['exit_code'])}). Of the {len(rows)} requirements of the catalogue, "
        f"{len(rows) - unchecked} were checked and {unchecked} were not (see what was not run, below).</p>",
        f'<table id="counts"><tr>{counts}</tr></table>',
        '<div class="charts">', *section_charts(rows), "</div>",
        "<h2>Run identity</h2>", identity_html(run),
        "<h2>What was not run, and why</h2>", not_run_html(rows),
        "<h2>Waivers</h2>", waivers_html(results["waivers"]),
        "<h2>Since the previous run</h2>", _history(history),
        "</section>",
    ]
    return "".join(parts)


def _sections() -> dict[str, str]:
    try:
        return {section.id: section.title for section in load_catalogue().sections}
    except Exception:  # an old run rendered with a changed catalogue still renders, by id
        return {}


def section_charts(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    titles = _sections()
    by_section: dict[str, Counter[str]] = {}
    for row in rows:
        by_section.setdefault(row["section"], Counter())[row["verdict"]] += 1
    return [f'<div class="chart">{verdict_bar(counts, " ".join(filter(None, (section, titles.get(section)))))}</div>'
            for section, counts in by_section.items()]


def identity_html(run: Mapping[str, Any], prefix: str = "") -> str:
    fields = [
        ("Run", run.get("id")), ("Profile", f"{run.get('profile')} ({run.get('profile_path')})"),
        ("Profile SHA-256", run.get("profile_sha256")), ("Operator", run.get("operator")),
        ("Host", run.get("host")), ("System", f"{run.get('system', '')}, Python {run.get('python', '')}"),
        ("Started", run.get("started")), ("Finished", run.get("finished")),
        ("Tool", f"kkp-readiness {run.get('tool_version')}, commit {run.get('tool_commit') or 'unknown'}"),
        ("pytest arguments", " ".join(run.get("pytest_args", [])) or "(none)"),
        ("Selected markers (-m)", run.get("markexpr") or "(all)"),
        ("Keywords (-k)", run.get("keywordexpr") or "(none)"),
        ("Active checks", "yes (--active: test objects created and deleted)" if run.get("active") else
         "no (read-only)"),
        ("Cluster source", run.get("cluster_source", "live")),
    ]
    cells = "".join(f'<tr><td>{esc(k)}</td><td class="mono">{esc(v if v is not None else "")}</td></tr>'
                    for k, v in fields)
    return f'<table class="kv" id="{esc(prefix)}identity">{cells}</table>'


def not_run_html(rows: Sequence[Mapping[str, Any]], prefix: str = "") -> str:
    parts = []
    for verdict, meaning in NOT_JUDGED.items():
        chosen = [row for row in rows if row["verdict"] == verdict]
        if not chosen:
            continue
        items = []
        for row in chosen:
            reason = next((m["message"].splitlines()[0] for m in row.get("messages", []) if m.get("message")), "")
            items.append(f'<li><a href="#{esc(prefix + row["id"])}">{esc(row["id"])}</a> {esc(row["title"])}'
                         + (f' <span class="meta">({esc(reason)})</span>' if reason else "") + "</li>")
        parts.append(f"<h3>{badge(verdict)} {len(chosen)}: {esc(meaning)}</h3><ul>{''.join(items)}</ul>")
    return "".join(parts) or "<p>Every catalogue requirement was checked.</p>"


def waivers_html(waivers: Sequence[Mapping[str, Any]], prefix: str = "") -> str:
    if not waivers:
        return "<p>No waivers were given for this run.</p>"
    rows = "".join(
        f"<tr><td>{esc(w.get('requirement'))}</td><td>{esc(w.get('target') or 'all targets')}</td>"
        f"<td>{badge('waived' if w.get('status') == 'active' else 'fail', str(w.get('status')))}</td>"
        f"<td>{esc(w.get('owner'))}</td><td>{esc(w.get('expires'))}</td><td>{esc(w.get('justification'))}</td></tr>"
        for w in waivers)
    return (f'<table id="{esc(prefix)}waivers"><tr><th>Requirement</th><th>Target</th><th>Status</th><th>Owner</th>'
            f"<th>Expires</th><th>Justification</th></tr>{rows}</table>"
            "<p class=\"meta\">An expired waiver waives nothing: its finding is reported as it is.</p>")


def _history(history: HistoryView | None) -> str:
    if history is None:
        return "<p>No earlier run was compared.</p>"
    parts = [f"<p>Compared with run <b>{esc(history.previous_run)}</b>.</p>" if history.previous_run else "",
             f"<p>{esc(history.note)}</p>" if history.note else ""]
    if history.changes:
        parts.append('<table id="changes"><tr><th>Change</th><th>What</th></tr>'
                     + "".join(f"<tr><td>{esc(kind)}</td><td>{esc(text)}</td></tr>" for kind, text in history.changes)
                     + "</table>")
    elif history.previous_run:
        parts.append("<p>No requirement changed its verdict and no figure moved.</p>")
    if history.charts:
        parts.append('<div class="charts">' + "".join(f"<div>{svg}</div>" for svg in history.charts) + "</div>")
    return "".join(parts)


def requirements_html(rows: Sequence[Mapping[str, Any]], prefix: str = "", heading: str = "Requirements") -> str:
    """Every requirement in checklist order; ``prefix`` keeps anchors unique when several runs share a page."""
    titles = _sections()
    parts = [f"<h2>{esc(heading)}</h2>",
             "<p>Every requirement of the catalogue, in checklist order, with what was found and the evidence.</p>"]
    section = None
    for row in rows:
        if row["section"] != section:
            section = row["section"]
            heading = f"{section} {titles.get(section, '')}"
            parts.append(f'<h3 id="{esc(prefix)}section-{esc(section)}">{esc(heading)}</h3>')
        parts.append(_requirement(row, prefix))
    return "".join(parts)


def _requirement(row: Mapping[str, Any], prefix: str = "") -> str:
    verdict = row["verdict"]
    parts = [f'<article class="req v-{esc(verdict)}" id="{esc(prefix + row["id"])}">',
             f"<h4>{badge(verdict)} {esc(row['id'])} {esc(row['title'])}</h4>",
             f'<p class="meta">level {esc(row.get("level"))} · severity {esc(row.get("severity"))} · '
             f'{link(row.get("docs", ""))}</p>']
    if row.get("requirement"):
        parts.append(f"<p>{esc(row['requirement'])}</p>")
    if verdict in NOT_JUDGED and not row.get("tests"):
        parts.append(f"<p><i>{esc(NOT_JUDGED[verdict])}.</i></p>")
    if verdict not in ("pass", "not-run", "skip") and row.get("remediation"):
        parts.append(f'<p class="fix"><b>Remediation:</b> {esc(row["remediation"])}</p>')
    tests = row.get("tests") or []
    if tests:
        parts.append('<table class="tests"><tr><th>Check (target)</th><th>Verdict</th><th>Finding and evidence</th>'
                     "</tr>" + "".join(_test(test) for test in tests) + "</table>")
    parts.append("</article>")
    return "".join(parts)


def _test(test: Mapping[str, Any]) -> str:
    message = f'<pre class="msg">{esc(test["message"])}</pre>' if test.get("message") else ""
    figures = "".join(f"<li>{esc(f.get('name', ''))}: <b>{f['value']:g} {esc(f.get('unit', ''))}</b>"
                      + (f" ({esc(f['better'])} is better)" if f.get("better") else "") + "</li>"
                      for f in test.get("figures", []))
    evidence = "".join(_evidence(item) for item in test.get("evidence", []))
    target = check_name(test["nodeid"])
    return (f'<tr><td class="mono">{esc(target)}<br><span class="meta">{esc(test.get("duration", 0))} s</span></td>'
            f"<td>{badge(test['verdict'])}</td><td>{message}"
            + (f"<ul>{figures}</ul>" if figures else "")
            + (evidence or '<span class="meta">no evidence recorded</span>') + "</td></tr>")


def check_name(nodeid: str) -> str:
    """``tests_infra/test_dns.py::test_x[127.0.0.1:53-seed]`` -> ``test_x[127.0.0.1:53-seed]``: the check and target."""
    return nodeid.split("::")[-1]


def _evidence(item: Mapping[str, str]) -> str:
    name, kind, content = item.get("name", ""), item.get("kind", "text"), item.get("content", "")
    if kind == "svg":  # an image, not inline markup: an image cannot run script
        data = base64.b64encode(content.encode()).decode()
        return f'<div><img alt="{esc(name)}" src="data:image/svg+xml;base64,{data}"></div>'
    return f"<details><summary>{esc(name)}</summary><pre>{esc(content)}</pre></details>"


def artifacts_html(artifacts: Sequence[Artifact], run_id: str, fingerprint: str | None) -> str:
    if not artifacts:
        return ""
    main = [a for a in artifacts if not a.path.startswith("allure-report/")]
    allure = [a for a in artifacts if a.path.startswith("allure-report/")]

    def table(items: Sequence[Artifact]) -> str:
        return ('<table class="artifacts"><tr><th>File</th><th>Bytes</th><th>SHA-256</th></tr>'
                + "".join(f'<tr><td class="mono">{esc(a.path)}</td><td>{a.size}</td><td class="mono">{a.sha256}</td>'
                          "</tr>" for a in items) + "</table>")

    signed = (f"manifest.json is signed (Ed25519, key fingerprint <b class=\"mono\">{esc(fingerprint)}</b>): "
              "compare the fingerprint with the one the installation team published, or pass their public key "
              "with <code>--public-key</code>." if fingerprint else
              "manifest.json is not signed (the profile names no handover.signing_key): the hashes show that "
              "nothing changed, not who wrote them.")
    parts = ['<h2 id="artifacts">Artifacts of this run</h2>',
             f"<p>{len(artifacts)} files. manifest.json, written after this report, lists every file of the run "
             f"directory with its SHA-256, this report included. {signed} Check the whole run directory with "
             f"<code>kkp-readiness verify reports/{esc(run_id)}</code>.</p>", table(main)]
    if allure:
        parts.append(f"<details><summary>the Allure report: {len(allure)} files</summary>{table(allure)}</details>")
    return "".join(parts)


def write_handover(run_dir: Path, results: Mapping[str, Any] | None = None, *, out: Path | None = None,
                   signing_fingerprint: str | None = None, history: HistoryView | None = None,
                   warnings: Sequence[str] = ()) -> Path:
    """Render the run's handover report into ``run_dir/handover.html`` (or ``out``); its path."""
    if results is None:
        results = load_results(run_dir)
    target = out or run_dir / HANDOVER
    document = render_handover(results, run_artifacts(run_dir), signing_fingerprint=signing_fingerprint,
                               history=history, warnings=warnings)
    target.write_text(document, encoding="utf-8")
    return target
