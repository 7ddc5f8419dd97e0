"""AUTH: the OpenID Connect provider KKP logs users in with: Dex in the master cluster (AUTH-001,
AUTH-002, read from the cluster), and the provider as its clients reach it over the network.

Dex (KKP's default) must publish its discovery document under the base domain; an own provider
publishes it at its issuer, with the endpoints and signing keys that clients need. Documents are
read over verified HTTPS (:mod:`kkp_readiness.probes.http`) from the address the profile's DNS
gives, as the CERT checks connect. A certificate that does not verify fails the requirement
("answers over verified HTTPS" is part of it); a provider that cannot be reached, answers an HTTP
error or no JSON is an ``error``: the suite could not look. Issuers are compared exactly
(:func:`kkp_readiness.oidc.issuer_difference` names the part that differs).
"""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.cluster import Clusters, installed_kkp
from fixtures.site import HttpObserver, SeedTarget, TlsObserver
from kkp_readiness import dex_config
from kkp_readiness import kube_facts as facts
from kkp_readiness import network_facts as net
from kkp_readiness.errors import HttpProbeError, KubeProbeError
from kkp_readiness.evidence import Evidence
from kkp_readiness.oidc import (
    REQUIRED_ENDPOINTS,
    configured_issuer,
    dex_discovery_url,
    discovery_url,
    endpoint_problems,
    issuer_difference,
    key_summary,
    signing_keys,
)
from kkp_readiness.probes.http import JsonAnswer
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect


def where(answer: JsonAnswer) -> str:
    return f"{answer.url} (at {answer.address}:{answer.port})"


def discovery_evidence(answer: JsonAnswer) -> dict[str, Any]:
    """The exchange and what the discovery document declares: issuer and endpoints (it holds no secrets)."""
    declared = {
        name: value for name, value in (answer.document or {}).items()
        if name == "issuer" or name == "jwks_uri" or name.endswith("_endpoint")
    }
    return {**answer.to_dict(with_document=False), "declared": declared}


def trusted_store(profile: Profile) -> str:
    return profile.certificates.ca_bundle or "the system trust store"


def expect_verified(answer: JsonAnswer, profile: Profile) -> None:
    expect(answer.verified, where(answer),
           expected=f"an HTTPS answer with a certificate that verifies for the name against {trusted_store(profile)}",
           found=answer.certificate_error or "")


def expect_issuer(answer: JsonAnswer, issuer: str) -> None:
    found = (answer.document or {}).get("issuer")
    difference = issuer_difference(issuer, found)
    expect(difference is None, where(answer),
           expected=f"issuer {issuer!r}, the issuer KKP is configured with",
           found=f"issuer {found!r}: {difference}")


def describe_keys(jwks: dict[str, Any]) -> str:
    summary = key_summary(jwks)
    if isinstance(summary, str):
        return summary
    if not summary:
        return "an empty key set"
    listed = ", ".join(
        item if isinstance(item, str)
        else f"kid {item.get('kid', '(none)')!r} (kty {item.get('kty', '(none)')}, use {item.get('use', '(unset)')})"
        for item in summary
    )
    return f"{len(summary)} key(s), none usable for signing: {listed}"


# Ensures Dex answers its discovery document under the base domain over verified HTTPS, with KKP's issuer.
@pytest.mark.requirement("AUTH-003")
def test_dex_discovery_document(profile: Profile, tls: TlsObserver, http: HttpObserver,
                                evidence: Evidence) -> None:
    answer = http.get(dex_discovery_url(profile), tls.endpoint(profile.base_domain))
    evidence.attach("Dex discovery document", discovery_evidence(answer))
    expect_verified(answer, profile)
    expect_issuer(answer, configured_issuer(profile))


# Ensures the own OIDC provider publishes its discovery document at its issuer, over verified HTTPS, with that issuer.
@pytest.mark.requirement("AUTH-004")
def test_provider_discovery_document(profile: Profile, http: HttpObserver, evidence: Evidence) -> None:
    issuer = configured_issuer(profile)
    answer = http.get(discovery_url(issuer))
    evidence.attach("OIDC provider discovery document", discovery_evidence(answer))
    expect_verified(answer, profile)
    expect_issuer(answer, issuer)


