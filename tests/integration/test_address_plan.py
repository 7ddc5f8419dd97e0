"""NET-003 is arithmetic on the profile: proven both ways with variants of the lab profile (nothing is dialled)."""

from __future__ import annotations

import pytest

from tests.conftest import PROJECT_ROOT, run_suite

VARIANTS = {
    # The healthy lab profile passes NET-003 in test_lab_suite's healthy run; these change only the plan.
    "pod-cidr-in-node-network": ("network: {pod_cidr: 127.0.1.0/25}", "fail",
                                 "pod CIDR 127.0.1.0/25 overlaps node network 127.0.1.0/24 in 127.0.1.0-127.0.1.127"),
    "service-cidr-covers-pods": ("network: {service_cidr: 10.0.0.0/8}", "fail",
                                 "service CIDR 10.0.0.0/8 overlaps pod CIDR 10.244.0.0/16"),
    "l2-pool-in-node-network": ("load_balancer: {mode: metallb-l2, address_pools: [127.0.1.200-127.0.1.220]}\n"
                                "network: {dhcp_ranges: [127.0.1.100-127.0.1.150]}", "pass", ""),
    "l2-pool-in-dhcp-range": ("load_balancer: {mode: metallb-l2, address_pools: [127.0.1.140-127.0.1.160]}\n"
                              "network: {dhcp_ranges: [127.0.1.100-127.0.1.150]}", "fail",
                              "load-balancer pool 127.0.1.140-127.0.1.160 overlaps DHCP range "
                              "127.0.1.100-127.0.1.150 in 127.0.1.140-127.0.1.150"),
    "bgp-pool-in-node-network": ("load_balancer: {address_pools: [127.0.1.200-127.0.1.220]}", "fail",
                                 "load-balancer pool 127.0.1.200-127.0.1.220 overlaps node network 127.0.1.0/24"),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_address_plan_variants(variant: str, healthy_lab, tmp_path) -> None:
    overrides, verdict, finding = VARIANTS[variant]
    profile = tmp_path / f"lab-{variant}.yaml"
    profile.write_text(f"extends: {PROJECT_ROOT / 'profiles' / 'lab.yaml'}\nname: lab-{variant}\n{overrides}\n")
    run = run_suite(healthy_lab.workdir, tmp_path / "reports", "-k", "NET-003", profile=str(profile))
    assert run.verdicts(("NET",)) == {"NET-003": verdict}, run.output[-4000:]
    if verdict == "fail":
        message = run.requirement("NET-003")["messages"][0]["message"]
        assert finding in message, message
        assert message.startswith("[NET-003]"), message
        assert "Fix: " in message, message
        assert "Docs: https://" in message, message
