"""Waivers: a finding the site accepts for a while, with a reason, an owner and an end date.

A waived failure is reported as ``waived``, never as ``pass``, in every report, with who waived it,
why and until when. An expired waiver waives nothing any more; the finding stands and its message
says the waiver expired. A waiver file with an unknown requirement id, without a justification or
owner, or with a malformed date stops the run before any check (exit code 2): a typo must never
silently waive the wrong thing or nothing at all.

The file (``--waivers FILE`` or the profile's ``waivers``)::

    waivers:
      - requirement: DNS-005
        target: grafana.seed.example.com   # optional: only checks whose target id contains this text
        justification: MLA is installed in phase 2 (change CHG-1234)
        owner: platform-team@example.com
        expires: 2027-03-31                  # inclusive, a date (YYYY-MM-DD)

>>> waiver = Waiver("DNS-005", None, "phase 2", "ops@example.com", dt.date(2027, 3, 31), "waivers.yaml#1")
>>> waiver.active(dt.date(2027, 3, 31)), waiver.active(dt.date(2027, 4, 1))
(True, False)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kkp_readiness.errors import KkpReadinessError

_FIELDS = {"requirement", "target", "justification", "owner", "expires"}


class WaiverError(KkpReadinessError):
    """The waiver file is unusable; the run stops before any check."""


@dataclass(frozen=True)
class Waiver:
    requirement: str
    target: str | None
    justification: str
    owner: str
    expires: dt.date
    source: str

    def active(self, today: dt.date) -> bool:
        """Whether the waiver still waives on ``today`` (its expiry day included)."""
        return today <= self.expires

    def matches(self, requirement_id: str, target_id: str) -> bool:
        return self.requirement == requirement_id and (self.target is None or self.target in target_id)

    def describe(self) -> str:
        scope = f" for targets containing {self.target!r}" if self.target else ""
        return f"waiver{scope} by {self.owner} until {self.expires.isoformat()}: {self.justification}"

    def to_dict(self, today: dt.date) -> dict[str, Any]:
        return {"requirement": self.requirement, "target": self.target, "justification": self.justification,
                "owner": self.owner, "expires": self.expires.isoformat(), "source": self.source,
                "status": "active" if self.active(today) else "expired"}


def _entry(raw: Any, where: str, known: Container[str]) -> Waiver:
    if not isinstance(raw, dict):
        raise WaiverError(f"{where}: a waiver is a mapping with {', '.join(sorted(_FIELDS))}")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise WaiverError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))} "
                          f"(allowed: {', '.join(sorted(_FIELDS))})")
    requirement = raw.get("requirement")
    if not isinstance(requirement, str) or requirement not in known:
        raise WaiverError(f"{where}: requirement {requirement!r} is not a catalogue id "
                          "(`kkp-readiness catalogue` lists them)")
    for name in ("justification", "owner"):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise WaiverError(f"{where} ({requirement}): {name} is required and must not be empty")
    expires = raw.get("expires")
    if isinstance(expires, str):
        try:
            expires = dt.date.fromisoformat(expires)
        except ValueError:
            expires = None
    if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
        raise WaiverError(f"{where} ({requirement}): expires must be a date YYYY-MM-DD; found {raw.get('expires')!r}")
    target = raw.get("target")
    if target is not None and (not isinstance(target, str) or not target.strip()):
        raise WaiverError(f"{where} ({requirement}): target, when given, is a non-empty text")
    return Waiver(requirement, target, raw["justification"].strip(), raw["owner"].strip(), expires, where)


def load_waivers(path: Path, known_ids: Container[str]) -> list[Waiver]:
    """Read and validate a waiver file; ``WaiverError`` naming the file, the entry and what is wrong."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise WaiverError(f"cannot read the waiver file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise WaiverError(f"{path}: not valid YAML: {exc}") from None
    except ValueError as exc:  # YAML reads 2027-13-01 as a timestamp and fails on it
        raise WaiverError(f"{path}: an expires value is not a valid date YYYY-MM-DD ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("waivers"), list) or set(document) != {"waivers"}:
        raise WaiverError(f"{path}: expected a document with one key, `waivers`, holding a list")
    return [_entry(raw, f"{path}, waiver {index}", known_ids) for index, raw in enumerate(document["waivers"], 1)]


def find_waiver(waivers: Sequence[Waiver], requirement_id: str, target_id: str, today: dt.date) -> Waiver | None:
    """The waiver for this check: an active one if any (one naming a target before one for every target),
    else the expired one that would have applied (so the report can say it expired)."""
    matching = [w for w in waivers if w.matches(requirement_id, target_id)]
    matching.sort(key=lambda w: (not w.active(today), w.target is None, -w.expires.toordinal()))
    return matching[0] if matching else None
