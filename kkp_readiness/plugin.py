"""The pytest plugin: options, markers, the requirement marker, verdicts, evidence and reports.

All hooks live here (as in pytest-xdist and pytest-html); the mechanics they call live in
:mod:`kkp_readiness.report`, :mod:`kkp_readiness.verdict` and :mod:`kkp_readiness.evidence`.

A shipped check is an ordinary pytest test carrying ``@pytest.mark.requirement("ID")``. From
the catalogue the plugin adds the section's and the entry's markers (so ``-m dns`` selects it),
makes the id a ``-k`` keyword, skips the test with a reason where the entry does not apply to
the profile, and turns the test's outcome into a verdict:

* passed -> ``pass``;  skipped -> ``skip``;
* :class:`~kkp_readiness.verdict.CheckFailed` / ``AssertionError`` -> ``fail`` for a required
  entry, ``warn`` (reported as pytest's xfail) for a recommended or optional one;
* :class:`~kkp_readiness.errors.ProbeError` or any other exception -> ``error``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import allure
import pytest

from kkp_readiness import redact
from kkp_readiness.catalogue import Catalogue, Requirement, implemented_ids, load_catalogue
from kkp_readiness.errors import CatalogueError, ProbeError, ProfileError
from kkp_readiness.evidence import Evidence
from kkp_readiness.profile import LoadedProfile, load_profile
from kkp_readiness.report import allure_cli, manifest
from kkp_readiness.report.results import ResultsCollector, write_results
from kkp_readiness.report.run import RunInfo, create_run_dir, git_commit, new_run_id, now_iso
from kkp_readiness.verdict import CheckFailed, ExitCode, Verdict
from kkp_readiness.waivers import Waiver, WaiverError, find_waiver, load_waivers

PROFILE_KEY = pytest.StashKey[LoadedProfile | None]()
RUN_KEY = pytest.StashKey["RunState"]()
EVIDENCE_KEY = pytest.StashKey[Evidence]()
WAIVERS_KEY = pytest.StashKey[list[Waiver]]()
REQUIREMENT_KEY = pytest.StashKey[Requirement]()


class RunState:
    """What the controller process knows about the run it is writing."""

    def __init__(self, info: RunInfo | None, run_dir: Path | None, collector: ResultsCollector) -> None:
        self.info = info
        self.run_dir = run_dir
        self.collector = collector
        self.interrupted = False
        self.collection_errors = 0
        self.user_html: str | None = None
        self.user_junit: str | None = None
        self.user_allure: str | None = None
        self.unmarked_failures = 0


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


# ----------------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kkp-readiness", "KKP readiness suite")
    group.addoption("--profile", metavar="NAME|PATH", default=os.environ.get("KKP_READINESS_PROFILE"),
                    help="site profile: a name from profiles/ or a path to a YAML file")
    group.addoption("--reports-dir", metavar="DIR", default=os.environ.get("KKP_READINESS_REPORTS", "reports"),
                    help="where reports/<run-id>/ is written (default: ./reports)")
    group.addoption("--run-id", metavar="ID", default=None,
                    help="name the run directory (default: time-profile-random)")
    group.addoption("--active", action="store_true", default=False,
                    help="allow active checks that create objects (always cleaned up)")
    group.addoption("--no-allure-report", action="store_true", default=False,
                    help="do not generate allure-report/ even when the Allure CLI is available")
    group.addoption("--cluster-snapshot", metavar="DIR", default=None,
                    help="run the cluster checks on what `kkp-readiness collect` saved in DIR, not a live API")
    group.addoption("--waivers", metavar="FILE", default=os.environ.get("KKP_READINESS_WAIVERS"),
                    help="waiver file (requirement, justification, owner, expires); default: the profile's waivers")


# ----------------------------------------------------------------------------- configure


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config):  # type: ignore[no-untyped-def]
    """pytest reports its usage errors (an unknown -m marker, a bad -k expression) as 4, which is our
    "warnings only": make every usage error 2."""
    try:
        return (yield)
    except pytest.UsageError as exc:
        for line in str(exc).splitlines():
            print(f"ERROR: {line}", file=sys.stderr)
        return ExitCode.USAGE


def _exit_usage(message: str) -> None:
    """Stop before any check with exit code 2, printing ``message`` the way pytest prints usage errors."""
    pytest.exit(message, returncode=ExitCode.USAGE)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requirement(id): the catalogue requirement this check proves")
    try:
        catalogue = load_catalogue()
    except CatalogueError as exc:
        _exit_usage(f"catalogue error: {exc}")
        return
    for marker, description in catalogue.markers().items():
        config.addinivalue_line("markers", f"{marker}: {description}")

    refuse_detached_path_values(config)
    loaded: LoadedProfile | None = None
    reference = config.getoption("profile")
    if reference:
        try:
            loaded = load_profile(reference)
        except ProfileError as exc:
            _exit_usage(f"profile error: {exc}")
            return
    config.stash[PROFILE_KEY] = loaded
    try:
        config.stash[WAIVERS_KEY] = _load_waivers(config, loaded, catalogue)
    except WaiverError as exc:
        _exit_usage(f"waivers error: {exc}")
        return

    collector = ResultsCollector(catalogue, set(implemented_ids()))
    if _is_worker(config):
        worker_input = config.workerinput  # type: ignore[attr-defined]
        run_dir = Path(worker_input["kkp_run_dir"]) if worker_input.get("kkp_run_dir") else None
        config.stash[RUN_KEY] = RunState(None, run_dir, collector)
        if run_dir is not None:
            config.option.allure_report_dir = str(run_dir / "allure-results")
        return

    informational = config.option.collectonly or config.option.markers or config.option.showfixtures
    if loaded is None or informational:
        config.stash[RUN_KEY] = RunState(None, None, collector)
        return
    _prepare_run_dir(config, loaded, collector)


def _load_waivers(config: pytest.Config, loaded: LoadedProfile | None, catalogue: Catalogue) -> list[Waiver]:
    """The run's waivers: ``--waivers`` or the profile's ``waivers`` file, validated before any check."""
    option = config.getoption("waivers")
    if option:
        path: str | None = str(Path(option).resolve())
    elif loaded is not None and loaded.profile.waivers:
        path = loaded.resolve_path(("waivers",), loaded.profile.waivers)
    else:
        return []
    assert path is not None
    return load_waivers(Path(path), {requirement.id for requirement in catalogue})


def refuse_detached_path_values(config: pytest.Config) -> None:
    """``--reports-dir /elsewhere`` would make pytest take /elsewhere as a test path when it looks for its rootdir
    (plugin options are not known yet at that point), silently collecting the wrong tests; demand ``=``."""
    args = list(config.invocation_params.args)
    for option in ("--reports-dir", "--profile", "--cluster-snapshot", "--waivers"):
        if option in args:
            index = args.index(option)
            value = args[index + 1] if index + 1 < len(args) else ""
            if value and Path(value).exists():
                _exit_usage(f"write {option}={value} (with '='): pytest would otherwise read {value} as a test path")


def _prepare_run_dir(config: pytest.Config, loaded: LoadedProfile, collector: ResultsCollector) -> None:
    info = RunInfo(
        id=config.getoption("run_id") or new_run_id(loaded.name),
        profile=loaded.name,
        profile_path=str(loaded.path),
        profile_sha256=loaded.sha256,
        started=now_iso(),
        tool_commit=git_commit(),
        site=loaded.profile.description,
        base_domain=loaded.profile.base_domain,
        kkp_version=loaded.profile.kkp.version,
        kkp_edition=loaded.profile.kkp.edition,
        seeds=[seed.name for seed in loaded.profile.seeds],
        history_dir=(loaded.resolve_path(("handover", "history_dir"), loaded.profile.handover.history_dir)
                     if loaded.profile.handover.history_dir else None),
        history_runs=loaded.profile.handover.history_runs,
        pytest_args=[redact.redact(a) for a in config.invocation_params.args],
        markexpr=config.option.markexpr or "",
        keywordexpr=config.option.keyword or "",
        active=bool(config.getoption("active")),
        cluster_source=f"snapshot:{Path(s).resolve()}" if (s := config.getoption("cluster_snapshot")) else "live",
    )
    reports_dir = Path(config.getoption("reports_dir"))
    try:
        run_dir = create_run_dir(reports_dir, info.id)
    except OSError as exc:
        _exit_usage(f"cannot create the run directory under {reports_dir}: {exc}")
        return
    state = RunState(info, run_dir, collector)
    config.stash[RUN_KEY] = state

    # Our files always land in the run directory; a user's own --html/--junitxml are honoured and copied in.
    state.user_html = config.getoption("htmlpath", None)
    state.user_junit = config.option.xmlpath
    state.user_allure = getattr(config.option, "allure_report_dir", None)
    if not state.user_html:
        config.option.htmlpath = str(run_dir / "report.html")
    config.option.self_contained_html = True
    if not state.user_junit:
        config.option.xmlpath = str(run_dir / "junit.xml")
    # Allure results always go to the run directory (workers write there too); a user's --alluredir
    # receives a scrubbed copy at the end.
    config.option.allure_report_dir = str(run_dir / "allure-results")

    if config.pluginmanager.hasplugin("html"):
        from kkp_readiness.report.html import HtmlReportColumns

        title = f"KKP readiness: {loaded.name} ({info.id})"
        config.pluginmanager.register(HtmlReportColumns(title, collector.requirements), "kkp-readiness-html")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistBridge(str(run_dir)), "kkp-readiness-xdist")
    metadata = _metadata(config)
    if metadata is not None:
        metadata.update({"Run": info.id, "Profile": f"{loaded.name} (sha256 {loaded.sha256[:16]}…)",
                         "Tool version": info.tool_version, "Operator": info.operator})


def _metadata(config: pytest.Config) -> dict[str, Any] | None:
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        return None
    return config.stash.get(metadata_key, None)


class _XdistBridge:
    """Hands the run directory to xdist workers (registered only when xdist is active)."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["kkp_run_dir"] = self.run_dir


