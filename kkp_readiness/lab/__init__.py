"""A local stand-in for a KKP site, on loopback only, started by code.

``Lab`` starts real daemons (two dnsmasq for the zone ``kkp.lab``, NGINX terminating TLS with
certificates from the lab's own CA) healthy or with named ``FAULTS``, so that the readiness
checks can be proven against both a good site and each typical mistake. See ``topology`` for
the fixed names and addresses the ``lab`` profile relies on.
"""

from __future__ import annotations

from kkp_readiness.errors import LabError
from kkp_readiness.lab.ca import LabCA
from kkp_readiness.lab.faults import FAULTS, Fault, resolve_faults
from kkp_readiness.lab.lab import PARTS, STATE_FILE, Lab
from kkp_readiness.lab.part import LabContext, Part
from kkp_readiness.lab.process import Daemon, free_port

__all__ = [
    "FAULTS",
    "PARTS",
    "STATE_FILE",
    "Daemon",
    "Fault",
    "Lab",
    "LabCA",
    "LabContext",
    "LabError",
    "Part",
    "free_port",
    "resolve_faults",
]
