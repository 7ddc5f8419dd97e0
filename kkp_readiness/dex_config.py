"""What the checks may know of Dex's configuration: its issuer and how users log in, nothing secret.

Dex keeps its whole configuration in one document (``config.yaml``): connectors with their client
secrets and bind passwords, static users with password hashes, static clients with their secrets.
KKP 2.28 deploys the upstream ``dex`` chart into namespace ``dex``, which renders the document into
the Secret ``dex``; KKP up to 2.27 deployed its own ``oauth`` chart into namespace ``oauth``, which
put it into the ConfigMap ``dex``. The checks need only the issuer, the connectors' types and ids,
and whether static passwords are on, so :func:`summarize` keeps exactly that: the summary is what
evidence, reports and offline snapshots see, and the document itself is dropped where it was read.

>>> summarize("issuer: https://kkp.example.com/dex\\nconnectors:\\n- {type: ldap, id: ad, name: AD, config: {}}")
{'issuer': 'https://kkp.example.com/dex', 'connectors': [{'type': 'ldap', 'id': 'ad', 'name': 'AD'}], \
'enablePasswordDB': False, 'staticPasswords': 0}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from kkp_readiness.errors import KubeProbeError

#: The document's name in snapshots (``kkp-readiness collect``) and in ``reader.document(...)``.
DOCUMENT = "dex-configuration"


@dataclass(frozen=True)
class DexLocation:
    """Where one KKP release line keeps the Dex deployment and its configuration."""

    namespace: str
    deployment: str
    kind: Literal["Secret", "ConfigMap"]
    name: str
    key: str = "config.yaml"

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name} (key {self.key})"


#: Newest first: the upstream chart of KKP 2.28+, then the oauth chart of KKP 2.27 and before.
LOCATIONS = (
    DexLocation("dex", "dex", "Secret", "dex"),
    DexLocation("oauth", "dex", "ConfigMap", "dex"),
)


#: ``(kind, namespace, name, key) -> text or None``: one key of a Secret or ConfigMap.
KeyReader = Callable[[str, str, str, str], "str | None"]


def summarize(text: str) -> dict[str, Any]:
    """The secret-free facts of a Dex ``config.yaml``; raises ``ValueError`` when it is not a mapping."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise ValueError("not a YAML mapping")
    connectors = [
        {key: str(c.get(key, "")) for key in ("type", "id", "name")}
        for c in config.get("connectors") or [] if isinstance(c, dict)
    ]
    return {
        "issuer": str(config.get("issuer") or ""),
        "connectors": connectors,
        "enablePasswordDB": config.get("enablePasswordDB") is True,
        "staticPasswords": len(config.get("staticPasswords") or []),
    }


def read(read_key: KeyReader) -> dict[str, Any]:
    """The summary of the first Dex configuration found (``location`` says where), or
    ``{"location": None}`` when neither KKP chart's configuration exists."""
    for location in LOCATIONS:
        text = read_key(location.kind, location.namespace, location.name, location.key)
        if text is None:
            continue
        try:
            summary = summarize(text)
        except ValueError as exc:
            raise KubeProbeError(f"the Dex configuration in {location.describe()} cannot be read: {exc}") from None
        return {"location": location.describe(), "namespace": location.namespace, **summary}
    return {"location": None}
