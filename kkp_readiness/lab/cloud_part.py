"""The ``cloud`` part: HTTPS stand-ins for the OpenStack, Azure and vCenter APIs (``lab.cloudapi``).

One daemon (``python -m kkp_readiness.lab.cloudapi``) serves every provider, each on its own loopback
address and a free port, with a certificate from the lab intermediate whose SANs are the provider's
names and address. Faults edit ``CloudPlan`` (a provider's ``World``: a missing zone, a subnet too
small, a user without a privilege, ...) before the worlds are written.

State, per provider (``${lab:cloud.<provider>.<key>}`` in the ``lab-<provider>`` profiles): ``base_url``,
``request_log``, ``ca_bundle`` and whatever the provider's ``lab_state`` adds (names, IDs, the paths of
the secret files, mode 0600).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kkp_readiness.errors import LabError
from kkp_readiness.lab.ca import utcnow
from kkp_readiness.lab.cloudapi import providers
from kkp_readiness.lab.part import LabContext, Part, write_private
from kkp_readiness.lab.process import Daemon, free_port
from kkp_readiness.lab.topology import require_loopback


@dataclass
class CloudPlan:
    """Each provider's world (healthy unless a fault edited it); a provider left out is not served."""

    worlds: dict[str, Any] = field(default_factory=lambda: {p: providers.module(p).World()
                                                            for p in providers.PROVIDERS})

    def world(self, provider: str) -> Any:
        if provider not in self.worlds:
            raise LabError(f"the lab has no {provider} stand-in")
        return self.worlds[provider]


def answers_tls(address: str, port: int, ca_bundle: str, timeout: float = 1.0) -> bool:
    """True if a verified TLS handshake with ``address:port`` completes."""
    context = ssl.create_default_context(cafile=ca_bundle)
    with socket.create_connection((require_loopback(address), port), timeout=timeout) as sock, \
            context.wrap_socket(sock, server_hostname=address):
        return True


class CloudPart(Part):
    """The providers' API stand-ins (one daemon)."""

    name = "cloud"

    def start(self, ctx: LabContext) -> dict[str, Any]:
        plan = CloudPlan()
        for fault in ctx.faults_for(self.name):
            fault.apply(plan)
        directory = ctx.directory(self.name)
        now = utcnow()
        valid = (now - dt.timedelta(days=1), now + dt.timedelta(days=365))
        ca_bundle = str(ctx.ca.bundle_path.absolute())
        leaves = {}
        for provider in plan.worlds:
            mod = providers.module(provider)
            leaves[provider] = ctx.ca.issue_leaf(mod.NAMES, *valid, stem=provider, directory=directory / "certs",
                                                 ip_addresses=(mod.ADDRESS,))
        worlds = {p: write_private(directory / f"{p}-world.json", json.dumps(w.to_dict(), indent=1) + "\n")
                  for p, w in plan.worlds.items()}
        entries: list[dict[str, Any]] = []

        def make() -> tuple[Daemon, Callable[[], bool]]:
            entries.clear()
            for provider in plan.worlds:
                mod = providers.module(provider)
                port = free_port(mod.ADDRESS, udp=False)
                entries.append({"provider": provider, "address": require_loopback(mod.ADDRESS), "port": port,
                                "base_url": f"https://{mod.ADDRESS}:{port}",
                                "cert": str(leaves[provider].fullchain), "key": str(leaves[provider].key),
                                "world": str(worlds[provider]),
                                "request_log": str(directory / f"{provider}-requests.log")})
            config = directory / "config.json"
            config.write_text(json.dumps({"servers": entries}, indent=1) + "\n")
            argv = [sys.executable, "-m", "kkp_readiness.lab.cloudapi", "--config", str(config)]
            daemon = Daemon("cloudapi", argv, directory / "cloudapi.log", marker=str(config),
                            port=entries[0]["port"] if entries else None)
            return daemon, lambda: all(answers_tls(e["address"], e["port"], ca_bundle) for e in entries)

        if plan.worlds:
            self.launch(make)
        self.state = {"ca_bundle": ca_bundle}
        for entry in entries:
            provider = entry["provider"]
            mod = providers.module(provider)
            self.state[provider] = {
                "base_url": entry["base_url"], "address": entry["address"], "port": entry["port"],
                "request_log": entry["request_log"], "ca_bundle": ca_bundle,
                **mod.lab_state(plan.worlds[provider], entry["base_url"], directory, leaves[provider]),
            }
        return self.state

    def answering(self) -> bool:
        ca_bundle = self.state.get("ca_bundle", "")
        served = [s for s in self.state.values() if isinstance(s, dict)]
        return all(answers_tls(s["address"], s["port"], ca_bundle) for s in served)


def cloud_faults() -> list[Any]:
    """Every provider's faults (``faults()`` of each provider module), for ``lab.faults.FAULTS``."""
    return [fault for p in providers.PROVIDERS for fault in providers.module(p).faults()]
