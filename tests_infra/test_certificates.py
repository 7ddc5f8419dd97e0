"""CERT: the ingress certificate every KKP name is served with.

For each required name the suite makes a TLS handshake with SNI to the endpoint the name resolves
to (or the profile's override), records the presented chain once, and judges it per requirement
with cryptography's X.509 verifier: trust, name, one certificate for all, validity, renewal
window, complete chain, key strength.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from fixtures.cluster import Clusters, installed_kkp
from fixtures.site import SeedTarget, TlsObserver
from kkp_readiness import kkp_facts as kkp
from kkp_readiness import kube_facts as facts
from kkp_readiness import network_facts as net
from kkp_readiness.certs import (
    certificates_in,
    key_strength,
    name_covered,
    validity,
    verify_complete_chain,
    verify_trust,
)
from kkp_readiness.errors import KubeProbeError, TlsProbeError
from kkp_readiness.evidence import Evidence
from kkp_readiness.probes.tls import TlsObservation
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect


def observe(tls: TlsObserver, evidence: Evidence, name: str, with_pem: bool = False) -> TlsObservation:
    """Fetch (once per run) and attach the evidence: subject, SANs, issuer, validity, fingerprint, chain."""
    observation = tls.observe(name)
    details = observation.to_dict()
    if not with_pem:
        for certificate in details.get("chain", []):
            certificate.pop("pem", None)
    evidence.attach(f"TLS certificate served for {name}", details)
    return observation


def where(observation: TlsObservation) -> str:
    return f"{observation.server_name} at {observation.address}:{observation.port}"


# Ensures a client with the system store (or the profile's CA bundle) trusts the chain.
@pytest.mark.requirement("CERT-001")
def test_chain_is_trusted(tls: TlsObserver, certificate_name: str, trust_anchors: tuple, profile: Profile,
                          evidence: Evidence) -> None:
    observation = observe(tls, evidence, certificate_name, with_pem=True)
    verdict = verify_trust(observation.chain_der, trust_anchors)
    store = profile.certificates.ca_bundle or "the system trust store"
    expect(verdict.ok, where(observation),
           expected=f"a chain to a root in {store}",
           found=f"issuer {observation.leaf.issuer!r}: {verdict.reason}")


# Ensures the certificate covers the name it is served for (subjectAltName, wildcards one label deep).
@pytest.mark.requirement("CERT-002")
def test_certificate_covers_name(tls: TlsObserver, certificate_name: str, evidence: Evidence) -> None:
    observation = observe(tls, evidence, certificate_name)
    covering = name_covered(certificate_name, observation.leaf.sans_dns)
    expect(covering is not None, where(observation),
           expected=f"{certificate_name} in the subjectAltName (directly or by a wildcard)",
           found=f"subjectAltName DNS names {', '.join(observation.leaf.sans_dns) or '(none)'}")


# Ensures one certificate serves every name, as KKP's Helm charts take a single certificate.
@pytest.mark.requirement("CERT-003")
def test_one_certificate_for_all_names(tls: TlsObserver, profile: Profile, evidence: Evidence) -> None:
    if not profile.certificates.single_certificate:
        pytest.skip("the profile says the ingress does not take a single certificate (single_certificate: false)")
    by_fingerprint: dict[str, list[str]] = {}
    for name in profile.certificate_names():
        by_fingerprint.setdefault(tls.observe(name).leaf.sha256_fingerprint, []).append(name)
    evidence.attach("certificate per name (SHA-256 fingerprint)", by_fingerprint)
    expect(len(by_fingerprint) == 1, f"{len(profile.certificate_names())} ingress names",
           expected="the same certificate for every name",
           found="; ".join(f"{fp[:23]}… for {', '.join(names)}" for fp, names in by_fingerprint.items()))


# Ensures the certificate is inside its validity period now.
@pytest.mark.requirement("CERT-004")
def test_certificate_is_valid_now(tls: TlsObserver, certificate_name: str, now: datetime,
                                  evidence: Evidence) -> None:
    observation = observe(tls, evidence, certificate_name)
    state, days_left = validity(observation.leaf, now)
    expect(state == "valid", where(observation),
           expected=f"valid at {now:%Y-%m-%d %H:%M} UTC",
           found=f"{state}: valid from {observation.leaf.not_before:%Y-%m-%d} to "
                 f"{observation.leaf.not_after:%Y-%m-%d} ({days_left:.0f} days left)")


# Ensures renewal is not urgent: at least the profile's minimum days of validity remain.
@pytest.mark.requirement("CERT-005")
def test_certificate_renewal_window(tls: TlsObserver, certificate_name: str, now: datetime, profile: Profile,
                                    evidence: Evidence) -> None:
    observation = observe(tls, evidence, certificate_name)
    _, days_left = validity(observation.leaf, now)
    minimum = profile.certificates.min_days_left
    expect(days_left >= minimum, where(observation),
           expected=f"at least {minimum} days of validity left",
           found=f"{days_left:.1f} days left (expires {observation.leaf.not_after:%Y-%m-%d %H:%M} UTC)")


# Ensures the server sends every intermediate, so clients without the intermediate can build the chain.
@pytest.mark.requirement("CERT-006")
def test_chain_is_complete(tls: TlsObserver, certificate_name: str, trust_anchors: tuple,
                           evidence: Evidence) -> None:
    observation = observe(tls, evidence, certificate_name)
    verdict = verify_complete_chain(observation.chain_der, trust_anchors)
    if not verdict.judgeable:
        raise TlsProbeError(f"completeness cannot be judged: {verdict.reason} (see CERT-001)")
    expect(verdict.ok, where(observation),
           expected="leaf and every intermediate up to a trusted root",
           found=f"{len(observation.chain)} certificate(s) presented: {verdict.reason}")


# Ensures the key is strong enough (RSA >= 2048 bits, ECDSA P-256 or better).
@pytest.mark.requirement("CERT-007")
def test_key_is_strong_enough(tls: TlsObserver, certificate_name: str, profile: Profile,
                              evidence: Evidence) -> None:
    observation = observe(tls, evidence, certificate_name)
    ok, described = key_strength(observation.leaf, profile.certificates.min_rsa_bits,
                                 profile.certificates.min_ec_bits)
    expect(ok, where(observation),
           expected=f"RSA >= {profile.certificates.min_rsa_bits} bits or EC >= {profile.certificates.min_ec_bits} bits",
           found=described)


# --------------------------------------------------------------------------- cluster side


# Ensures cert-manager can issue the KKP certificate: its three workloads ready, the ClusterIssuer Ready.
@pytest.mark.requirement("CERT-101")
def test_cert_manager_issuer_ready(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                   evidence: Evidence) -> None:
    installed_kkp(clusters, seed, "cert-manager and the KKP ClusterIssuer", master=True)
    reader = clusters(seed)
    deployments = {facts.name(d): d for d in net.workloads(reader, kkp.CERT_MANAGER_NAMESPACE, ("deployments",))}
    states = {name: net.workload_summary(deployments[name]) if name in deployments else "not deployed"
              for name in kkp.CERT_MANAGER_DEPLOYMENTS}
    issuer_name = profile.certificates.cluster_issuer
    issuer = kkp.find_cluster_issuer(reader, issuer_name)
    ready, condition = kkp.ready_condition(issuer)
    evidence.attach("cert-manager", {"deployments": states, f"ClusterIssuer {issuer_name}": condition
                                     if issuer else "absent"})
    not_ready = {n: s for n, s in states.items() if n not in deployments or not net.workload_ready(deployments[n])}
    expect(not not_ready, f"cert-manager in seed {seed}",
           expected=f"ready Deployments {', '.join(kkp.CERT_MANAGER_DEPLOYMENTS)} in namespace "
                    f"{kkp.CERT_MANAGER_NAMESPACE}",
           found=", ".join(f"{n}: {s}" for n, s in not_ready.items()))
    expect(issuer is not None and ready, f"ClusterIssuer {issuer_name} (certificates.cluster_issuer) in seed {seed}",
           expected="the ClusterIssuer with condition Ready=True",
           found=condition if issuer is not None else "no such ClusterIssuer")


# Ensures ACME challenges can be solved on a private network: a DNS01 solver covers the base domain.
@pytest.mark.requirement("CERT-102")
def test_acme_uses_dns01_on_private_networks(clusters: Clusters, seed: SeedTarget, profile: Profile,
                                              evidence: Evidence) -> None:
    if profile.ingress.internet_facing:
        pytest.skip("the KKP names are reachable from the internet (ingress.internet_facing): HTTP01 can work")
    installed_kkp(clusters, seed, "the KKP ClusterIssuer", master=True)
    issuer_name = profile.certificates.cluster_issuer
    issuer = kkp.find_cluster_issuer(clusters(seed), issuer_name)
    if issuer is None:
        raise KubeProbeError(f"cannot judge: no ClusterIssuer {issuer_name} in seed {seed} (CERT-101 reports it)")
    solvers = kkp.acme_solvers(issuer)
    evidence.attach(f"ACME solvers of ClusterIssuer {issuer_name} (type, provider, selector)",
                    [kkp.describe_solver(i, s) for i, s in enumerate(solvers)])
    chosen = kkp.solver_for(issuer, profile.base_domain)
    if "acme" not in (issuer.get("spec") or {}):
        found = "not an ACME issuer"
    elif chosen is None:
        found = f"no solver applies to {profile.base_domain}: " + (
            "; ".join(kkp.describe_solver(i, s) for i, s in enumerate(solvers)) or "none")
    else:
        found = f"cert-manager picks {kkp.describe_solver(*chosen)}"
    expect(chosen is not None and "dns01" in chosen[1], f"ClusterIssuer {issuer_name} of seed {seed} (private network)",
           expected=f"the solver cert-manager picks for {profile.base_domain} to be DNS01", found=found)


# Ensures KKP's components trust the certificate the ingress serves: the CA bundle KKP is configured
# with anchors the served chain.
@pytest.mark.requirement("CERT-103")
def test_kkp_ca_bundle_trusts_served_certificate(clusters: Clusters, seed: SeedTarget, tls: TlsObserver,
                                                 profile: Profile, evidence: Evidence) -> None:
    objects = installed_kkp(clusters, seed, "KKP's CA bundle", master=True)
    spec = (objects.configuration or {}).get("spec") or {}
    name = (spec.get("caBundle") or {}).get("name") or kkp.CA_BUNDLE_DEFAULT
    namespace = ((objects.configuration or {}).get("metadata") or {}).get("namespace") or kkp.KKP_NAMESPACE
    config_maps = {facts.name(c): c for c in clusters(seed).list("configmaps", namespace=namespace)}
    pem = ((config_maps.get(name) or {}).get("data") or {}).get(kkp.CA_BUNDLE_KEY, "")
    bundle = certificates_in(pem.encode())
    evidence.attach("KKP CA bundle", {"configmap": f"{namespace}/{name}", "key": kkp.CA_BUNDLE_KEY,
                                      "certificates": [c.subject.rfc4514_string() for c in bundle]})
    expect(bool(bundle), f"KKP CA bundle of seed {seed}",
           expected=f"certificates under {kkp.CA_BUNDLE_KEY} in ConfigMap {namespace}/{name} "
                    "(KubermaticConfiguration spec.caBundle)",
           found="no such ConfigMap" if name not in config_maps else "no certificate in it")
    observation = observe(tls, evidence, profile.base_domain)
    verdict = verify_trust(observation.chain_der, bundle)
    expect(verdict.ok, f"KKP CA bundle {namespace}/{name} against {where(observation)}",
           expected="the CA that issued the served certificate chain",
           found=f"issuer {observation.leaf.issuer!r}: {verdict.reason}")
