"""Run independent probes of one check side by side, keeping their order.

Why: a check often asks many targets the same question over one SSH connection (allowlisted hosts,
DNS servers over UDP and TCP); each answer costs a round trip through the bastion, and SSH
multiplexes channels, so asking them together makes the check as slow as its slowest target
instead of the sum. Probes are time-bounded themselves; exceptions reach the caller unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
#: Enough to overlap the round trips; more would only queue on the bastion's sshd.
MAX_WORKERS = 8


def map_concurrently(probe: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[probe(item) for item in items]``, run in threads; the first exception is raised."""
    items = list(items)
    if len(items) <= 1:
        return [probe(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(items)), thread_name_prefix="probe") as pool:
        return list(pool.map(probe, items))
