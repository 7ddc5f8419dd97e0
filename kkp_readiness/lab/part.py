"""The ``Part`` abstraction: one piece of the stand-in site (DNS, ingress, later SSH, etcd, ...).

A part turns the lab's faults into a plan, renders configuration into its own directory of the
work directory, starts its daemons, waits until they answer and reports a small state dict that
``Lab`` stores in ``state.json``. Keeping every part to this shape lets ``Lab`` start, check and
stop any number of them (and re-attach to them from another process) without knowing details.
"""

from __future__ import annotations

import ipaddress
import os
import random
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from kkp_readiness.errors import LabError
from kkp_readiness.lab.ca import LabCA
from kkp_readiness.lab.process import Daemon, DaemonError
from kkp_readiness.lab.topology import EGRESS_RANGE, require_loopback

if TYPE_CHECKING:
    from kkp_readiness.lab.faults import Fault


def running_as_root() -> bool:
    """Root needs explicit "stay root" options, as dnsmasq and NGINX otherwise switch users."""
    return os.geteuid() == 0


@dataclass
class LabContext:
    """What every part may use while starting: the work directory, the faults and the lab CA."""

    workdir: Path
    faults: tuple[Fault, ...] = ()
    as_root: bool = field(default_factory=running_as_root)
    #: The state dicts of the parts started so far (a part may build on an earlier one's ports).
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ca: LabCA | None = None
    _egress_address: str | None = None

    def egress_address(self) -> str:
        """This lab's own loopback address for the "internet" stand-ins (ports 53, 80 and 443 free on it).

        Why per lab: those services must listen on their well-known ports (a proxy CONNECTs to
        quay.io:443), so parallel labs cannot share an address; each draws a random free one from
        ``EGRESS_RANGE``. The DNS part publishes it before the egress part starts, hence it lives here.
        """
        if self._egress_address is None:
            self._egress_address = pick_egress_address(check_ports=self.as_root)
        return self._egress_address

    @property
    def ca(self) -> LabCA:
        """The lab CA (root + intermediate), created on first use in ``<workdir>/ca``."""
        if self._ca is None:
            self._ca = LabCA(self.workdir / "ca")
        return self._ca

    def faults_for(self, part: str) -> tuple[Fault, ...]:
        return tuple(f for f in self.faults if f.part == part)

    def directory(self, part: str) -> Path:
        path = self.workdir / part
        path.mkdir(parents=True, exist_ok=True)
        return path


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable by the owner only (mode 0600): lab secrets, tokens, credentials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def pick_egress_address(check_ports: bool, attempts: int = 50) -> str:
    """A random address of ``EGRESS_RANGE`` where TCP 53/80/443 and UDP 53 can be bound (if ``check_ports``)."""
    network = ipaddress.ip_network(EGRESS_RANGE)
    for _ in range(attempts):
        address = str(network[random.randrange(1, network.num_addresses - 1)])
        if address.endswith((".0", ".255")):
            continue
        if not check_ports or _ports_free(address):
            return require_loopback(address)
    raise LabError(f"no address of {EGRESS_RANGE} with ports 53, 80 and 443 free after {attempts} tries")


def _ports_free(address: str) -> bool:
    sockets = []
    try:
        for kind, port in ((socket.SOCK_STREAM, 53), (socket.SOCK_DGRAM, 53), (socket.SOCK_STREAM, 80),
                           (socket.SOCK_STREAM, 443)):
            sock = socket.socket(socket.AF_INET, kind)
            sockets.append(sock)
            sock.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


class Part(ABC):
    """One component of the lab. Subclasses set ``name`` and implement ``start`` and ``answering``."""

    name: ClassVar[str]
    #: How many times to retry a start that failed because another process took the free port.
    port_retries: ClassVar[int] = 3

    def __init__(self) -> None:
        self.daemons: list[Daemon] = []
        self.state: dict[str, Any] = {}

    @abstractmethod
    def start(self, ctx: LabContext) -> dict[str, Any]:
        """Start the part's daemons, wait until they answer, return the part's state dict."""

    @abstractmethod
    def answering(self) -> bool:
        """True if the part answers a real request (DNS query, TLS handshake) right now."""

    def restore(self, state: dict[str, Any], daemons: list[Daemon]) -> None:
        """Re-attach to a part started elsewhere, from its ``state.json`` section and daemons."""
        self.state = state
        self.daemons = daemons

    def alive(self) -> bool:
        return bool(self.daemons) and all(d.is_running() for d in self.daemons)

    def healthy(self) -> bool:
        """Alive and answering: what ``Lab.status()`` reports for the part."""
        try:
            return self.alive() and self.answering()
        except Exception:
            return False

    #: What a part set up on the machine besides daemons (a mount, a cgroup): state key -> the function that
    #: undoes it from the recorded state. ``stop`` runs them after the daemons, also in a part re-attached
    #: from ``state.json`` by another process (``lab down``).
    undo: ClassVar[dict[str, Callable[[Any], None]]] = {}

    def stop(self) -> None:
        """Stop every daemon of the part (last started first), then undo what ``undo`` names; errors are
        collected and raised together."""
        errors = []
        for daemon in reversed(self.daemons):
            try:
                daemon.stop()
            except Exception as exc:
                errors.append(str(exc))
        for key, undo in self.undo.items():
            if key in self.state:
                try:
                    undo(self.state[key])
                except LabError as exc:
                    errors.append(str(exc))
        if errors:
            raise LabError(f"{self.name}: " + "; ".join(errors))

    def launch(self, make: Callable[[], tuple[Daemon, Callable[[], bool]]]) -> Daemon:
        """Start a daemon built by ``make`` and wait until its check passes.

        ``make`` is called again (with a fresh free port) if the daemon died because its port was
        taken between ``free_port`` and the bind, which can happen when labs start in parallel.
        """
        for attempt in range(self.port_retries + 1):
            daemon, check = make()
            daemon.start()
            self.daemons.append(daemon)
            try:
                daemon.wait_ready(check)
                return daemon
            except DaemonError as exc:
                if not (exc.exited and "in use" in exc.log_tail and attempt < self.port_retries):
                    raise
                self.daemons.remove(daemon)
                daemon.stop()
        raise AssertionError("unreachable")
