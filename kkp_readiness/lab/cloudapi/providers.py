"""The registry of lab cloud providers: which modules exist and how to build their APIs.

Each provider module (``openstack``, ``azure``, ``vsphere``) follows the contract of the package
docstring; this module is the only place that imports them by name, lazily, so the lab server and
the part need no change when a provider is added.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from kkp_readiness.errors import LabError

#: In start order; each names a module of this package.
PROVIDERS = ("openstack", "azure", "vsphere")


def module(provider: str) -> ModuleType:
    if provider not in PROVIDERS:
        raise LabError(f"unknown lab cloud provider {provider!r}; known: {', '.join(PROVIDERS)}")
    return importlib.import_module(f"{__package__}.{provider}")


def api_for(provider: str, world: dict[str, Any], base_url: str) -> Any:
    """The request handler of ``provider`` serving ``world`` at ``base_url``."""
    return module(provider).Api(world, base_url)
