"""DNS: the names KKP needs exist and point where the profile says, on every listed DNS server.

Each check asks each DNS server of the profile (``dns_server`` is parametrised), so a stale
secondary shows up as its own failing target.
"""

from __future__ import annotations

import pytest

from fixtures.site import DnsObserver, SeedTarget
from kkp_readiness.errors import DnsProbeError
from kkp_readiness.evidence import Evidence
from kkp_readiness.probes.dns import DnsAnswer, DnsServer, random_label
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect


def describe(answer: DnsAnswer) -> str:
    """What a server said, as an engineer would read it in dig's output."""
    if answer.addresses:
        return f"{answer.rdtype} {', '.join(answer.addresses)}"
    return answer.status if answer.status != "NOERROR" else "no address records (NODATA)"


def expect_resolves(dns: DnsObserver, evidence: Evidence, name: str, server: DnsServer, expected: list[str],
                    role: str) -> None:
    """The shared judgement: ``name`` asked of ``server`` gives exactly ``expected``."""
    answer = dns.ask(name, server, expected)
    evidence.attach(f"DNS answer for {name} from {server}", answer.to_dict())
    if answer.status == "REFUSED":
        raise DnsProbeError(f"DNS server {server} refused to answer for {name} (an ACL?): the suite could not look")
    expect(
        answer.resolves_to(expected),
        f"{name} at DNS server {server}",
        expected=f"{role} {', '.join(expected)}",
        found=describe(answer),
    )


# Ensures the KKP dashboard name leads to the ingress.
@pytest.mark.requirement("DNS-001")
def test_ui_name_resolves_to_ingress(profile: Profile, dns: DnsObserver, dns_server: DnsServer,
                                     evidence: Evidence) -> None:
    expect_resolves(dns, evidence, profile.base_domain, dns_server, profile.ingress.addresses, "the ingress address")


# Ensures every service NGINX exposes (Grafana, Prometheus, Alertmanager, Kibana) resolves to the ingress.
@pytest.mark.requirement("DNS-002")
def test_ingress_service_name_resolves_to_ingress(profile: Profile, dns: DnsObserver, dns_server: DnsServer,
                                                  ingress_service_name: str, evidence: Evidence) -> None:
    expect_resolves(dns, evidence, ingress_service_name, dns_server, profile.ingress.addresses,
                    "the ingress address")


# Ensures *.<base domain> exists: a name nobody created resolves to the ingress.
@pytest.mark.requirement("DNS-003")
def test_base_domain_wildcard(profile: Profile, dns: DnsObserver, dns_server: DnsServer, evidence: Evidence) -> None:
    name = f"{random_label()}.{profile.base_domain}"
    expect_resolves(dns, evidence, name, dns_server, profile.ingress.addresses,
                    f"(via the wildcard *.{profile.base_domain}) the ingress address")


# Ensures *.<seed domain> leads user-cluster API names (<cluster-id>.<seed domain>) to the node-port proxy.
@pytest.mark.requirement("DNS-004")
def test_seed_wildcard_for_user_cluster_apis(dns: DnsObserver, dns_server: DnsServer, seed: SeedTarget,
                                             evidence: Evidence) -> None:
    name = f"{random_label()}.{seed.domain}"
    expect_resolves(dns, evidence, name, dns_server, seed.seed.nodeport_proxy_addresses,
                    f"(via the wildcard *.{seed.domain}) the node-port-proxy address of seed {seed}")


# Ensures the user-cluster MLA UIs of a seed resolve to the ingress.
@pytest.mark.requirement("DNS-005")
@pytest.mark.parametrize("service", ["grafana", "alertmanager"])
def test_seed_mla_names(profile: Profile, dns: DnsObserver, dns_server: DnsServer, seed: SeedTarget, service: str,
                        evidence: Evidence) -> None:
    expect_resolves(dns, evidence, f"{service}.{seed.domain}", dns_server, profile.ingress.addresses,
                    "the ingress address")


def names_to_compare(profile: Profile) -> list[str]:
    """Every name the DNS checks ask for, plus one random label under each wildcard in use."""
    names = profile.ingress_names()
    label = random_label()
    if profile.dns.wildcard:
        names.append(f"{label}.{profile.base_domain}")
    for seed in profile.seeds:
        domain = profile.seed_domain(seed)
        if seed.expose_strategy != "LoadBalancer":
            names.append(f"{label}.{domain}")
        if seed.mla:
            names.extend(f"{service}.{domain}" for service in ("grafana", "alertmanager"))
    return names


# Ensures every listed DNS server tells the same story (no stale secondary, no split horizon).
@pytest.mark.requirement("DNS-006")
def test_dns_servers_agree(profile: Profile, dns: DnsObserver, evidence: Evidence) -> None:
    servers = [DnsServer.parse(s) for s in profile.dns.servers]
    if len(servers) < 2:
        pytest.skip("the profile lists a single DNS server: there is nothing to compare")
    answers = {
        name: {str(server): describe(dns.ask(name, server)) for server in servers}
        for name in names_to_compare(profile)
    }
    evidence.attach("answers per server", answers)
    disagreements = {name: seen for name, seen in answers.items() if len(set(seen.values())) > 1}
    expect(
        not disagreements,
        f"{len(servers)} DNS servers",
        expected="the same answer from every server for each name",
        found="; ".join(
            f"{name}: " + ", ".join(f"{server} says {said}" for server, said in seen.items())
            for name, seen in disagreements.items()
        ),
    )
