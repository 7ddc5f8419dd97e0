"""ACCESS: the bastion the installation runs from: SSH login, host key, helper tools, nodes behind it."""

from __future__ import annotations

import pytest

from fixtures.bastion import Bastion
from fixtures.egress import Egress
from kkp_readiness.access_targets import CloudApi, Target, cloud_api_endpoints
from kkp_readiness.errors import ProbeError
from kkp_readiness.evidence import Evidence
from kkp_readiness.parallel import map_concurrently
from kkp_readiness.probes import bastion_dns, ssh
from kkp_readiness.probes.dns import DnsServer
from kkp_readiness.probes.egress import HttpAnswer
from kkp_readiness.profile import LoadedProfile
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect


# Ensures the installation can start at all: the bastion answers SSH and lets the operator in with the key.
@pytest.mark.requirement("ACCESS-001")
def test_bastion_accepts_the_key(bastion: Bastion, evidence: Evidence) -> None:
    subject = f"SSH login {bastion.user}@{bastion.host}:{bastion.port}"
    try:
        bastion.session()
    except ssh.SshAuthRejected as exc:
        evidence.attach("login", {"user": bastion.user, "key_file": bastion.key_file, "result": str(exc)})
        expect(False, subject, expected=f"a key of {bastion.key_file} is accepted", found=str(exc))
    result = bastion.run("uname -s")
    evidence.attach("uname -s on the bastion", {"exit_status": result.exit_status, "stdout": result.stdout})
    expect(result.stdout.strip() == "Linux", subject, expected="a Linux shell (uname -s: Linux)",
           found=f"uname -s: {result.stdout.strip() or result.stderr.strip()!r}")


def _judge_host_key(check: ssh.HostKeyCheck, subject: str, evidence: Evidence) -> None:
    evidence.attach(f"host key of {subject}", check.evidence)
    expect(check.verified_by is not None, subject,
           expected="a host key matching the pinned fingerprint or known_hosts", found=check.problem)


# Ensures the operator talks to the real bastion: its host key is verified, never trusted on first use.
@pytest.mark.requirement("ACCESS-002")
def test_bastion_host_key_verified(bastion: Bastion, evidence: Evidence) -> None:
    _judge_host_key(bastion.host_key(), f"bastion {bastion.host}:{bastion.port}", evidence)


def _judge_tools(bastion: Bastion, minimums: dict[str, str | None], kind: str, evidence: Evidence) -> None:
    findings = bastion.tools(minimums)
    evidence.attach(f"{kind} tools on the bastion", {f.tool: {"installed": f.installed, "version": f.version,
                                                             "minimum": f.minimum} for f in findings})
    problems = [f.problem for f in findings if f.problem]
    wanted = ", ".join(f"{t} >= {m}" if m else t for t, m in minimums.items())
    expect(not problems, f"{kind} tools on bastion {bastion.host}", expected=wanted, found="; ".join(problems))


# Ensures the tools the installation runs (kubeone, kubectl, helm, terraform, git) exist in usable versions.
@pytest.mark.requirement("ACCESS-003")
def test_required_tools(bastion: Bastion, profile: Profile, evidence: Evidence) -> None:
    configured = profile.bastion.tools if profile.bastion else {}
    minimums: dict[str, str | None] = {**ssh.REQUIRED_TOOLS,
                                       **{t: m for t, m in configured.items() if t not in ssh.OPTIONAL_TOOLS}}
    _judge_tools(bastion, minimums, "required", evidence)


# Recommends the helpers (yq, jq, fubectl) that the runbooks use; level optional: missing ones warn.
@pytest.mark.requirement("ACCESS-004")
def test_optional_tools(bastion: Bastion, profile: Profile, evidence: Evidence) -> None:
    configured = profile.bastion.tools if profile.bastion else {}
    _judge_tools(bastion, {t: configured.get(t) for t in ssh.OPTIONAL_TOOLS}, "optional", evidence)