# ----------------------------------------------------------------------------- collection


def _requirement_of(item: pytest.Item, catalogue: Catalogue) -> Requirement | None:
    marks = list(item.iter_markers("requirement"))
    if not marks:
        return None
    ids = {arg for mark in marks for arg in mark.args}
    if len(ids) != 1 or not all(isinstance(i, str) for i in ids):
        raise CatalogueError(f"{item.nodeid}: a check names exactly one requirement; found {sorted(map(str, ids))}")
    requirement_id = ids.pop()
    if requirement_id not in catalogue:
        raise CatalogueError(f"{item.nodeid}: unknown requirement id {requirement_id!r} (not in catalogue.yaml)")
    return catalogue[requirement_id]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Attach catalogue data to every check before -m/-k deselection runs."""
    catalogue = load_catalogue()
    problems: list[tuple[pytest.Item, str]] = []
    has_checks = False
    for item in items:
        try:
            requirement = _requirement_of(item, catalogue)
        except CatalogueError as exc:
            problems.append((item, str(exc)))
            continue
        if requirement is None:
            continue
        if item.get_closest_marker("xfail"):
            problems.append((item, f"{item.nodeid}: xfail on a check would hide a failure; use a waiver instead"))
            continue
        has_checks = True
        item.stash[REQUIREMENT_KEY] = requirement
        for marker in requirement.markers:
            item.add_marker(marker)
        item.extra_keyword_matches.update({requirement.id, requirement.section})
        item.user_properties.extend([
            ("requirement", requirement.id), ("section", requirement.section),
            ("severity", requirement.severity), ("level", requirement.level), ("docs", requirement.docs),
        ])
    if problems and _is_worker(config):
        # pytest.exit on an xdist worker reads as a crash; a failed collect report reaches the controller,
        # which then stops with exit code 2 like a serial run.
        for item, message in problems:
            report = pytest.CollectReport(item.nodeid, "failed", longrepr=message, result=[])
            config.hook.pytest_collectreport(report=report)
        bad = {id(item) for item, _ in problems}
        items[:] = [item for item in items if id(item) not in bad]
    elif problems:
        _exit_usage("invalid checks:\n  " + "\n  ".join(message for _, message in problems))
    if has_checks and config.stash.get(PROFILE_KEY, None) is None:
        _exit_usage("the shipped checks need a site profile: add --profile=NAME (one of profiles/*.yaml) "
                    "or --profile=path/to/site.yaml")


# ----------------------------------------------------------------------------- running


@pytest.fixture(scope="session")
def loaded_profile(request: pytest.FixtureRequest) -> LoadedProfile:
    """The validated profile of this run (with its source files and hash)."""
    loaded = request.config.stash.get(PROFILE_KEY, None)
    if loaded is None:
        pytest.fail("no --profile given", pytrace=False)
    return loaded


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    """Attach what a check observed to the HTML and Allure reports: ``evidence.attach(name, data)``."""
    return request.node.stash.setdefault(EVIDENCE_KEY, Evidence())


def _target_facets(item: pytest.Item) -> dict[str, set[Any]]:
    facets: dict[str, set[Any]] = {}
    callspec = getattr(item, "callspec", None)
    for value in (callspec.params.values() if callspec else ()):
        facets.update(getattr(value, "facets", None) or {})
    return facets


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    requirement = item.stash.get(REQUIREMENT_KEY, None)
    if requirement is None:
        return
    section = item.config.stash[RUN_KEY].collector.catalogue.section(requirement.section)
    allure.dynamic.epic(f"{section.id}: {section.title}")
    allure.dynamic.feature(f"{requirement.id} {requirement.title}")
    allure.dynamic.severity(_ALLURE_SEVERITY[requirement.severity])
    allure.dynamic.label("requirement", requirement.id)
    allure.dynamic.label("level", requirement.level)
    allure.dynamic.link(requirement.docs, name=f"{requirement.id} documentation")
    loaded = item.config.stash[PROFILE_KEY]
    if loaded is not None:
        facets = {**loaded.profile.facets(), **_target_facets(item)}
        reason = requirement.applicability(facets)
        if reason:
            pytest.skip(f"not applicable: {reason}")
    if "active" in requirement.markers and not item.config.getoption("active"):
        pytest.skip("active check: it creates objects; run with --active to allow it")
    if "benchmark" in requirement.markers and not benchmarks_selected(item):
        pytest.skip("benchmark: it loads disks or etcd for minutes; select it with -m performance (or -m benchmark) "
                    "or set performance.enabled: true in the profile")


def benchmarks_selected(item: pytest.Item) -> bool:
    """Whether the run asked for the measuring checks: the profile enables them, or ``-m`` selected this check
    *because of* its performance/benchmark marker (``-m "not dns"`` selects it too, but not by asking for it)."""
    loaded = item.config.stash.get(PROFILE_KEY, None)
    if loaded is not None and loaded.profile.performance.enabled:
        return True
    markexpr = item.config.option.markexpr
    if not markexpr:
        return False
    from _pytest.mark.expression import Expression

    others = {mark.name for mark in item.iter_markers()} - {"performance", "benchmark"}
    return not Expression.compile(markexpr).evaluate(lambda name, /, **_: name in others)


_ALLURE_SEVERITY = {
    "critical": allure.severity_level.CRITICAL,
    "major": allure.severity_level.NORMAL,
    "minor": allure.severity_level.MINOR,
}


def _format_finding(requirement: Requirement, exc: BaseException) -> str:
    """``[DNS-002] <what was expected / found>. Fix: ... Docs: ...`` (redacted)."""
    if isinstance(exc, CheckFailed):
        body = str(exc)
        fix = exc.fix or requirement.remediation
    else:
        body = str(exc).strip() or type(exc).__name__
        fix = requirement.remediation
    text = f"[{requirement.id}] {requirement.title}: {body}\nFix: {fix}\nDocs: {requirement.docs}"
    return redact.redact(text)


def _format_error(requirement: Requirement, exc: BaseException) -> str:
    kind = "could not check" if isinstance(exc, ProbeError) else f"check crashed ({type(exc).__name__})"
    detail = redact.redact(str(exc).strip() or type(exc).__name__)
    return (f"[{requirement.id}] {requirement.title}: {kind}: {detail}\n"
            "This is an error, not a finding: fix access or the probe, then run again.")


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Turn the phase's outcome into a verdict (innermost wrapper: every reporter sees the result)."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    _redact_report(report)
    requirement = item.stash.get(REQUIREMENT_KEY, None)
    if requirement is None:
        return
    if report.when == "setup":
        # allure-pytest sets the description from the docstring in its setup wrapper; this runs after it.
        allure.dynamic.description(f"{requirement.requirement}\n\nRemediation: {requirement.remediation}")
    verdict: Verdict | None = None
    message = ""
    excinfo = call.excinfo
    if report.skipped:
        verdict = Verdict.SKIP
        message = redact.redact(str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else "")
    elif report.failed and excinfo is not None:
        exc = excinfo.value
        if isinstance(exc, AssertionError) and report.when == "call":
            verdict = Verdict(requirement.failing_verdict)
            message = _format_finding(requirement, exc)
            if isinstance(exc, CheckFailed) or verdict is Verdict.WARN:
                report.longrepr = message
        else:
            verdict = Verdict.ERROR
            message = _format_error(requirement, exc)
            if isinstance(exc, ProbeError):
                report.longrepr = message
        if verdict is Verdict.WARN:
            # pytest has no "warn" outcome; xfail is the closest: not a failure, not a pass.
            report.outcome = "skipped"
            report.wasxfail = f"WARN {message}"
    elif report.failed:
        verdict = Verdict.ERROR
        message = redact.redact(str(report.longrepr))
    elif report.when == "call":
        verdict = Verdict.PASS
    if verdict is None:
        return
    if verdict in (Verdict.FAIL, Verdict.WARN):
        verdict, message = _apply_waiver(item, requirement, report, verdict, message)
    report.kkp = {  # type: ignore[attr-defined]
        "requirement": requirement.id,
        "section": requirement.section,
        "severity": requirement.severity,
        "level": requirement.level,
        "docs": requirement.docs,
        "verdict": str(verdict),
        "message": message,
    }
    if report.when == "call" or verdict is not Verdict.PASS:
        evidence = item.stash.get(EVIDENCE_KEY, None)
        if evidence is not None:  # travels with the report (also from xdist workers) into results.json
            report.kkp["evidence"], report.kkp["figures"] = evidence.to_dicts()  # type: ignore[attr-defined]
        if item.config.pluginmanager.hasplugin("html"):
            from kkp_readiness.report.html import add_extras

            add_extras(report, evidence.items if evidence else [], message if verdict is not Verdict.PASS else "")


def _apply_waiver(item: pytest.Item, requirement: Requirement, report: pytest.TestReport, verdict: Verdict,
                  message: str) -> tuple[Verdict, str]:
    """A finding with an active waiver becomes ``waived`` (never ``pass``); an expired one is named and waives
    nothing."""
    waivers = item.config.stash.get(WAIVERS_KEY, [])
    callspec = getattr(item, "callspec", None)
    waiver = find_waiver(waivers, requirement.id, callspec.id if callspec else "", run_date()) if waivers else None
    if waiver is None:
        return verdict, message
    if not waiver.active(run_date()):
        message = f"{message}\nExpired {waiver.describe()} (expired, no longer waives; renew it or fix the finding)"
        if verdict is Verdict.WARN:
            report.wasxfail = f"WARN {message}"
        else:
            report.longrepr = message
        return verdict, message
    message = f"[{requirement.id}] WAIVED ({waiver.describe()}); the finding stands: {message}"
    report.outcome = "skipped"  # neither a failure nor a pass, like a warning
    report.wasxfail = f"WAIVED {message}"
    return Verdict.WAIVED, message


def run_date() -> dt.date:
    """The day waivers are judged on (UTC, like the run's timestamps)."""
    return dt.datetime.now(dt.UTC).date()


def _redact_report(report: pytest.TestReport) -> None:
    """Scrub secrets from the traceback and captured output before any reporter reads them."""
    if isinstance(report.longrepr, tuple):
        report.longrepr = tuple(redact.redact(x) if isinstance(x, str) else x for x in report.longrepr)
    elif report.longrepr is not None and redact.registered():
        text = str(report.longrepr)
        clean = redact.redact(text)
        if clean != text:
            report.longrepr = clean
    report.sections = [(title, redact.redact(text)) for title, text in report.sections]


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    info = getattr(report, "kkp", None)
    if not info:
        return None
    verdict = info["verdict"]
    if verdict == "warn":
        return "warned", "W", "WARN"
    if verdict == "waived":
        return "waived", "V", "WAIVED"
    if verdict == "error" and report.when == "call":
        return "error", "E", "ERROR"
    return None


# ----------------------------------------------------------------------------- results


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    state = _CONTROLLER.state
    if state is None:
        return
    info = getattr(report, "kkp", None)
    if info:
        state.collector.record(report.nodeid, info, report.duration)
    elif report.failed:
        # A test without a requirement, or a crashed xdist worker: never let it pass silently.
        state.unmarked_failures += 1


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed and _CONTROLLER.state is not None:
        _CONTROLLER.state.collection_errors += 1


def pytest_keyboard_interrupt() -> None:
    if _CONTROLLER.state is not None:
        _CONTROLLER.state.interrupted = True


class _Controller:
    """The controller's run state, reachable from hooks that get no config."""

    state: RunState | None = None
    exit_code: int | None = None  # the verdict-based code, for callers that pytest's own UsageError overrides


_CONTROLLER = _Controller()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    if not _is_worker(session.config):
        _CONTROLLER.state = session.config.stash.get(RUN_KEY, None)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Compute the exit code from verdicts and write results.json (controller only)."""
    state = session.config.stash.get(RUN_KEY, None)
    if _is_worker(session.config) or state is None or state.info is None:
        return
    if state.interrupted:
        code = ExitCode.INTERRUPTED
    elif state.collection_errors or exitstatus in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERRUPTED):
        code = ExitCode.USAGE
    elif exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        code = ExitCode.NO_TESTS
    elif not state.collector.tests:
        code = int(exitstatus)  # no check ran: pytest's own status stands
    elif exitstatus == pytest.ExitCode.INTERNAL_ERROR:
        code = ExitCode.ERRORS
    else:
        code = state.collector.exit_code()
        if state.unmarked_failures and code in (ExitCode.OK, ExitCode.WARNINGS):
            code = ExitCode.ERRORS
    session.exitstatus = code
    _CONTROLLER.exit_code = code
    state.info.finished = now_iso()
    if state.run_dir is not None:
        waivers = [w.to_dict(run_date()) for w in session.config.stash.get(WAIVERS_KEY, [])]
        write_results(state.run_dir / "results.json", state.info.to_dict(), state.collector.requirements(), code,
                      waivers)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(RUN_KEY, None)
    if state is None or state.info is None:
        return
    all_rows = state.collector.requirements()
    rows = [r for r in all_rows if r["tests"]]
    if not rows:
        return
    terminalreporter.section("requirement verdicts")
    for row in rows:
        markup = {"pass": {"green": True}, "fail": {"red": True, "bold": True}, "warn": {"yellow": True},
                  "error": {"purple": True, "bold": True}, "waived": {"blue": True}}.get(row["verdict"], {})
        terminalreporter.write(f"{row['verdict'].upper():<8}", **markup)
        terminalreporter.write_line(f"{row['id']:<15}{row['title']}")
        for entry in row["messages"]:
            if entry["verdict"] in ("fail", "warn", "error", "waived"):
                first = entry["message"].splitlines()[0]
                terminalreporter.write_line(f"{'':8}{'':15}- {first}")
    counts: dict[str, int] = {}
    for row in all_rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    terminalreporter.write_line(
        f"catalogue: {len(all_rows)} requirements: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    )


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """After every writer is done: copy user outputs in, scrub secrets, build the Allure report."""
    state = config.stash.get(RUN_KEY, None)
    if _is_worker(config) or state is None or state.run_dir is None or state.info is None:
        return
    run_dir = state.run_dir
    for user_path, name in ((state.user_html, "report.html"), (state.user_junit, "junit.xml")):
        if user_path and Path(user_path).is_file():
            redact.scrub_tree(Path(user_path))
            shutil.copyfile(user_path, run_dir / name)
    redact.scrub_tree(run_dir)
    if state.user_allure and (run_dir / "allure-results").is_dir():
        shutil.copytree(run_dir / "allure-results", state.user_allure, dirs_exist_ok=True)
    if not config.getoption("no_allure_report"):
        generated = allure_cli.generate(run_dir / "allure-results", run_dir / "allure-report")
        if generated:
            redact.scrub_tree(run_dir / "allure-report")
    key = _signing_key(config)
    _write_handover(config, state, key)
    manifest.write_manifest(run_dir, state.info.id, key)  # last of all: it hashes every other artifact
    print(f"\nkkp-readiness: reports of run {state.info.id} in {run_dir}", file=sys.stderr)


def _signing_key(config: pytest.Config) -> Any:
    """The profile's manifest signing key, or None (unsigned).

    A key that cannot be used does not lose the run: the manifest is written unsigned and the problem said.
    """
    loaded = config.stash.get(PROFILE_KEY, None)
    spec = loaded.profile.handover if loaded is not None else None
    if loaded is None or spec is None or not spec.signing_key:
        return None
    path = Path(loaded.resolve_path(("handover", "signing_key"), spec.signing_key) or spec.signing_key)
    passphrase = spec.signing_key_passphrase.reveal() if spec.signing_key_passphrase else None
    try:
        return manifest.load_signing_key(path, passphrase)
    except manifest.ManifestError as exc:
        print(f"kkp-readiness: manifest.json left UNSIGNED: {exc}", file=sys.stderr)
        return None


def _write_handover(config: pytest.Config, state: RunState, key: Any) -> None:
    """The customer's document (handover.html), from the results.json just written; never loses the run."""
    from kkp_readiness.report.handover import HistoryView, write_handover

    assert state.run_dir is not None
    results_file = state.run_dir / "results.json"
    if not results_file.is_file():
        return
    from kkp_readiness.report.history import history_directories
    from kkp_readiness.report.history_view import history_view

    fingerprint = manifest.key_fingerprint(key.public_key()) if key is not None else None
    loaded = config.stash.get(PROFILE_KEY, None)
    try:
        history = history_view(state.run_dir, history_directories(loaded, state.run_dir.parent.resolve()),
                               runs=state.info.history_runs)
    except Exception as exc:  # the history is an aid: a broken earlier run must not cost this run its report
        history = HistoryView(note=f"no comparison with earlier runs: {type(exc).__name__}: {exc}")
    try:
        write_handover(state.run_dir, signing_fingerprint=fingerprint, history=history)
    except Exception as exc:  # never at the cost of the manifest, which is written next
        print(f"kkp-readiness: the handover report could not be written: {type(exc).__name__}: {exc}",
              file=sys.stderr)
