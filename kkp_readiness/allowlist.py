"""KKP's proxy allowlist (``data/proxy_allowlist.yaml``) and which of its hosts a profile needs.

Why data: the list changes with KKP releases and sites extend it; the PROXY checks, the lab (which
stands in for every listed host) and the documentation all read the same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from urllib.parse import urlsplit

import yaml

#: Allowlist group -> the requirement that checks it.
GROUPS: dict[str, str] = {"registries": "PROXY-001", "binaries": "PROXY-002", "os_packages": "PROXY-003",
                          "acme": "PROXY-004"}


@dataclass(frozen=True)
class AllowedTarget:
    """One allowlisted URL, why KKP needs it, and the page that says so."""

    url: str
    why: str
    docs: str
    os: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()


@cache
def load_allowlist() -> dict[str, tuple[AllowedTarget, ...]]:
    """Every group of the shipped allowlist, validated (a malformed entry is a packaging bug)."""
    text = resources.files("kkp_readiness").joinpath("data/proxy_allowlist.yaml").read_text()
    data = yaml.safe_load(text)
    groups: dict[str, tuple[AllowedTarget, ...]] = {}
    for group in GROUPS:
        entries = []
        for item in data[group]:
            if urlsplit(item["url"]).scheme not in ("http", "https"):
                raise ValueError(f"proxy allowlist {group}: {item['url']!r} is not an http(s) URL")
            systems = item.get("os") or ()
            entries.append(AllowedTarget(item["url"], item["why"], item["docs"],
                                         (systems,) if isinstance(systems, str) else tuple(systems)))
        groups[group] = tuple(entries)
    return groups


def targets_for(group: str, operating_systems: tuple[str, ...] | list[str] = ()) -> tuple[AllowedTarget, ...]:
    """The group's targets that apply: OS-specific ones only for the profile's operating systems."""
    return tuple(t for t in load_allowlist()[group] if not t.os or set(t.os) & set(operating_systems))


def all_hosts() -> tuple[str, ...]:
    """Every host name of the allowlist (the lab's stand-ins answer for each)."""
    return tuple(sorted({t.host for targets in load_allowlist().values() for t in targets}))
