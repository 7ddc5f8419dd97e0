"""Evidence: what a check observed, attached to the HTML and Allure reports.

A check calls ``evidence.attach("dns answer", answer.to_dict())``; the data is redacted at once,
written to Allure as an attachment of the running test and kept for the plugin, which adds it
to the pytest-html row when the test's report is made.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import allure

from kkp_readiness.redact import redact, redact_obj


@dataclass(frozen=True)
class Figure:
    """A measured number a later run can be compared with (``kkp-readiness diff``, the handover trend).

    ``better`` says which direction is an improvement, so a diff can say "worse" rather than "changed".
    """

    name: str
    value: float
    unit: str
    better: str = "lower"  # or "higher"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit, "better": self.better}


@dataclass
class Evidence:
    """The evidence of one test.

    >>> evidence = Evidence()
    >>> evidence.attach("answer", {"name": "kkp.example.com", "addresses": ["192.0.2.10"]})
    >>> evidence.items[0][0]
    'answer'
    """

    items: list[tuple[str, str, str]] = field(default_factory=list)  # (name, kind, content)
    figures: list[Figure] = field(default_factory=list)

    def attach(self, name: str, data: Any) -> None:
        """Attach a dict/list (as JSON) or text."""
        if isinstance(data, str):
            kind, content = "text", redact(data)
            allure.attach(content, name=name, attachment_type=allure.attachment_type.TEXT)
        else:
            kind = "json"
            content = json.dumps(redact_obj(data), indent=2, default=str, sort_keys=True)
            allure.attach(content, name=name, attachment_type=allure.attachment_type.JSON)
        self.items.append((name, kind, content))

    def attach_svg(self, name: str, svg: str) -> None:
        """Attach a chart (inline SVG markup, see ``report.chart``): an image in both reports."""
        allure.attach(svg, name=name, attachment_type=allure.attachment_type.SVG)
        self.items.append((name, "svg", svg))

    def figure(self, name: str, value: float, unit: str, better: str = "lower") -> None:
        """Record a measured figure (also kept as evidence text), e.g. ``figure("fdatasync p99", 3.2, "ms")``."""
        if better not in ("lower", "higher"):
            raise ValueError(f"better must be 'lower' or 'higher', not {better!r}")
        if not math.isfinite(value):  # NaN and infinity are not JSON, and compare with nothing
            raise ValueError(f"the figure {name!r} is not a finite number: {value!r}")
        self.figures.append(Figure(name, float(f"{value:.6g}"), unit, better))  # 6 significant digits

    def to_dicts(self) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
        """The evidence and figures as JSON-able lists (``results.json`` and the handover report)."""
        return ([{"name": name, "kind": kind, "content": content} for name, kind, content in self.items],
                [figure.to_dict() for figure in self.figures])
