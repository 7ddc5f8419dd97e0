"""PERF-008's arithmetic (kkp_readiness/mla_capacity.py) against figures worked out by hand from the rules.

Cortex capacity planning (https://cortexmetrics.io/docs/guides/capacity-planning/): 15 GB of ingester
RAM per million series, ingesters hold active series x replication factor; 15 GB chunks + 4 GB index
per million series per day; 20,000 samples/s per distributor core (low end). Logs: volume x retention.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kkp_readiness import mla_capacity as capacity
from kkp_readiness.profile_model import MlaCapacitySpec, MlaSpec

GIB = 2**30


def test_the_rules_are_the_documented_ones() -> None:
    rules = capacity.rules()
    assert rules.ingester_memory_bytes_per_series == 15 * 10**9 // 10**6
    assert rules.chunk_storage_bytes_per_series_day + rules.index_storage_bytes_per_series_day == 19_000
    assert rules.distributor_samples_per_second_per_core == 20_000
    assert (rules.default_replication_factor, rules.default_retention_days, rules.default_ingesters) == (3, 7, 3)
    assert "https://cortexmetrics.io/docs/guides/capacity-planning/" in rules.sources


def test_half_a_million_series_for_two_weeks() -> None:
    # 500,000 x 3 = 1.5 million series in the ingesters x 15 GB = 22.5 GB, 7.5 GB each of 3;
    # 0.5 million x 19 GB x 14 days = 133 GB; at 30 s: 16,666.7 samples/s = 0.83 cores.
    est = capacity.estimate(500_000, retention_days=14, scrape_interval_seconds=30)
    assert est.ingester_memory_bytes == 22_500_000_000
    assert est.per_ingester_memory_bytes == 7_500_000_000
    assert est.metrics_storage_bytes == 133_000_000_000
    assert est.logs_storage_bytes == 0
    assert est.samples_per_second == pytest.approx(16_666.67, abs=0.01)
    assert est.distributor_cores == pytest.approx(0.8333, abs=0.0001)


def test_the_lab_load() -> None:
    # profiles/lab.yaml: 20,000 series x 3 x 15 KB = 0.9 GB (0.84 GiB); 20,000 x 19 KB x 7 = 2.66 GB
    # (2.48 GiB) + 1 GiB x 7 of logs.
    est = capacity.estimate(20_000, retention_days=7, logs_gib_per_day=1)
    assert capacity.gib(est.ingester_memory_bytes) == 0.84
    assert capacity.gib(est.metrics_storage_bytes) == 2.48
    assert est.logs_storage_bytes == 7 * GIB
    assert capacity.gib(est.storage_bytes) == 9.48


def test_defaults_and_other_replication() -> None:
    est = capacity.estimate(100_000)
    assert (est.replication_factor, est.ingesters, est.retention_days, est.scrape_interval_seconds) == (3, 3, 7, 60)
    single = capacity.estimate(100_000, replication_factor=1, ingesters=1)
    assert single.ingester_memory_bytes == est.ingester_memory_bytes // 3 == 1_500_000_000
    assert single.per_ingester_memory_bytes == single.ingester_memory_bytes


def test_per_ingester_rounds_up() -> None:
    est = capacity.estimate(1, replication_factor=1, ingesters=4)
    assert est.ingester_memory_bytes == 15_000
    assert est.per_ingester_memory_bytes == 3_750
    assert capacity.estimate(1, replication_factor=1, ingesters=7).per_ingester_memory_bytes == 2_143


def test_logs_only() -> None:
    est = capacity.estimate(logs_gib_per_day=2.5, retention_days=30)
    assert est.ingester_memory_bytes == est.metrics_storage_bytes == 0
    assert est.logs_storage_bytes == 75 * GIB
    assert est.describe() == "2.5 GiB of logs per day, kept 30 day(s)"


def test_memory_fit_needs_the_total_and_one_ingester_on_one_node() -> None:
    est = capacity.estimate(400_000)  # 18 GB in all, 6 GB per ingester
    assert capacity.memory_fit(est, {"a": 10 * GIB, "b": 10 * GIB}).ok
    assert not capacity.memory_fit(est, {"a": 16 * GIB}).ok                        # total too small
    assert not capacity.memory_fit(est, {f"n{i}": 5 * GIB for i in range(5)}).ok   # 6 GB on no node
    empty = capacity.memory_fit(est, {})
    assert not empty.ok
    assert "no node" in empty.offered


def test_storage_fit_at_the_boundary() -> None:
    est = capacity.estimate(logs_gib_per_day=1, retention_days=10)
    assert capacity.storage_fit(est, 10 * GIB, "profile").ok
    miss = capacity.storage_fit(est, 10 * GIB - 1, "profile")
    assert not miss.ok
    assert miss.needed == "10.0 GiB of storage (0.0 GiB metrics, 10.0 GiB logs)"


def test_node_memory_and_claims_from_objects() -> None:
    node = {"status": {"allocatable": {"memory": "6189056Ki"}, "capacity": {"memory": "6291456Ki"}}}
    assert capacity.allocatable_memory(node) == 6189056 * 1024
    assert capacity.allocatable_memory({}) == 0
    claims = [{"spec": {"resources": {"requests": {"storage": "10Gi"}}}},
              {"spec": {"resources": {"requests": {"storage": "50G"}}}}, {"spec": {}}]
    assert capacity.claimed_storage(claims) == 10 * GIB + 50 * 10**9


def test_estimate_as_evidence() -> None:
    data = capacity.estimate(20_000, logs_gib_per_day=1).as_dict()
    assert data["active_series"] == 20_000
    assert data["storage_gib"] == 9.48
    assert data["rules"]["ingester_memory_bytes_per_series"] == 15_000


def test_profile_capacity_validation() -> None:
    spec = MlaCapacitySpec(active_series=1000)
    assert (spec.retention_days, spec.replication_factor, spec.ingesters, spec.volume_gib) == (7, 3, 3, None)
    assert MlaSpec(capacity={"logs_gib_per_day": 0.5}).capacity is not None
    assert MlaSpec().capacity is None
    with pytest.raises(ValidationError, match="active_series or logs_gib_per_day"):
        MlaCapacitySpec(retention_days=7)
    with pytest.raises(ValidationError, match="at least as many ingesters"):
        MlaCapacitySpec(active_series=1000, replication_factor=3, ingesters=2)
    for bad in ({"active_series": 0}, {"active_series": 1, "retention_days": 0}, {"logs_gib_per_day": -1},
                {"active_series": 1, "volume_gib": 0}, {"active_series": 1, "unknown": 1}):
        with pytest.raises(ValidationError):
            MlaCapacitySpec(**bad)
