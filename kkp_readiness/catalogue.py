"""The requirement catalogue: every checklist requirement as data.

Like kube-bench's checks, the catalogue is data (``catalogue.yaml``): id, the requirement in our
own words, severity, level, documentation link, remediation, the markers that select it and the
profiles it applies to. Tests name their requirement with ``@pytest.mark.requirement("DNS-002")``;
this module validates the data and answers which entries have a test.

>>> catalogue = load_catalogue()
>>> catalogue["DNS-001"].section
'DNS'
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from kkp_readiness.errors import CatalogueError

CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")
SHIPPED_CHECKS = Path(__file__).resolve().parent.parent / "tests_infra"
SEVERITIES = ("critical", "major", "minor")
LEVELS = ("required", "recommended", "optional")
CROSS_CUTTING_MARKERS = {
    "network": "probes endpoints over the network from where the suite runs",
    "cluster": "reads a Kubernetes cluster through a kubeconfig",
    "bastion": "runs commands over SSH on the bastion",
    "active": "creates objects or writes data (opt-in with --active, always cleaned up)",
    "offline": "pure validation of the profile, no network",
    "mla": "user-cluster monitoring, logging and alerting",
    "cloud": "talks to a cloud provider API",
    "benchmark": "measures disks or etcd under load for minutes; runs only when selected (-m performance, "
                 "-m benchmark) or with performance.enabled in the profile",
}
# The values each applies_to key may take: a typo ("Nodeport") would make an entry never apply.
APPLIES_TO_VALUES: dict[str, set[Any]] = {
    "cloud": {"none", "azure", "vsphere", "openstack"},
    "expose_strategy": {"NodePort", "Tunneling", "LoadBalancer"},
    "lb_mode": {"cloud", "metallb-l2", "metallb-bgp", "cilium-l2", "cilium-bgp", "kubelb", "other"},
    "edition": {"ce", "ee"},
    "offline": {True, False},
    "dns_wildcard": {True, False},
    "cert_source": {"provided", "cert-manager-acme", "private-ca"},
    "mla": {True, False},
    "logging_ui": {True, False},
    "auth": {"dex", "oidc"},
    "integration": {"workers-only", "additional-seed"},
}
APPLIES_TO_KEYS = set(APPLIES_TO_VALUES)
_ID = re.compile(r"^(?P<section>[A-Z]+)-(?P<number>\d{3})$")
_REQUIRED_KEYS = ("id", "section", "title", "requirement", "severity", "level", "docs", "remediation")


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    checklist: str
    markers: tuple[str, ...]


@dataclass(frozen=True)
class Requirement:
    """One verifiable requirement of the checklist."""

    id: str
    section: str
    title: str
    requirement: str
    severity: str
    level: str
    docs: str
    remediation: str
    markers: tuple[str, ...]
    applies_to: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def applicability(self, facets: Mapping[str, set[Any]]) -> str | None:
        """``None`` when the requirement applies to these facts, else the reason it does not."""
        for key, allowed in self.applies_to.items():
            present = facets.get(key, set())
            if not present & set(allowed):
                shown = ", ".join(sorted(map(str, present))) or "not set"
                wanted = ", ".join(map(str, allowed))
                return f"{self.id} applies only where {key} is {wanted}; this profile has {shown}"
        return None

    @property
    def failing_verdict(self) -> str:
        """A required requirement not met is a fail; a recommended or optional one is a warn."""
        return "fail" if self.level == "required" else "warn"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["markers"] = list(self.markers)
        data["applies_to"] = {k: list(v) for k, v in self.applies_to.items()}
        return data


class Catalogue:
    """Sections and requirements in checklist order."""

    def __init__(self, sections: list[Section], requirements: list[Requirement]) -> None:
        self.sections = sections
        self.requirements = requirements
        self._by_id = {r.id: r for r in requirements}

    def __getitem__(self, requirement_id: str) -> Requirement:
        return self._by_id[requirement_id]

    def __contains__(self, requirement_id: object) -> bool:
        return requirement_id in self._by_id

    def __iter__(self) -> Iterator[Requirement]:
        return iter(self.requirements)

    def __len__(self) -> int:
        return len(self.requirements)

    def section(self, section_id: str) -> Section:
        return next(s for s in self.sections if s.id == section_id)

    def markers(self) -> dict[str, str]:
        """Every marker the catalogue uses, with its one-line help (registered with pytest)."""
        found = {m: f"checks of section {s.id} ({s.title})" for s in self.sections for m in s.markers}
        for requirement in self.requirements:
            for marker in requirement.markers:
                found.setdefault(marker, CROSS_CUTTING_MARKERS.get(marker, marker))
        return found


def _fail(where: str, problem: str) -> CatalogueError:
    return CatalogueError(f"{CATALOGUE_FILE.name}: {where}: {problem}")


def _parse_sections(raw: Any) -> list[Section]:
    if not isinstance(raw, list) or not raw:
        raise _fail("sections", "must be a non-empty list")
    sections = []
    for index, item in enumerate(raw):
        try:
            sections.append(Section(item["id"], item["title"], item.get("checklist", ""), tuple(item["markers"])))
        except (KeyError, TypeError) as exc:
            raise _fail(f"sections[{index}]", f"missing {exc}") from None
    return sections


def _parse_requirement(index: int, item: Any, sections: dict[str, Section]) -> Requirement:
    where = f"requirements[{index}]" + (f" ({item.get('id')})" if isinstance(item, dict) else "")
    if not isinstance(item, dict):
        raise _fail(where, "must be a mapping")
    missing = [k for k in _REQUIRED_KEYS if not item.get(k)]
    if missing:
        raise _fail(where, f"missing {', '.join(missing)}")
    unknown = set(item) - {*_REQUIRED_KEYS, "markers", "applies_to"}
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)}")
    match = _ID.match(item["id"])
    if not match or match["section"] != item["section"]:
        raise _fail(where, f"id must be {item['section']}-NNN")
    section = sections.get(item["section"])
    if section is None:
        raise _fail(where, f"unknown section {item['section']!r}")
    if item["severity"] not in SEVERITIES or item["level"] not in LEVELS:
        raise _fail(where, f"severity must be one of {SEVERITIES}, level one of {LEVELS}")
    if not str(item["docs"]).startswith("https://"):
        raise _fail(where, "docs must be an https:// link")
    applies_to = item.get("applies_to") or {}
    if set(applies_to) - APPLIES_TO_KEYS:
        raise _fail(where, f"unknown applies_to keys {sorted(set(applies_to) - APPLIES_TO_KEYS)}")
    for key, values in applies_to.items():
        if not isinstance(values, list) or not values or set(values) - APPLIES_TO_VALUES[key]:
            allowed = sorted(map(str, APPLIES_TO_VALUES[key]))
            raise _fail(where, f"applies_to.{key} must be a non-empty list of {allowed}")
    extra = item.get("markers") or []
    if not isinstance(extra, list) or not all(isinstance(m, str) for m in extra):
        raise _fail(where, "markers must be a list of names")
    extra = tuple(extra)
    markers = tuple(dict.fromkeys((*section.markers, *extra)))
    return Requirement(
        id=item["id"],
        section=item["section"],
        title=item["title"].strip(),
        requirement=" ".join(item["requirement"].split()),
        severity=item["severity"],
        level=item["level"],
        docs=item["docs"],
        remediation=" ".join(item["remediation"].split()),
        markers=markers,
        applies_to={k: tuple(v) for k, v in applies_to.items()},
    )


def parse_catalogue(data: Any) -> Catalogue:
    """Validate catalogue data; raises :class:`CatalogueError` naming the entry and the problem."""
    if not isinstance(data, dict):
        raise _fail("top level", "must be a mapping with sections and requirements")
    sections = _parse_sections(data.get("sections"))
    by_id = {s.id: s for s in sections}
    raw_requirements = data.get("requirements")
    if not isinstance(raw_requirements, list) or not raw_requirements:
        raise _fail("requirements", "must be a non-empty list")
    requirements = [_parse_requirement(i, item, by_id) for i, item in enumerate(raw_requirements)]
    duplicates = {rid for rid, count in Counter(r.id for r in requirements).items() if count > 1}
    if duplicates:
        raise _fail("requirements", f"duplicate ids {sorted(duplicates)}")
    order = {s.id: i for i, s in enumerate(sections)}
    requirements.sort(key=lambda r: (order[r.section], r.id))
    return Catalogue(sections, requirements)


@cache
def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    """The shipped catalogue (cached: it is read once per process)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot load {path}: {exc}") from None
    return parse_catalogue(data)


def requirement_ids_in_source(source: str) -> Iterator[str]:
    """Ids named by ``requirement("...")`` marks in Python source (no import needed)."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name != "requirement":
            continue
        for arg in node.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                yield arg.value


def implemented_ids(checks_dir: Path = SHIPPED_CHECKS) -> dict[str, list[str]]:
    """Requirement id -> the check modules that carry it (static, so it works without a profile)."""
    found: dict[str, list[str]] = {}
    for module in sorted(checks_dir.rglob("test_*.py")):
        for requirement_id in requirement_ids_in_source(module.read_text(encoding="utf-8")):
            found.setdefault(requirement_id, []).append(module.name)
    return found


def catalogue_json(catalogue: Catalogue, implemented: Iterable[str]) -> list[dict[str, Any]]:
    """The catalogue as ``catalogue --json`` prints it."""
    done = set(implemented)
    return [{**r.to_dict(), "implemented": r.id in done} for r in catalogue]
