"""Verdicts, how they combine, and the process exit code they lead to.

Outcomes are ordered as in troubleshoot's analyzers, worst first: a requirement with one failing
target fails even if its other targets pass. ``error`` (the probe could not look) is never
folded into ``fail`` (looked, and it is wrong): they lead to different exit codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"
    WAIVED = "waived"
    ERROR = "error"
    NOT_IMPLEMENTED = "not-implemented"
    NOT_RUN = "not-run"

    def __str__(self) -> str:
        return self.value


# Higher is worse; used to fold the verdicts of a requirement's targets into one.
_RANK = {
    Verdict.NOT_RUN: 0,
    Verdict.NOT_IMPLEMENTED: 0,
    Verdict.SKIP: 1,
    Verdict.PASS: 2,
    Verdict.WAIVED: 3,
    Verdict.WARN: 4,
    Verdict.ERROR: 5,
    Verdict.FAIL: 6,
}


class ExitCode:
    """Process exit codes, as users of troubleshoot and InSpec expect them."""

    OK = 0  # every selected requirement passed, or is waived / not applicable
    FAILED = 1  # at least one requirement failed
    USAGE = 2  # bad command line, profile or catalogue; nothing was checked
    ERRORS = 3  # no failure, but at least one probe could not run
    WARNINGS = 4  # only recommendations are not met
    NO_TESTS = 5  # nothing was selected (pytest's own code, kept)
    INTERRUPTED = 130  # Ctrl-C


def rank(verdict: Verdict) -> int:
    """How bad a verdict is (higher is worse): the order ``worst`` folds by."""
    return _RANK[verdict]


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The verdict of a requirement from the verdicts of its targets (skip when there are none)."""
    return max(verdicts, key=_RANK.__getitem__, default=Verdict.SKIP)


def exit_code(verdicts: Iterable[Verdict]) -> int:
    """Exit code of a run from the verdicts of the requirements it selected."""
    present = set(verdicts)
    if Verdict.FAIL in present:
        return ExitCode.FAILED
    if Verdict.ERROR in present:
        return ExitCode.ERRORS
    if Verdict.WARN in present:
        return ExitCode.WARNINGS
    return ExitCode.OK


class CheckFailed(AssertionError):
    """A check looked and found the site not as required.

    The plugin prefixes the requirement id and appends the catalogue's remediation and
    documentation link, so a check only states what it expected and what it found.

    >>> raise CheckFailed("grafana.example.com", expected="A 192.0.2.10", found="NXDOMAIN")
    Traceback (most recent call last):
    CheckFailed: grafana.example.com: expected A 192.0.2.10; found NXDOMAIN
    """

    def __init__(self, subject: str, *, expected: str, found: str, fix: str | None = None) -> None:
        self.subject = subject
        self.expected = expected
        self.found = found
        self.fix = fix
        super().__init__(f"{subject}: expected {expected}; found {found}")


def expect(ok: bool, subject: str, *, expected: str, found: str, fix: str | None = None) -> None:
    """Raise :class:`CheckFailed` unless ``ok``: the one way checks state a finding.

    >>> expect(True, "kkp.example.com", expected="A 192.0.2.10", found="A 192.0.2.10")
    """
    if not ok:
        raise CheckFailed(subject, expected=expected, found=found, fix=fix)
