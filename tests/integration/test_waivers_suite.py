"""Waivers in a lab run: a waived failure is ``waived`` (exit 0), an expired waiver waives nothing and says so,
and a bad waiver file stops the run before any check."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_suite

WAIVER = """waivers:
  - requirement: DNS-004
    justification: the seed wildcard comes with the DNS change CHG-42
    owner: dns-team@example.com
    expires: {expires}
"""


def test_waived_expired_and_invalid_waivers(kkp_lab_factory, tmp_path: Path) -> None:
    lab = kkp_lab_factory(["dns-missing-seed-wildcard"])
    active, expired, invalid = (tmp_path / name for name in ("active.yaml", "expired.yaml", "invalid.yaml"))
    active.write_text(WAIVER.format(expires="2099-12-31"))
    expired.write_text(WAIVER.format(expires="2020-01-31"))
    invalid.write_text(WAIVER.format(expires="31.01.2099"))

    waived = run_suite(lab.workdir, tmp_path / "a", "-m", "dns", f"--waivers={active}")
    assert waived.returncode == 0, waived.output[-3000:]
    row = waived.requirement("DNS-004")
    assert row["verdict"] == "waived"
    assert waived.results is not None
    assert waived.results["summary"]["waived"] == 1
    assert waived.results["waivers"][0]["status"] == "active"
    for message in row["messages"]:
        assert message["verdict"] == "waived"
        assert "WAIVED (waiver by dns-team@example.com until 2099-12-31" in message["message"]
        assert "found NXDOMAIN" in message["message"]  # the finding stays visible

    stale = run_suite(lab.workdir, tmp_path / "b", "-m", "dns", f"--waivers={expired}")
    assert stale.returncode == 1, stale.output[-3000:]
    assert stale.requirement("DNS-004")["verdict"] == "fail"
    assert stale.results is not None
    assert stale.results["waivers"][0]["status"] == "expired"
    assert "until 2020-01-31" in stale.requirement("DNS-004")["messages"][0]["message"]
    assert "expired, no longer waives" in stale.requirement("DNS-004")["messages"][0]["message"]

    refused = run_suite(lab.workdir, tmp_path / "c", "-m", "dns", f"--waivers={invalid}")
    assert refused.returncode == 2
    assert "expires must be a date YYYY-MM-DD" in refused.output
    assert refused.results is None  # stopped before any check: no run directory
