"""Named faults the lab can be started with, and which requirements each one must break.

Every fault is one realistic mistake of a site (a missing wildcard record, a certificate without
one name, a server that sends no intermediate, ...). The integration tests start the lab with
each fault and assert that exactly the requirements in ``breaks`` fail, which proves that the
checks notice the mistake and blame the right requirement.

A fault edits the plan of its part (``DnsPlan`` or ``TlsPlan``) before the part writes its
configuration. ``touches`` names what it edits; two faults that edit the same thing cannot be
combined (the second would silently undo the first), everything else can.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kkp_readiness.errors import LabError
from kkp_readiness.lab.dns_part import DnsPlan
from kkp_readiness.lab.ingress_part import LeafSpec, ServerBlock, TlsPlan
from kkp_readiness.lab.topology import (
    BASE_DOMAIN,
    INGRESS_ADDRESS,
    INGRESS_NAMES,
    SEED_DOMAIN,
    WRONG_ADDRESS,
)


def _no_change(plan: Any) -> None:
    """Placeholder for faults built without an ``apply`` (never in ``FAULTS``)."""


@dataclass(frozen=True)
class Fault:
    """A named, documented way to break one part of the lab."""

    name: str
    #: The part whose plan the fault edits: "dns" or "ingress".
    part: str
    #: One sentence, shown by ``lab up --help`` and in the docs.
    description: str
    #: Requirement ids that must FAIL when the lab runs with this fault.
    breaks: tuple[str, ...] = ()
    #: Requirement ids that must WARN (not fail) with this fault.
    warns: tuple[str, ...] = ()
    #: What the fault changes; faults touching the same thing cannot be combined.
    touches: tuple[str, ...] = ()
    apply: Callable[[Any], None] = field(default=_no_change, repr=False, compare=False)


# --- DNS ------------------------------------------------------------------------------------------


def _missing_wildcard(plan: DnsPlan) -> None:
    # Explicit records replace the wildcard for the names a site would typically have created
    # by hand; setdefault keeps an explicit record another fault set (dns-servers-disagree).
    for data in plan.servers():
        data.wildcards[BASE_DOMAIN] = None
        for name in (BASE_DOMAIN, *INGRESS_NAMES):
            data.hosts.setdefault(name, INGRESS_ADDRESS)


def _missing_seed_wildcard(plan: DnsPlan) -> None:
    for data in plan.servers():
        data.wildcards[SEED_DOMAIN] = None


def _wrong_address(plan: DnsPlan) -> None:
    for data in plan.servers():
        data.wildcards[SEED_DOMAIN] = WRONG_ADDRESS


def _servers_disagree(plan: DnsPlan) -> None:
    plan.secondary.hosts[f"prometheus.{BASE_DOMAIN}"] = WRONG_ADDRESS


# --- certificates ---------------------------------------------------------------------------------


def _missing_name(plan: TlsPlan) -> None:
    plan.default.leaf.names = (BASE_DOMAIN, f"grafana.{BASE_DOMAIN}", f"prometheus.{BASE_DOMAIN}")


def _expired(plan: TlsPlan) -> None:
    plan.default.leaf.valid_from = dt.timedelta(days=-400)
    plan.default.leaf.valid_until = dt.timedelta(days=-10)


def _expiring_soon(plan: TlsPlan) -> None:
    plan.default.leaf.valid_until = dt.timedelta(days=10)


def _untrusted_ca(plan: TlsPlan) -> None:
    plan.default.leaf.issuer = "unrelated"


def _incomplete_chain(plan: TlsPlan) -> None:
    plan.default.full_chain = False


def _split(plan: TlsPlan) -> None:
    name = f"grafana.{BASE_DOMAIN}"
    plan.extra.append(ServerBlock(server_name=name, leaf=LeafSpec(names=(name,))))


def _weak_key(plan: TlsPlan) -> None:
    plan.default.leaf.key_size = 1024
    plan.allow_weak_keys = True


_ALL = (
    Fault(
        "dns-missing-wildcard",
        "dns",
        "Both DNS servers lack the *.kkp.lab wildcard; only kkp.lab and the grafana, prometheus and "
        "alertmanager names have explicit records.",
        breaks=("DNS-003",),
        touches=("dns:*.kkp.lab",),
        apply=_missing_wildcard,
    ),
    Fault(
        "dns-missing-seed-wildcard",
        "dns",
        "Both DNS servers lack the *.seed.kkp.lab wildcard, so seed names other than the explicit "
        "MLA ones are NXDOMAIN.",
        breaks=("DNS-004",),
        touches=("dns:*.seed.kkp.lab",),
        apply=_missing_seed_wildcard,
    ),
    Fault(
        "dns-wrong-address",
        "dns",
        "The *.seed.kkp.lab wildcard points at 127.0.0.99 instead of the nodeport proxy 127.0.0.11.",
        breaks=("DNS-004",),
        touches=("dns:*.seed.kkp.lab",),
        apply=_wrong_address,
    ),
    Fault(
        "dns-servers-disagree",
        "dns",
        "The secondary DNS server answers 127.0.0.99 for prometheus.kkp.lab while the primary is healthy.",
        breaks=("DNS-002", "DNS-006"),
        touches=("dns:secondary:prometheus.kkp.lab",),
        apply=_servers_disagree,
    ),
    Fault(
        "cert-missing-name",
        "ingress",
        "The ingress certificate names only kkp.lab, grafana.kkp.lab and prometheus.kkp.lab "
        "(no wildcard, no alertmanager).",
        breaks=("CERT-002",),
        touches=("cert:names",),
        apply=_missing_name,
    ),
    Fault(
        "cert-expired",
        "ingress",
        "The ingress certificate expired 10 days ago.",
        breaks=("CERT-004",),
        touches=("cert:validity",),
        apply=_expired,
    ),
    Fault(
        "cert-expiring-soon",
        "ingress",
        "The ingress certificate expires in 10 days (a warning for CERT-005, not a failure).",
        breaks=(),
        warns=("CERT-005",),
        touches=("cert:validity",),
        apply=_expiring_soon,
    ),
    Fault(
        "cert-untrusted-ca",
        "ingress",
        "The ingress certificate and its intermediate come from an unrelated root CA that is not "
        "in the CA bundle.",
        breaks=("CERT-001",),
        touches=("cert:issuer",),
        apply=_untrusted_ca,
    ),
    Fault(
        "cert-incomplete-chain",
        "ingress",
        "The ingress sends its certificate without the intermediate CA.",
        breaks=("CERT-006",),
        touches=("cert:chain",),
        apply=_incomplete_chain,
    ),
    Fault(
        "cert-split",
        "ingress",
        "grafana.kkp.lab gets its own valid certificate (SAN grafana.kkp.lab only) while every other "
        "name gets the shared one.",
        breaks=("CERT-003",),
        touches=("cert:grafana-server",),
        apply=_split,
    ),
    Fault(
        "cert-weak-key",
        "ingress",
        "The ingress certificate has a 1024-bit RSA key.",
        breaks=("CERT-007",),
        touches=("cert:key",),
        apply=_weak_key,
    ),
)

#: Every fault by name, in the order they are documented and applied.
FAULTS: dict[str, Fault] = {fault.name: fault for fault in _ALL}


def resolve_faults(names: Iterable[str]) -> tuple[Fault, ...]:
    """Turn fault names into ``Fault`` objects, in ``FAULTS`` order, refusing bad input.

    Raises ``LabError`` for an unknown name (listing the known ones) and for two faults that
    change the same record or certificate property. Duplicates are ignored.
    """
    requested = list(dict.fromkeys(names))
    unknown = [name for name in requested if name not in FAULTS]
    if unknown:
        raise LabError(f"unknown lab fault(s) {', '.join(unknown)}; known faults: {', '.join(FAULTS)}")
    chosen = [fault for fault in FAULTS.values() if fault.name in requested]
    owner: dict[str, str] = {}
    for fault in chosen:
        for thing in fault.touches:
            if thing in owner:
                raise LabError(
                    f"lab faults {owner[thing]} and {fault.name} cannot be combined: both change {thing}"
                )
            owner[thing] = fault.name
    return tuple(chosen)
