"""A pytest plugin (``-p tests.integration.rbac_recorder``) that records which check needs which RBAC grant.

Why: the API server's request log (the lab's kubeapi) proves *what* a run requested, but not *which check*
asked, and ``ClusterReader`` caches each list for the whole run, so only the first check to list nodes would
ever be seen. This plugin turns the cache off (every check then issues its own requests, the verdicts do not
change) and records, per check, each ``(verb, resource, API group)`` that ``ClusterReader._call`` is asked
for: the same triple the suite names in its own "forbidden: the check needs RBAC verb ..." errors.
tests/integration/test_deploy_rbac.py builds the "needed by" column of deploy/README.md's RBAC table from it.

Output: a JSON object ``{"<group>|<resource>|<verb>": [requirement ids]}`` written at the end of the session
to the file named by ``$KKP_RBAC_RECORD``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from kkp_readiness.probes import kube

#: The requirement of the check being run (its nodeid outside a requirement), for ``_call`` to read.
_current: list[str] = ["(session)"]
_seen: dict[str, set[str]] = {}


class _NoCache(dict):
    """A cache that never hits: ``key in cache`` is always false, so every read goes to the API server."""

    def __contains__(self, key: object) -> bool:
        return False


_original_init = kube.ClusterReader.__init__
_original_call = kube.ClusterReader._call


def _init(self: kube.ClusterReader, access: kube.ClusterAccess) -> None:
    _original_init(self, access)
    self._cache = _NoCache()


def _call(self: kube.ClusterReader, verb: str, resource: str, group: str, function: Callable[..., Any],
          **kwargs: Any) -> Any:
    _seen.setdefault(f"{group}|{resource}|{verb}", set()).add(_current[0])
    return _original_call(self, verb, resource, group, function, **kwargs)


kube.ClusterReader.__init__ = _init  # type: ignore[method-assign]
kube.ClusterReader._call = _call  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    marker = item.get_closest_marker("requirement")
    _current[0] = str(marker.args[0]) if marker and marker.args else item.nodeid
    try:
        return (yield)
    finally:
        _current[0] = "(session)"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("KKP_RBAC_RECORD")
    if target:
        Path(target).write_text(json.dumps({key: sorted(ids) for key, ids in sorted(_seen.items())}, indent=1))
