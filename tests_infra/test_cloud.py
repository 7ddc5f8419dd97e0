"""The checks every cloud provider shares: API reachability per source, the cloud networks' DNS servers, and
integration option I (workers only in the cloud) or II (an additional seed in the cloud).

The checklist states these once per provider (AZURE-006, VSPHERE-010, OPENSTACK-009, ...); here each is one
test parametrised by provider, every parameter carrying its provider's requirement id. The catalogue's
``applies_to`` keeps only the profile's provider (the others are "not applicable"), so ``-m openstack``
selects exactly the OpenStack ones.

Sources (``cloud_source``): the seed nodes (``bastion.nodes``) and one host in each worker network
(``cloud.worker_hosts``), each reached over SSH through the bastion with its host key verified; a
connection a check makes "from" a source is a ``direct-tcpip`` channel that source opens.
"""

from __future__ import annotations

import secrets
import ssl
from typing import Any

import pytest

from fixtures.bastion import Bastion
from fixtures.cloud import CloudSource
from kkp_readiness import access_targets
from kkp_readiness.access_targets import CloudApi
from kkp_readiness.evidence import Evidence
from kkp_readiness.parallel import map_concurrently
from kkp_readiness.probes import bastion_dns, egress, ssh
from kkp_readiness.probes.dns import DnsServer, resolve_addresses
from kkp_readiness.profile import LoadedProfile
from kkp_readiness.profile_model import Profile, SeedSpec
from kkp_readiness.snapshot import seed_access
from kkp_readiness.verdict import expect

#: The requirement each shared check proves, per provider (literal marks: the catalogue finds them statically).
requirement = pytest.mark.requirement
REQUIREMENTS = {
    "api": {"azure": requirement("AZURE-006"), "vsphere": requirement("VSPHERE-010"),
             "openstack": requirement("OPENSTACK-009")},
    "dns": {"azure": requirement("AZURE-007"), "vsphere": requirement("VSPHERE-011"),
             "openstack": requirement("OPENSTACK-010")},
    "workers-to-seed": {"azure": requirement("AZURE-009"), "vsphere": requirement("VSPHERE-013"),
                         "openstack": requirement("OPENSTACK-012")},
    "seed-api": {"azure": requirement("AZURE-010"), "vsphere": requirement("VSPHERE-014"),
                  "openstack": requirement("OPENSTACK-013")},
    "seed-wildcard": {"azure": requirement("AZURE-011"), "vsphere": requirement("VSPHERE-015"),
                       "openstack": requirement("OPENSTACK-014")},
    "seed-nodeport": {"azure": requirement("AZURE-012"), "vsphere": requirement("VSPHERE-016"),
                       "openstack": requirement("OPENSTACK-015")},
    "seed-ssh": {"azure": requirement("AZURE-013"), "vsphere": requirement("VSPHERE-017"),
                  "openstack": requirement("OPENSTACK-016")},
}

def per_provider(check: str) -> pytest.MarkDecorator:
    """Parametrise a test by provider, each parameter marked with that provider's requirement."""
    return pytest.mark.parametrize("provider", [
        pytest.param(provider, marks=mark, id=provider) for provider, mark in REQUIREMENTS[check].items()])


def provider_apis(loaded: LoadedProfile, request: pytest.FixtureRequest) -> list[CloudApi]:
    """The endpoints KKP's machine-controller and the provider's CCM call: the profile's, and for OpenStack
    the catalog's public endpoints of the services they use (which needs the token)."""
    apis = access_targets.cloud_api_endpoints(loaded)
    if loaded.profile.cloud.provider == "openstack":
        from kkp_readiness.cloud.openstack import KKP_SERVICES

        cloud = request.getfixturevalue("openstack_cloud")
        endpoints = cloud.token().public_endpoints(cloud.spec.region)
        ca_bundle = apis[0].ca_bundle if apis else None
        apis += [CloudApi(f"OpenStack {service}", endpoints[service], ca_bundle)
                 for service in KKP_SERVICES if service in endpoints and service != "identity"]
    return apis


