"""INSTALLER: the pinned KKP release can be obtained, and the Enterprise Edition pull secret works.

Requests start at the bastion and go through the profile's proxy (``egress_route``), as the
installer's download and the clusters' image pulls will.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest

from fixtures.bastion import Bastion
from fixtures.egress import Egress, judge_images, mirror_host
from kkp_readiness.evidence import Evidence
from kkp_readiness.kkp_release import archive_url, installer_archive, release_images
from kkp_readiness.probes.egress import HttpAnswer
from kkp_readiness.probes.registry import Credentials, ImageRef, RegistrySession
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect

#: GitHub answers a release download with a redirect to its download host; more hops is a loop.
MAX_REDIRECTS = 5
GZIP_MAGIC = b"\x1f\x8b"


def _pinned_release(profile: Profile) -> str:
    expect(bool(profile.installer.release), "the profile's installer section",
           expected="a pinned KKP release (installer.release, e.g. v2.28.2)", found="no release pinned")
    return str(profile.installer.release)


def _download_start(egress_route: Egress, url: str) -> list[HttpAnswer]:
    """The first KiB of ``url``, following https redirects (GitHub sends release downloads elsewhere)."""
    hops = []
    for _ in range(MAX_REDIRECTS + 1):
        answer = egress_route.request(url, headers={"Range": "bytes=0-1023"}, ca_bundle=egress_route.internet_ca())
        hops.append(answer)
        location = answer.header("location")
        if answer.status not in (301, 302, 303, 307, 308) or not location:
            return hops
        url = urljoin(url, location)
        if urlsplit(url).scheme != "https":
            return hops
    return hops


# Ensures the installation can start: the installer archive of the pinned release downloads over verified HTTPS.
@pytest.mark.requirement("INSTALLER-001")
def test_release_downloads(egress_route: Egress, profile: Profile, evidence: Evidence) -> None:
    release = _pinned_release(profile)
    url = archive_url(profile.kkp.edition, release)
    hops = _download_start(egress_route, url)
    archive = installer_archive(profile.kkp.edition, release)
    evidence.attach(f"download of {archive} from {egress_route.origin}", [h.to_dict() for h in hops])
    last = hops[-1]
    found = last.summary() if last.status not in (200, 206) else \
        "" if last.body.startswith(GZIP_MAGIC) else f"{last.url} answered {last.status} but not with a gzip archive"
    expect(not found, f"KKP {release} ({profile.kkp.edition.upper()}) from {egress_route.origin}",
           expected=f"{url} downloads (200/206, a gzip archive), redirects followed", found=found)


# Ensures an air-gapped installation has the pinned release inside the site: the archive on the bastion,
# the release's images in the mirror.
@pytest.mark.requirement("INSTALLER-002")
def test_release_in_offline_mirror(bastion: Bastion, profile: Profile, evidence: Evidence,
                                   request: pytest.FixtureRequest) -> None:
    release = _pinned_release(profile)
    path = profile.installer.offline_archive
    expect(bool(path), "the profile's installer section", expected="installer.offline_archive: the archive's path "
           "on the bastion", found="not set")
    result = bastion.run(f"head -c 2 -- '{path}' | od -An -tx1")
    evidence.attach(f"first bytes of {path} on the bastion", {"exit_status": result.exit_status,
                                                              "stdout": result.stdout, "stderr": result.stderr})
    expect(result.stdout.split() == ["1f", "8b"], f"installer archive on bastion {bastion.host}",
           expected=f"{path}: the gzip archive of KKP {release}",
           found=result.stderr.strip() or f"first bytes {result.stdout.strip() or '(none)'}")
    images = list(release_images(profile.kkp.edition, release))
    mirror = request.getfixturevalue("mirror")
    judge_images(mirror, mirror_host(profile), images, evidence, f"KKP {release} images in mirror {mirror.base_url}")


@pytest.fixture(scope="session")
def ee_registry(egress_route: Egress, profile: Profile) -> tuple[RegistrySession, ImageRef, str | None]:
    """The EE image's registry with the pull secret's credentials (or the reason there are none)."""
    image = ImageRef.parse(f"{profile.installer.ee_image}:{profile.installer.release or 'latest'}")
    credentials, problem = None, None
    if profile.installer.pull_secret is None:
        problem = "the profile references no pull secret (installer.pull_secret)"
    else:
        try:
            credentials = Credentials.from_docker_config(profile.installer.pull_secret.reveal(), image.registry)
        except ValueError as exc:
            problem = str(exc)
    fetch = egress_route.fetcher(egress_route.internet_ca())
    session = RegistrySession(f"https://{image.registry}", fetch, credentials)
    return session, image, problem


# Ensures the EE pull secret logs in to the EE registry (its token service hands out a token).
@pytest.mark.requirement("INSTALLER-003")
def test_pull_secret_authenticates(ee_registry: tuple[RegistrySession, ImageRef, str | None],
                                   evidence: Evidence) -> None:
    session, image, problem = ee_registry
    subject = f"EE pull secret at {image.registry}"
    expect(problem is None, subject, expected="a Docker config JSON with credentials for the registry",
           found=problem or "")
    access = session.access(image.repository)
    evidence.attach("EE registry login", {"how": access.how, "problem": access.problem,
                                          "answer": access.answer.to_dict() if access.answer else None})
    expect(access.problem is None and access.how.startswith("token"), subject,
           expected=f"a bearer token for repository:{image.repository}:pull through the registry's token flow",
           found=access.problem or f"no token flow ({access.how})")


# Ensures the pull secret can read the EE image of the pinned release, not only log in.
@pytest.mark.requirement("INSTALLER-004")
def test_pull_secret_reads_ee_image(ee_registry: tuple[RegistrySession, ImageRef, str | None], profile: Profile,
                                    evidence: Evidence) -> None:
    session, image, problem = ee_registry
    _pinned_release(profile)
    expect(problem is None, f"EE pull secret at {image.registry}",
           expected="a Docker config JSON with credentials for the registry", found=problem or "")
    access, answer = session.manifest(image)
    evidence.attach(f"HEAD manifest {image}", answer.to_dict() if answer else {"problem": access.problem})
    found = access.problem if answer is None else "" if answer.status == 200 else answer.summary()
    expect(not found, f"{image} with the EE pull secret", expected="manifest HEAD answers 200", found=found or "")
