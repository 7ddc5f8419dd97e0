"""Waiver files: validated before any check; which waiver applies to which check, and when it expires."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kkp_readiness.waivers import WaiverError, find_waiver, load_waivers

KNOWN = {"DNS-004", "DNS-005"}
VALID = """waivers:
  - requirement: DNS-004
    justification: the wildcard comes with CHG-42
    owner: dns-team@example.com
    expires: 2027-03-31
  - requirement: DNS-004
    target: "10.0.0.53"
    justification: the second server is replaced
    owner: ops@example.com
    expires: "2026-12-01"
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    return path


def test_a_valid_file_loads(tmp_path: Path) -> None:
    waivers = load_waivers(_file(tmp_path, VALID), KNOWN)
    assert [(w.requirement, w.target, w.expires) for w in waivers] == [
        ("DNS-004", None, dt.date(2027, 3, 31)), ("DNS-004", "10.0.0.53", dt.date(2026, 12, 1))]


@pytest.mark.parametrize(("entry", "words"), [
    ("requirement: DNS-999\n    justification: j\n    owner: o\n    expires: 2027-01-01", "not a catalogue id"),
    ("requirement: DNS-004\n    owner: o\n    expires: 2027-01-01", "justification is required"),
    ("requirement: DNS-004\n    justification: '  '\n    owner: o\n    expires: 2027-01-01",
     "justification is required"),
    ("requirement: DNS-004\n    justification: j\n    expires: 2027-01-01", "owner is required"),
    ("requirement: DNS-004\n    justification: j\n    owner: o\n    expires: 2027-13-01", "not a valid date"),
    ("requirement: DNS-004\n    justification: j\n    owner: o\n    expires: next year", "expires must be a date"),
    ("requirement: DNS-004\n    justification: j\n    owner: o", "expires must be a date"),
    ("requirement: DNS-004\n    justification: j\n    owner: o\n    expires: 2027-01-01\n    reason: x",
     "unknown field"),
])
def test_a_bad_waiver_is_named_with_its_place(tmp_path: Path, entry: str, words: str) -> None:
    with pytest.raises(WaiverError, match=words) as raised:
        load_waivers(_file(tmp_path, f"waivers:\n  - {entry}\n"), KNOWN)
    assert "waiver 1" in str(raised.value) or "2027-13-01" in entry


@pytest.mark.parametrize("text", ["- requirement: DNS-004\n", "waivers: {}\n", "waivers: [\n", "other: []\n"])
def test_a_malformed_file_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(WaiverError):
        load_waivers(_file(tmp_path, text), KNOWN)


def test_the_specific_active_waiver_wins_and_an_expired_one_is_still_found(tmp_path: Path) -> None:
    waivers = load_waivers(_file(tmp_path, VALID), KNOWN)
    before = dt.date(2026, 11, 30)
    assert find_waiver(waivers, "DNS-004", "10.0.0.53:53-seed", before).target == "10.0.0.53"
    assert find_waiver(waivers, "DNS-004", "10.0.0.54:53-seed", before).target is None
    after = dt.date(2026, 12, 2)  # the targeted one expired: the general one applies
    assert find_waiver(waivers, "DNS-004", "10.0.0.53:53-seed", after).target is None
    late = dt.date(2027, 4, 1)  # both expired: the one that would apply is returned, inactive
    found = find_waiver(waivers, "DNS-004", "10.0.0.53:53-seed", late)
    assert found is not None
    assert not found.active(late)
    assert find_waiver(waivers, "DNS-005", "x", before) is None
