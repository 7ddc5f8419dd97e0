"""Import a provider SDK, or say which extra installs it.

>>> require("json", "openstack").__name__
'json'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from kkp_readiness.cloud.errors import MissingExtra

#: What each extra installs (pyproject.toml's optional dependencies), for the message.
EXTRAS = {
    "openstack": "openstacksdk",
    "azure": "azure-identity, azure-mgmt-resource, azure-mgmt-network, azure-mgmt-authorization",
    "vsphere": "pyvmomi",
}


def require(module: str, extra: str) -> ModuleType:
    """``module`` imported, or ``MissingExtra`` naming the extra (``pip install 'kkp-readiness[extra]'``)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"the {extra} checks need the Python package(s) {EXTRAS.get(extra, module)}, which are not installed "
            f"({exc}); install the extra: pip install 'kkp-readiness[{extra}]' (from a checkout: "
            f"pip install -e '.[{extra}]')"
        ) from None