def _trust(ca_bundle: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()


# Ensures machine-controller (in the seed) and the nodes' cloud components can call the provider's API.
@per_provider("api")
def test_provider_api_reachable_from_source(provider: str, cloud_source: CloudSource, bastion: Bastion,
                                            loaded_profile: LoadedProfile, request: pytest.FixtureRequest,
                                            evidence: Evidence) -> None:
    """The rule: from each source, every API endpoint completes a verified TLS handshake and answers HTTP
    (any status: reaching it is the point; authentication is the credentials checks' business)."""
    expect(cloud_source.host is not None, "the sources to dial from",
           expected="seed nodes (bastion.nodes) and a host per worker network (cloud.worker_hosts)", found="none")
    apis = provider_apis(loaded_profile, request)
    expect(bool(apis), f"the profile's {provider} section", expected="the provider's API endpoints", found="none")
    bastion.node_session(cloud_source.host)  # an unusable source: one error now, not one per endpoint

    def connect(host: str, port: int, timeout: float) -> Any:
        return bastion.connect_from(cloud_source.host, host, port)

    answers = map_concurrently(lambda api: egress.request(api.url, connect=connect, context=_trust(api.ca_bundle),
                                                          timeout=loaded_profile.profile.timeouts.http), apis)
    evidence.attach(f"{provider} APIs from {cloud_source}",
                    [{"what": api.what, **a.to_dict()} for api, a in zip(apis, answers, strict=True)])
    problems = [f"{api.what} ({api.url}): {a.summary()}" for api, a in zip(apis, answers, strict=True)
                if not a.answered]
    expect(not problems, f"{provider} API endpoints from {cloud_source}",
           expected="each answers over verified TLS", found="; ".join(problems))


# Ensures the machines in the cloud can resolve KKP's names and the provider's endpoints.
@per_provider("dns")
def test_cloud_dns_servers_answer(provider: str, bastion: Bastion, loaded_profile: LoadedProfile,
                                  request: pytest.FixtureRequest, evidence: Evidence) -> None:
    """The rule: each of ``cloud.dns_servers`` (and, on OpenStack, the subnet's ``dns_nameservers``), asked
    from the bastion over UDP, answers NOERROR for the base domain and for each endpoint host name."""
    profile = loaded_profile.profile
    servers = list(profile.cloud.dns_servers)
    if provider == "openstack" and profile.cloud.openstack and profile.cloud.openstack.subnet_id:
        subnet = request.getfixturevalue("openstack_cloud").subnet(profile.cloud.openstack.subnet_id)
        servers += [s for s in (subnet.dns_nameservers if subnet else ()) if s not in servers]
    expect(bool(servers), "the DNS servers of the cloud networks",
           expected="cloud.dns_servers (or the subnets' DNS servers)", found="none named")
    names = [profile.base_domain]
    for api in access_targets.cloud_api_endpoints(loaded_profile):
        host = access_targets.url_endpoint(api.url)[0]
        if not access_targets.is_address(host) and host not in names:
            names.append(host)
    findings = []
    for text in servers:
        server = DnsServer.parse(text)
        for name in names:
            reach = bastion.dns_udp(server, bastion_dns.make_query(name), profile.timeouts.dns)
            findings.append((name, reach))
    evidence.attach("DNS queries sent by the bastion", [{"name": n, **r.evidence} for n, r in findings])
    problems = [f"{r.server} for {n}: {r.detail if not r.answered else r.rcode}" for n, r in findings
                if not r.answered or r.rcode != "NOERROR"]
    expect(not problems, f"the cloud networks' DNS servers from bastion {bastion.host}",
           expected=f"NOERROR answers for {', '.join(names)}", found="; ".join(problems))


def _nodeport_targets(profile: Profile, seeds: list[SeedSpec]) -> list[tuple[str, str, int]]:
    """(seed, address, port) of each seed's node-port load balancer on its expose strategy's ports."""
    return [(seed.name, str(address), port) for seed in seeds if seed.expose_strategy != "LoadBalancer"
            for address in seed.nodeport_proxy_addresses for port in access_targets.nodeport_ports(seed)]


def _reach_all(bastion: Bastion, source: str | None, targets: list[tuple[str, str, int]],
               evidence: Evidence, title: str) -> list[str]:
    reaches = [bastion.reach_from(source, host, port) if source else bastion.reach(host, port)
               for _, host, port in targets]
    evidence.attach(title, [r.evidence for r in reaches])
    return [f"{r.host}:{r.port}: {r.detail}" for r in reaches if not r.connected]


# Ensures workers in the cloud can join user clusters whose control planes run in the existing seed.
@per_provider("workers-to-seed")
def test_workers_reach_the_seed(provider: str, bastion: Bastion, profile: Profile, evidence: Evidence) -> None:
    """The rule: from each worker host, every seed's user-cluster endpoint (its node-port load balancer on the
    expose strategy's ports, ``access_targets.nodeport_ports``) accepts a TCP connection."""
    expect(bool(profile.cloud.worker_hosts), "cloud.worker_hosts", expected="a host in each worker network",
           found="none named")
    targets = _nodeport_targets(profile, list(profile.seeds))
    expect(bool(targets), "the seeds' user-cluster endpoints",
           expected="node-port-proxy addresses and ports (seeds[].nodeport_proxy_addresses, nodeport_proxy_ports)",
           found="none (LoadBalancer seeds publish per-cluster addresses only once user clusters exist)")
    problems = [f"from {worker}: {p}" for worker in profile.cloud.worker_hosts
                for p in _reach_all(bastion, worker, targets, evidence, f"from worker host {worker}")]
    expect(not problems, "the seeds' user-cluster endpoints from the worker networks",
           expected="every worker host connects", found="; ".join(problems))


def _cloud_seed(profile: Profile) -> SeedSpec:
    seed = profile.cloud_seed()
    assert seed is not None  # the profile model requires cloud.seed with additional-seed
    return seed


# Ensures the master cluster and the operators can talk to the additional seed's Kubernetes API.
@per_provider("seed-api")
def test_seed_api_load_balancer_answers(provider: str, loaded_profile: LoadedProfile, evidence: Evidence) -> None:
    """The rule: the ``server`` URL of the cloud seed's kubeconfig completes a TLS handshake verified against
    the kubeconfig's CA and answers HTTP (``/version``; any status)."""
    profile = loaded_profile.profile
    seed = _cloud_seed(profile)
    target = access_targets.seed_api_target(loaded_profile, seed)
    expect(target.problem is None, f"the API load balancer of seed {seed.name}", expected="a server URL",
           found=target.problem or "")
    access = seed_access(loaded_profile, seed)
    ca = access_targets.kubeconfig_ca(str(access.kubeconfig), seed.context)
    context = ssl.create_default_context(cadata=ca.decode()) if ca else ssl.create_default_context()
    url = f"https://{target.host}:{target.port}/version"
    answer = egress.request(url, connect=egress.direct_connector, context=context,
                            timeout=profile.timeouts.tls)
    evidence.attach(f"API load balancer of seed {seed.name}", {"source": target.source, **answer.to_dict(),
                                                                "trust": "kubeconfig CA" if ca else "system store"})
    expect(answer.answered, f"the API load balancer of seed {seed.name} ({target.host}:{target.port})",
           expected="HTTPS with a certificate verified against the seed's CA", found=answer.summary())


# Ensures user clusters of the additional seed get their names: any label under the seed domain resolves.
@per_provider("seed-wildcard")
def test_seed_wildcard_record(provider: str, profile: Profile, evidence: Evidence) -> None:
    """The rule: ``<random label>.<seed domain>`` resolves at every DNS server of the profile to the seed's
    node-port load balancer addresses (``nodeport_proxy_addresses``)."""
    seed = _cloud_seed(profile)
    expect(seed.expose_strategy != "LoadBalancer" and bool(seed.nodeport_proxy_addresses),
           f"seed {seed.name}", expected="a node-port load balancer address (NodePort or Tunneling)",
           found=f"expose strategy {seed.expose_strategy} with no node-port-proxy address")
    name = f"kkp-readiness-{secrets.token_hex(4)}.{profile.seed_domain(seed)}"
    expected = sorted(str(a) for a in seed.nodeport_proxy_addresses)
    answers, problems = [], []
    for text in profile.dns.servers:
        answer = resolve_addresses(name, DnsServer.parse(text), profile.timeouts.dns)  # DnsProbeError: error
        answers.append(answer.to_dict())
        if sorted(answer.addresses) != expected:
            problems.append(f"{text}: {answer.status} {', '.join(answer.addresses)}".strip())
    evidence.attach(f"wildcard *.{profile.seed_domain(seed)}", answers)
    expect(not problems, f"{name} (wildcard *.{profile.seed_domain(seed)})",
           expected=f"A {', '.join(expected)} at every DNS server", found="; ".join(problems))


# Ensures user-cluster traffic reaches the additional seed: from the workers in the cloud and from the users.
@per_provider("seed-nodeport")
def test_seed_nodeport_load_balancer_reachable(provider: str, bastion: Bastion, profile: Profile,
                                               evidence: Evidence) -> None:
    """The rule: the cloud seed's node-port load balancer accepts TCP connections on the expose strategy's ports
    from each worker host and from the bastion (where users and operators connect from)."""
    seed = _cloud_seed(profile)
    targets = _nodeport_targets(profile, [seed])
    expect(bool(targets), f"the node-port load balancer of seed {seed.name}",
           expected="addresses and ports (nodeport_proxy_addresses, nodeport_proxy_ports or Tunneling's)",
           found=f"none for expose strategy {seed.expose_strategy}")
    problems = [f"from bastion {bastion.host}: {p}" for p in _reach_all(bastion, None, targets, evidence,
                                                                           "from the bastion")]
    for worker in profile.cloud.worker_hosts:
        problems += [f"from {worker}: {p}" for p in _reach_all(bastion, worker, targets, evidence,
                                                                f"from worker host {worker}")]
    expect(not problems, f"the node-port load balancer of seed {seed.name}",
           expected="connections from every worker host and the bastion", found="; ".join(problems))


# Ensures KubeOne can install and upgrade the additional seed from the provisioning host.
@per_provider("seed-ssh")
def test_provisioning_host_reaches_seed_machines(provider: str, bastion: Bastion, profile: Profile,
                                                 evidence: Evidence) -> None:
    """The rule: the bastion (the provisioning host) opens SSH to every ``cloud.seed_machines`` entry, the
    machine's host key verifies against known_hosts and the login is accepted."""
    machines = list(profile.cloud.seed_machines)
    expect(bool(machines), "cloud.seed_machines", expected="the additional seed's machines", found="none named")
    bastion.session()  # an unusable bastion: the check's error, not a finding about the machines
    problems = []
    for machine in machines:
        try:
            check = bastion.jump(machine)
        except ssh.SshProbeError as exc:  # refused, unreachable, login refused: all findings of this rule
            problems.append(f"{machine}: {exc}")
            continue
        evidence.attach(f"SSH to {machine}", check.evidence)
        if check.verified_by is None:
            problems.append(f"{machine}: host key not verified ({check.problem})")
    expect(not problems, f"SSH from the provisioning host {bastion.host}",
           expected="every seed machine answers with a verified host key and accepts the login",
           found="; ".join(problems))