# Ensures each seed node the profile lists answers SSH through the bastion, with a verified host key.
@pytest.mark.requirement("ACCESS-006")
def test_node_reachable_through_bastion(bastion: Bastion, bastion_node: str, evidence: Evidence) -> None:
    subject = f"node {bastion_node} through bastion {bastion.host}"
    bastion.session()  # an unusable bastion is an error of this check, not a finding about the node
    try:
        check = bastion.jump(bastion_node)
    except ssh.SshAuthRejected as exc:
        expect(False, subject, expected="the operator key is accepted", found=str(exc))
    except ssh.SshProbeError as exc:
        evidence.attach("jump", {"node": bastion_node, "result": str(exc)})
        expect(False, subject, expected="SSH answers through the bastion", found=str(exc))
    _judge_host_key(check, subject, evidence)


# Ensures the installation's load balancers answer from where it runs: each seed's API server, the
# ingress on HTTPS and HTTP, the nodeport proxies; one check per address and port, each named.
@pytest.mark.requirement("ACCESS-007")
def test_load_balancer_reachable(bastion: Bastion, lb_target: Target, evidence: Evidence) -> None:
    if lb_target.problem:
        raise ProbeError(f"{lb_target.what}: {lb_target.problem}")
    subject = f"{lb_target.what} {lb_target.host}:{lb_target.port} from bastion {bastion.host}"
    reach = bastion.reach(lb_target.host, lb_target.port)
    evidence.attach(f"TCP connect from the bastion to {lb_target.host}:{lb_target.port}",
                    {**reach.evidence, "what": lb_target.what, "address from": lb_target.source})
    expect(reach.connected, subject, expected=f"the bastion opens a TCP connection (address from {lb_target.source})",
           found=reach.detail)


# Ensures the installation's name lookups work from the bastion: every DNS server of the profile
# answers a query the bastion sends over UDP and one over TCP (large answers and zone data need TCP).
@pytest.mark.requirement("ACCESS-008")
def test_dns_servers_answer_from_bastion(bastion: Bastion, profile: Profile, evidence: Evidence) -> None:
    query_name = profile.base_domain
    findings = []
    for text in profile.dns.servers:
        server = DnsServer.parse(text)
        for transport in ("udp", "tcp"):
            ask = bastion.dns_udp if transport == "udp" else bastion.dns_tcp
            findings.append(ask(server, bastion_dns.make_query(query_name), profile.timeouts.dns))
    evidence.attach(f"DNS queries for {query_name} A sent by the bastion", [f.evidence for f in findings])
    problems = [f"{f.server} over {f.transport.upper()}: {f.detail}" for f in findings if not f.answered]
    expect(not problems, f"DNS servers from bastion {bastion.host}",
           expected=f"every server answers over UDP and TCP ({', '.join(profile.dns.servers)})",
           found="; ".join(problems))


# Ensures KKP's provisioning can start: the cloud provider's APIs answer from the bastion, over verified TLS,
# through the proxy unless no_proxy says otherwise.
@pytest.mark.requirement("ACCESS-005")
def test_cloud_apis_reachable_from_bastion(egress_route: Egress, loaded_profile: LoadedProfile,
                                           evidence: Evidence) -> None:
    profile = loaded_profile.profile
    apis = cloud_api_endpoints(loaded_profile)
    expect(bool(apis), f"the profile's {profile.cloud.provider} section", expected="the provider's API endpoints",
           found="none named")
    egress_route.connector()  # an unusable bastion: one error now, not one per endpoint

    def ask(api: CloudApi) -> HttpAnswer:
        return egress_route.request(api.url, ca_bundle=api.ca_bundle or egress_route.internet_ca())

    answers = map_concurrently(ask, apis)
    evidence.attach(f"{profile.cloud.provider} APIs from {egress_route.origin}",
                    [{"what": api.what, **a.to_dict()} for api, a in zip(apis, answers, strict=True)])
    problems = [f"{api.what}: {a.summary()}" for api, a in zip(apis, answers, strict=True) if not a.answered]
    expect(not problems, f"{profile.cloud.provider} API endpoints from {egress_route.origin}",
           expected="each answers over verified TLS (any HTTP status)", found="; ".join(problems))

