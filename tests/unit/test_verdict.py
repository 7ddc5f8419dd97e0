"""Verdict folding and exit codes."""

from __future__ import annotations

import pytest

from kkp_readiness.verdict import CheckFailed, ExitCode, Verdict, exit_code, expect, worst

V = Verdict


@pytest.mark.parametrize(("verdicts", "expected"), [
    ([V.PASS, V.PASS], V.PASS),
    ([V.PASS, V.SKIP], V.PASS),
    ([V.SKIP, V.SKIP], V.SKIP),
    ([V.PASS, V.WARN], V.WARN),
    ([V.WARN, V.ERROR], V.ERROR),
    ([V.ERROR, V.FAIL, V.PASS], V.FAIL),
    ([V.WAIVED, V.PASS], V.WAIVED),
    ([V.WAIVED, V.FAIL], V.FAIL),
    ([], V.SKIP),
])
def test_worst_target_decides(verdicts, expected) -> None:
    assert worst(verdicts) is expected


@pytest.mark.parametrize(("verdicts", "code"), [
    ([V.PASS, V.SKIP, V.WAIVED], ExitCode.OK),
    ([V.PASS, V.FAIL, V.ERROR, V.WARN], ExitCode.FAILED),
    ([V.PASS, V.ERROR, V.WARN], ExitCode.ERRORS),
    ([V.PASS, V.WARN], ExitCode.WARNINGS),
    ([], ExitCode.OK),
])
def test_exit_code(verdicts, code) -> None:
    assert exit_code(verdicts) == code


def test_exit_codes_are_the_documented_ones() -> None:
    assert (ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE, ExitCode.ERRORS, ExitCode.WARNINGS) == (0, 1, 2, 3, 4)


def test_expect_states_expected_and_found() -> None:
    with pytest.raises(CheckFailed, match=r"kkp.example.com: expected A 192.0.2.10; found NXDOMAIN"):
        expect(False, "kkp.example.com", expected="A 192.0.2.10", found="NXDOMAIN")
    expect(True, "kkp.example.com", expected="x", found="x")