# Ensures the own provider names its endpoints and its jwks_uri serves a signing key over verified HTTPS.
@pytest.mark.requirement("AUTH-005")
def test_provider_signing_keys(profile: Profile, http: HttpObserver, evidence: Evidence) -> None:
    answer = http.get(discovery_url(configured_issuer(profile)))
    evidence.attach("OIDC provider discovery document", discovery_evidence(answer))
    if not answer.verified or answer.document is None:
        raise HttpProbeError(f"the endpoints cannot be judged: {where(answer)} did not verify "
                             f"({answer.certificate_error}); see AUTH-004")
    problems = endpoint_problems(answer.document)
    expect(not problems, f"discovery document {answer.url}",
           expected=f"{', '.join(REQUIRED_ENDPOINTS)} as https:// URLs",
           found="; ".join(f"{name} {problem}" for name, problem in problems.items()))
    keys = http.get(answer.document["jwks_uri"])
    evidence.attach("OIDC provider signing keys (JWK set, key material left out)",
                    {**keys.to_dict(with_document=False),
                     "keys": key_summary(keys.document) if keys.document is not None else None})
    expect_verified(keys, profile)
    jwks = keys.document or {}
    expect(bool(signing_keys(jwks)), where(keys),
           expected="a JWK set with at least one key for signing (use sig or unset, with kty and kid)",
           found=describe_keys(jwks))


# --------------------------------------------------------------------------- cluster side (Dex in the master)


def dex_configuration(clusters: Clusters, seed: SeedTarget) -> dict[str, Any]:
    """Dex's secret-free configuration summary (:mod:`kkp_readiness.dex_config`), skipping where Dex
    is not yet to be expected: before the KKP installation and outside the master cluster."""
    installed_kkp(clusters, seed, "Dex", master=True)
    return clusters(seed).document(dex_config.DOCUMENT)


# Ensures Dex, which every KKP login goes through, runs with all its replicas ready.
@pytest.mark.requirement("AUTH-001")
def test_dex_deployed_and_ready(clusters: Clusters, seed: SeedTarget, evidence: Evidence) -> None:
    installed_kkp(clusters, seed, "Dex", master=True)
    reader = clusters(seed)
    found = [d for location in dex_config.LOCATIONS for d in net.workloads(reader, location.namespace, ("deployments",))
             if facts.name(d) == location.deployment]
    states = {net.ref(d): net.workload_summary(d) for d in found}
    evidence.attach("Dex deployments", states)
    places = " or ".join(f"{loc.namespace}/{loc.deployment}" for loc in dex_config.LOCATIONS)
    expect(any(net.workload_ready(d) for d in found), f"Dex in seed {seed}",
           expected=f"Deployment {places} with every replica ready",
           found=", ".join(f"{ref}: {state}" for ref, state in states.items()) or "not deployed")


# Ensures users can log in: Dex has a connector (or static users), and the ones the profile plans.
@pytest.mark.requirement("AUTH-002")
def test_dex_has_connector(clusters: Clusters, seed: SeedTarget, profile: Profile, evidence: Evidence) -> None:
    summary = dex_configuration(clusters, seed)
    evidence.attach("Dex configuration (secret-free summary)", summary)
    if summary.get("location") is None:
        where = " or ".join(location.describe() for location in dex_config.LOCATIONS)
        raise KubeProbeError(f"cannot judge: no Dex configuration in seed {seed} ({where}); AUTH-001 tells whether "
                             "Dex is deployed")
    connectors = summary["connectors"]
    static_users = summary["enablePasswordDB"] and summary["staticPasswords"] > 0
    described = ", ".join(f"{c['type']} {c['id']}" for c in connectors) or "no connector"
    if summary["enablePasswordDB"]:
        described += f"; password database on with {summary['staticPasswords']} static user(s)"
    expect(bool(connectors) or static_users, f"Dex configuration in {summary['location']}",
           expected="at least one connector, or enablePasswordDB with static passwords", found=described)
    planned = set(profile.auth.dex_connectors)
    present = {c["type"] for c in connectors} | {c["id"] for c in connectors}
    expect(planned <= present, f"Dex configuration in {summary['location']}",
           expected=f"the connectors the profile plans (auth.dex_connectors): {', '.join(sorted(planned))}",
           found=described)
