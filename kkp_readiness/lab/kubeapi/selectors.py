"""Label and field selectors, with the syntax and the errors of the Kubernetes API.

Label selectors: comma-separated requirements ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a,b)``, ``k`` and ``!k``; ``!=`` and ``notin`` also match objects without the label.
Field selectors: ``field=value``, ``field==value``, ``field!=value`` over the fields a real API
server supports for the kind (``metadata.name`` and ``metadata.namespace`` everywhere, for pods
also ``spec.nodeName``, ``status.phase``, ...); any other field is a 400, as on a real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """An unparsable selector or an unsupported field: answered with 400 BadRequest."""


_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^()]*)\)$")
_EQUALITY = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*({_VALUE})$")


def _split(selector: str) -> list[str]:
    """Split at commas outside parentheses (``a in (x,y),b`` is two requirements)."""
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [term.strip() for term in terms if term.strip()]


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values  # "!=", "notin"


def parse_label_selector(selector: str) -> list[Requirement]:
    requirements = []
    for term in _split(selector):
        if match := _SET.match(term):
            values = tuple(v.strip() for v in match.group(3).split(",") if v.strip())
            if not values:
                raise SelectorError(
                    f"unable to parse requirement: {term!r}: for 'in', 'notin' operators, values set can't be empty"
                )
            requirements.append(Requirement(match.group(1), match.group(2), values))
        elif match := _EQUALITY.match(term):
            operator = "!=" if match.group(2) == "!=" else "="
            requirements.append(Requirement(match.group(1), operator, (match.group(3),)))
        elif match := _EXISTS.match(term):
            requirements.append(Requirement(match.group(2), "!exists" if match.group(1) else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: found {term!r}, expected: a valid label selector")
    return requirements


def label_matcher(selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate on objects for ``labelSelector``; empty or absent matches everything."""
    requirements = parse_label_selector(selector or "")

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r.matches(labels) for r in requirements)

    return matches


#: Fields every kind can be selected on.
COMMON_FIELDS = ("metadata.name", "metadata.namespace")
#: Further fields, per kind, that the real API server indexes for field selectors.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Node": ("spec.unschedulable",),
    "Namespace": ("status.phase",),
    "Secret": ("type",),
    "Event": ("involvedObject.kind", "involvedObject.name", "involvedObject.namespace", "reason", "type"),
    "Job": ("status.successful",),
}

_FIELD_TERM = re.compile(r"^([A-Za-z.]+)\s*(==|=|!=)\s*(.*)$")


def _field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_matcher(selector: str | None, kind: str) -> Callable[[dict[str, Any]], bool]:
    """A predicate on objects for ``fieldSelector``; unsupported fields raise ``SelectorError``."""
    terms = []
    for term in _split(selector or ""):
        match = _FIELD_TERM.match(term)
        if not match:
            raise SelectorError(f"invalid selector: {term!r}; can't understand {term!r}")
        path, operator, value = match.groups()
        if path not in COMMON_FIELDS + KIND_FIELDS.get(kind, ()):
            raise SelectorError(f"field label not supported: {path}")
        terms.append((path, operator != "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) == equal for path, equal, value in terms)

    return matches
