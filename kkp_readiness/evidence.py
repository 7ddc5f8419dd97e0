"""Evidence: what a check observed, attached to the HTML and Allure reports.

A check calls ``evidence.attach("dns answer", answer.to_dict())``; the data is redacted at once,
written to Allure as an attachment of the running test and kept for the plugin, which adds it
to the pytest-html row when the test's report is made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import allure

from kkp_readiness.redact import redact, redact_obj


@dataclass
class Evidence:
    """The evidence of one test.

    >>> evidence = Evidence()
    >>> evidence.attach("answer", {"name": "kkp.example.com", "addresses": ["192.0.2.10"]})
    >>> evidence.items[0][0]
    'answer'
    """

    items: list[tuple[str, str, str]] = field(default_factory=list)  # (name, kind, content)

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
