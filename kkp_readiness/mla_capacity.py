"""MLA sizing (PERF-008): Cortex's and Loki's capacity rules applied to a profile's expected load.

Pure arithmetic on plain values and Kubernetes objects (dicts); the rules are data
(``data/mla_capacity.yaml``), each with the page it comes from:

- ingester memory: 15 GB per million series in the ingesters, which hold active series x
  replication factor (https://cortexmetrics.io/docs/guides/capacity-planning/, rule 1);
- metrics storage: 15 GB of chunks + 4 GB of index per million series per day, times the
  retention (same page, rule 2);
- distributor CPU: 20,000 samples/s per core, the low end of the page's 20,000-100,000 (rule 3);
- log storage: daily volume x retention, no compression credited (Red Hat's Loki sizing:
  https://docs.redhat.com/en/documentation/red_hat_openshift_logging/6.6/html/installing_logging/loki-deployment-sizing).

GB in these pages are decimal; results are in bytes, :func:`gib` converts for messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from kkp_readiness.kube_facts import parse_quantity

RULES_FILE = Path(__file__).with_name("data") / "mla_capacity.yaml"
GIB = 2**30


@dataclass(frozen=True)
class Rules:
    """The sizing constants, with where they come from (``data/mla_capacity.yaml``)."""

    ingester_memory_bytes_per_series: int
    chunk_storage_bytes_per_series_day: int
    index_storage_bytes_per_series_day: int
    distributor_samples_per_second_per_core: int
    default_scrape_interval_seconds: int
    default_replication_factor: int
    log_compression_factor: float
    default_retention_days: int
    default_ingesters: int
    sources: tuple[str, ...]


@lru_cache(maxsize=1)
def rules() -> Rules:
    """The rules of ``data/mla_capacity.yaml``.

    >>> rules().ingester_memory_bytes_per_series
    15000
    """
    data = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    cortex, loki, kkp = data["cortex"], data["loki"], data["kkp"]
    return Rules(
        ingester_memory_bytes_per_series=int(cortex["ingester_memory_bytes_per_series"]),
        chunk_storage_bytes_per_series_day=int(cortex["chunk_storage_bytes_per_series_day"]),
        index_storage_bytes_per_series_day=int(cortex["index_storage_bytes_per_series_day"]),
        distributor_samples_per_second_per_core=int(cortex["distributor_samples_per_second_per_core"]),
        default_scrape_interval_seconds=int(cortex["default_scrape_interval_seconds"]),
        default_replication_factor=int(cortex["default_replication_factor"]),
        log_compression_factor=float(loki["compression_factor"]),
        default_retention_days=int(kkp["default_retention_days"]),
        default_ingesters=int(kkp["default_ingesters"]),
        sources=(cortex["source"], loki["source"], kkp["source"]),
    )


def gib(size_bytes: float) -> float:
    """Bytes as GiB, rounded to 2 places.

    >>> gib(3 * 2**30 + 2**29)
    3.5
    """
    return round(size_bytes / GIB, 2)


@dataclass(frozen=True)
class Estimate:
    """What the MLA stack needs for a load: the inputs and the results (bytes, cores)."""

    active_series: int
    replication_factor: int
    ingesters: int
    scrape_interval_seconds: int
    retention_days: int
    logs_gib_per_day: float
    ingester_memory_bytes: int
    per_ingester_memory_bytes: int
    samples_per_second: float
    distributor_cores: float
    metrics_storage_bytes: int
    logs_storage_bytes: int

    @property
    def storage_bytes(self) -> int:
        """Metrics and logs together, over the retention."""
        return self.metrics_storage_bytes + self.logs_storage_bytes

    def describe(self) -> str:
        """The inputs, for a message."""
        parts = []
        if self.active_series:
            parts.append(f"{self.active_series:,} active series x replication factor {self.replication_factor} "
                         f"over {self.ingesters} ingester(s), one sample per {self.scrape_interval_seconds}s")
        if self.logs_gib_per_day:
            parts.append(f"{self.logs_gib_per_day:g} GiB of logs per day")
        return ", ".join(parts) + f", kept {self.retention_days} day(s)"

    def as_dict(self) -> dict[str, Any]:
        """Inputs, results (also in GiB) and the rules used, for the evidence."""
        result: dict[str, Any] = asdict(self)
        result.update(storage_bytes=self.storage_bytes, ingester_memory_gib=gib(self.ingester_memory_bytes),
                      per_ingester_memory_gib=gib(self.per_ingester_memory_bytes),
                      metrics_storage_gib=gib(self.metrics_storage_bytes),
                      logs_storage_gib=gib(self.logs_storage_bytes), storage_gib=gib(self.storage_bytes),
                      rules=asdict(rules()))
        return result


def estimate(active_series: int | None = None, *, retention_days: int | None = None,
             logs_gib_per_day: float | None = None, replication_factor: int | None = None,
             ingesters: int | None = None, scrape_interval_seconds: int | None = None) -> Estimate:
    """Cortex ingester memory, metrics and log storage for a load (``None``: the documented default).

    One million active series, replication factor 3, 3 ingesters, 30 days: 45 GB of ingester
    memory (15 GB each), 30 x 19 GB = 570 GB of metrics storage; at one sample a minute that is
    16,667 samples/s, under one distributor core:

    >>> e = estimate(1_000_000, retention_days=30)
    >>> e.ingester_memory_bytes, e.per_ingester_memory_bytes, e.metrics_storage_bytes
    (45000000000, 15000000000, 570000000000)
    >>> round(e.samples_per_second), round(e.distributor_cores, 2)
    (16667, 0.83)

    Logs only: 2 GiB a day for 7 days is 14 GiB.

    >>> gib(estimate(logs_gib_per_day=2, retention_days=7).storage_bytes)
    14.0
    """
    r = rules()
    series = active_series or 0
    factor = replication_factor or r.default_replication_factor
    replicas = ingesters or r.default_ingesters
    interval = scrape_interval_seconds or r.default_scrape_interval_seconds
    days = retention_days or r.default_retention_days
    logs = logs_gib_per_day or 0.0
    memory = series * factor * r.ingester_memory_bytes_per_series
    samples = series / interval
    return Estimate(
        active_series=series, replication_factor=factor, ingesters=replicas, scrape_interval_seconds=interval,
        retention_days=days, logs_gib_per_day=logs,
        ingester_memory_bytes=memory, per_ingester_memory_bytes=-(-memory // replicas),
        samples_per_second=samples, distributor_cores=samples / r.distributor_samples_per_second_per_core,
        metrics_storage_bytes=series * days * (r.chunk_storage_bytes_per_series_day
                                               + r.index_storage_bytes_per_series_day),
        logs_storage_bytes=round(logs * GIB * days / r.log_compression_factor),
    )


def allocatable_memory(node: Mapping[str, Any]) -> int:
    """Bytes of memory the node's kubelet offers to pods (``status.allocatable.memory``).

    >>> allocatable_memory({"status": {"allocatable": {"memory": "16674816Ki"}}})
    17075011584
    """
    raw = (node.get("status") or {}).get("allocatable") or {}
    return int(parse_quantity(raw.get("memory", "0")))


def claimed_storage(pvcs: Iterable[Mapping[str, Any]]) -> int:
    """Bytes the claims request (``spec.resources.requests.storage``), summed.

    >>> claimed_storage([{"spec": {"resources": {"requests": {"storage": "10Gi"}}}}] * 2) == 20 * 2**30
    True
    """
    total = 0
    for pvc in pvcs:
        requests = ((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}
        total += int(parse_quantity(requests.get("storage", "0")))
    return total


@dataclass(frozen=True)
class Fit:
    """Whether what is needed fits into what is offered, and why not."""

    ok: bool
    needed: str
    offered: str


def memory_fit(est: Estimate, nodes: Mapping[str, int]) -> Fit:
    """Do the ingesters fit into the MLA nodes' allocatable memory (name -> bytes)?

    All ingesters together must fit into the nodes together, and one ingester into the largest
    node (a pod does not span nodes).

    >>> memory_fit(estimate(100_000), {"mla-1": 8 * 2**30}).ok
    True
    >>> fit = memory_fit(estimate(1_000_000), {"mla-1": 16 * 2**30, "mla-2": 16 * 2**30})
    >>> fit.ok, fit.offered
    (False, '32.0 GiB allocatable on mla-1, mla-2 (largest 16.0 GiB)')
    """
    total, largest = sum(nodes.values()), max(nodes.values(), default=0)
    ok = est.ingester_memory_bytes <= total and est.per_ingester_memory_bytes <= largest
    return Fit(ok, f"{gib(est.ingester_memory_bytes)} GiB of Cortex ingester memory "
                   f"({gib(est.per_ingester_memory_bytes)} GiB per ingester)",
               f"{gib(total)} GiB allocatable on {', '.join(sorted(nodes)) or 'no node'} (largest {gib(largest)} GiB)")


def storage_fit(est: Estimate, offered_bytes: int, where: str) -> Fit:
    """Do metrics and logs over the retention fit into the storage offered?

    >>> storage_fit(estimate(logs_gib_per_day=2, retention_days=7), 10 * 2**30, "the profile").ok
    False
    """
    return Fit(est.storage_bytes <= offered_bytes,
               f"{gib(est.storage_bytes)} GiB of storage ({gib(est.metrics_storage_bytes)} GiB metrics, "
               f"{gib(est.logs_storage_bytes)} GiB logs)", f"{gib(offered_bytes)} GiB ({where})")
