"""PROXY: the way out of the site: KKP's allowlist through the proxy, or the offline mirror.

Every request starts at the bastion (``egress_route``) and goes through the profile's proxy, as the
installation's own downloads will; hosts come from KKP's allowlist (``data/proxy_allowlist.yaml``).
"""

from __future__ import annotations

import pytest

from fixtures.egress import Egress, judge_images, mirror_host, mirror_spec
from kkp_readiness.allowlist import GROUPS, targets_for
from kkp_readiness.evidence import Evidence
from kkp_readiness.parallel import map_concurrently
from kkp_readiness.probes.registry import ImageRef, RegistrySession
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect


def _judge_allowlist(egress_route: Egress, group: str, profile: Profile, evidence: Evidence) -> None:
    """Each target of the group answers (any HTTP status over verified TLS); each failure named with what was tried."""
    targets = targets_for(group, profile.infra.operating_systems)
    egress_route.connector()  # an unusable bastion: one error now, not one per target
    answers = map_concurrently(lambda t: egress_route.request(t.url, ca_bundle=egress_route.internet_ca()), targets)
    evidence.attach(f"allowlist {group} from {egress_route.origin}",
                    [{**a.to_dict(), "why": t.why, "docs": t.docs} for t, a in zip(targets, answers, strict=True)])
    unreachable = [a.summary() for a in answers if not a.answered]
    proxies = sorted({a.via for a in answers} - {"direct"})
    expect(not unreachable, f"{len(targets)} allowlisted {group.replace('_', ' ')} hosts from {egress_route.origin}",
           expected="each answers over verified TLS (any HTTP status)"
                    + (f" through the proxy {', '.join(proxies)}" if proxies else ""),
           found="; ".join(unreachable))


# Ensures the nodes, clusters, seed set-up and bastion can download what they need: every host of the
# allowlist group (PROXY-001 registries, -002 binaries and tools, -003 OS packages, -004 the ACME directory).
@pytest.mark.parametrize("group", [pytest.param(group, marks=pytest.mark.requirement(requirement_id), id=group)
                                   for group, requirement_id in GROUPS.items()])
def test_allowlisted_hosts_reachable(group: str, egress_route: Egress, profile: Profile, evidence: Evidence) -> None:
    _judge_allowlist(egress_route, group, profile, evidence)


# Ensures the proxy the profile names answers, takes its credentials and opens tunnels to port 443.
@pytest.mark.requirement("PROXY-005")
def test_proxy_tunnels(egress_route: Egress, profile: Profile, evidence: Evidence) -> None:
    if not profile.proxy.https:
        pytest.skip("the profile sets no HTTPS proxy (proxy.https): the allowlist checks go direct")
    target = targets_for("registries")[0]
    answer = egress_route.request(target.url, ca_bundle=egress_route.internet_ca())
    evidence.attach(f"CONNECT through {profile.proxy.https}", answer.to_dict())
    expect(answer.stage not in ("connect", "proxy"), f"proxy {profile.proxy.https} from {egress_route.origin}",
           expected=f"a CONNECT tunnel to {target.host}:443 with the profile's credentials",
           found=answer.problem or "")


# --- offline mirror ------------------------------------------------------------------------------


# Ensures the offline mirror is a registry the clusters can pull from (Registry HTTP API v2, verified TLS).
@pytest.mark.requirement("PROXY-006")
def test_mirror_speaks_v2(mirror: RegistrySession, profile: Profile, evidence: Evidence) -> None:
    problem = mirror.speaks_v2()
    evidence.attach("GET /v2/ of the mirror", mirror.api().to_dict())
    expect(problem is None, f"mirror {mirror.base_url}",
           expected="GET /v2/ answers 200, or 401 with a WWW-Authenticate challenge, over verified TLS",
           found=problem or "")


# Ensures the mirror credentials of the profile log in (Basic, or a token from the registry's token service).
@pytest.mark.requirement("PROXY-007")
def test_mirror_credentials(mirror: RegistrySession, profile: Profile, evidence: Evidence) -> None:
    images = mirror_spec(profile).images
    repository = ImageRef.parse(images[0]).repository if images else "library/busybox"
    access = mirror.access(repository)
    evidence.attach("mirror login", {"how": access.how, "problem": access.problem,
                                     "answer": access.answer.to_dict() if access.answer else None})
    expect(access.problem is None, f"mirror {mirror.base_url} with {mirror_spec(profile).username or 'no credentials'}",
           expected="the credentials are accepted for pulling", found=access.problem or "")


# Ensures every image the profile lists has been mirrored (the clusters will pull nothing else).
@pytest.mark.requirement("PROXY-008")
def test_mirror_has_images(mirror: RegistrySession, profile: Profile, evidence: Evidence) -> None:
    images = mirror_spec(profile).images
    if not images:
        pytest.skip("the profile lists no images for the mirror (proxy.mirror.images)")
    judge_images(mirror, mirror_host(profile), images, evidence, f"mirror {mirror.base_url}")
