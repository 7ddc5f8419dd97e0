"""``Lab``: start, check, re-attach to and stop the stand-in KKP site.

The lab is started by tests (in-process, ``with Lab(...) as lab``) and by the CLI (``lab up`` in
one process, ``lab status``/``lab down`` in later ones). Both need the same record of what runs
where, so ``start`` writes ``<workdir>/state.json`` and ``Lab.attach`` rebuilds a ``Lab`` from it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from kkp_readiness.errors import LabError
from kkp_readiness.lab.bastion_part import BastionPart
from kkp_readiness.lab.cloud_part import CloudPart
from kkp_readiness.lab.config_repo_part import ConfigRepoPart
from kkp_readiness.lab.conformance_part import ConformancePart
from kkp_readiness.lab.dns_part import DnsPart
from kkp_readiness.lab.egress_part import EgressPart
from kkp_readiness.lab.faults import Fault, resolve_faults
from kkp_readiness.lab.ingress_part import IngressPart
from kkp_readiness.lab.kubeapi.part import KubeApiPart
from kkp_readiness.lab.part import LabContext, Part
from kkp_readiness.lab.perf_part import PerfPart
from kkp_readiness.lab.process import Daemon
from kkp_readiness.lab.topology import BASE_DOMAIN

#: Every part of the lab, in start order (stopped in reverse). New parts register here.
PARTS: dict[str, type[Part]] = {
    DnsPart.name: DnsPart,
    IngressPart.name: IngressPart,
    KubeApiPart.name: KubeApiPart,
    EgressPart.name: EgressPart,
    # Before the bastion: the node's sshd runs in its own mount namespace, which sees only the mounts
    # made before it starts (the slow disk of the disk-slow fault).
    PerfPart.name: PerfPart,
    # Before the bastion: the worker host's firewall (sshd PermitOpen) is computed from the cloud APIs' ports.
    CloudPart.name: CloudPart,
    BastionPart.name: BastionPart,
    ConfigRepoPart.name: ConfigRepoPart,
    ConformancePart.name: ConformancePart,
}

STATE_FILE = "state.json"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically, so a concurrent ``lab status`` never reads half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


class Lab:
    """The local stand-in site: DNS (two dnsmasq), ingress (NGINX with lab certificates) and a
    Kubernetes API test server (``kubeapi``, serving a cluster fixture), and further parts (``PARTS``) such as
    the configuration repository (``config_repo``, a git-crypt repository without a daemon).

    ``workdir`` holds all state (configuration, certificates, logs, ``state.json``); without one
    a temporary directory is created, and removed again by ``stop``. ``faults`` are names from
    ``FAULTS``; unknown names and incompatible combinations raise ``LabError`` immediately.
    """

    def __init__(self, workdir: Path | str | None = None, faults: Sequence[str] = ()) -> None:
        if isinstance(faults, str):
            faults = [faults]
        self.faults: tuple[Fault, ...] = resolve_faults(faults)
        if workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="kkp-lab-"))
            self.temporary_workdir = True
        else:
            self.workdir = Path(workdir).absolute()
            self.temporary_workdir = False
        self.parts: dict[str, Part] = {name: cls() for name, cls in PARTS.items()}
        self.state: dict[str, Any] | None = None
        self._running = False

    @property
    def state_file(self) -> Path:
        return self.workdir / STATE_FILE

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Start every part, wait until each answers, write and return ``state.json``'s content.

        On failure everything already started is stopped again and a ``LabError`` names the part,
        its command line and the tail of its log.
        """
        if self._running:
            raise LabError(f"the lab in {self.workdir} is already started")
        self._refuse_running_lab()
        self.workdir.mkdir(parents=True, exist_ok=True)
        ctx = LabContext(self.workdir, self.faults)
        self._running = True
        try:
            ca = ctx.ca
            sections: dict[str, dict[str, Any]] = ctx.states  # each part sees the states of those before it
            for name, part in self.parts.items():
                try:
                    sections[name] = part.start(ctx)
                except LabError as exc:
                    raise LabError(f"lab part {name!r} failed to start: {exc}") from exc
        except BaseException:
            self._stop_parts(ignore_errors=True)
            self._running = False
            raise
        self.state = {
            "workdir": str(self.workdir),
            "faults": [fault.name for fault in self.faults],
            "base_domain": BASE_DOMAIN,
            **sections,
            "ca_bundle": str(ca.bundle_path.absolute()),
            "root_ca": str(ca.root.cert_path.absolute()),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "temporary_workdir": self.temporary_workdir,
            "processes": {
                name: [daemon.describe() for daemon in part.daemons] for name, part in self.parts.items()
            },
        }
        _write_json(self.state_file, self.state)
        return json.loads(json.dumps(self.state))

    def stop(self) -> None:
        """Stop every daemon (SIGTERM, then SIGKILL); idempotent, also after ``attach``.

        ``state.json`` is removed once nothing runs any more; the work directory itself is
        removed only if the lab created it as a temporary directory.
        """
        errors = self._stop_parts(ignore_errors=False)
        self._running = False
        if errors:
            raise LabError("the lab did not stop cleanly: " + "; ".join(errors))
        if self.temporary_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        elif self.state is not None:
            # Only a lab that wrote (or attached to) the state file removes it: a Lab that never
            # started must not orphan the daemons of another lab running in the same directory.
            self.state_file.unlink(missing_ok=True)
            self.state = None

    def _stop_parts(self, ignore_errors: bool) -> list[str]:
        errors = []
        for part in reversed(list(self.parts.values())):
            try:
                part.stop()
            except Exception as exc:
                errors.append(str(exc))
        return [] if ignore_errors else errors

    def status(self) -> dict[str, bool]:
        """Part name -> whether its daemons are alive and it answers a real request."""
        return {name: part.healthy() for name, part in self.parts.items()}

    def _refuse_running_lab(self) -> None:
        """Do not overwrite the state of a lab that still runs in the same work directory."""
        if not self.state_file.exists():
            return
        try:
            other = Lab.attach(self.workdir)
        except LabError:
            return  # unreadable leftovers: they describe nothing we could stop anyway
        if any(part.alive() for part in other.parts.values()):
            raise LabError(
                f"a lab is already running in {self.workdir} (see {self.state_file}); stop it first"
            )

    # -- re-attaching ---------------------------------------------------------------------------

    @classmethod
    def attach(cls, workdir: Path | str) -> Lab:
        """Re-open a lab started by another ``Lab`` (maybe another process) from its state file."""
        path = Path(workdir).absolute() / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab state in {path.parent} (is a lab running there?)") from None
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot read lab state {path}: {exc}") from exc
        try:
            lab = cls(path.parent, faults=state.get("faults", []))
            lab.temporary_workdir = bool(state.get("temporary_workdir", False))
            processes = state.get("processes", {})
            for name, part in lab.parts.items():
                # A state written before this part existed has no section for it: nothing of it
                # runs, so it has nothing to stop (and status reports it down).
                part.restore(state.get(name, {}), [Daemon.adopt(d) for d in processes.get(name, [])])
        except (KeyError, TypeError, ValueError) as exc:
            raise LabError(f"lab state {path} is incomplete or from another version: {exc!r}") from exc
        lab.state = state
        lab._running = True
        return lab

    # -- context manager ------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        faults = ",".join(f.name for f in self.faults) or "healthy"
        return f"Lab({str(self.workdir)!r}, {faults}, {'running' if self._running else 'stopped'})"
