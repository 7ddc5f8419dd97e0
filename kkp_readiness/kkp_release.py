"""What a KKP release is made of, as Kubermatic publishes it: the installer archive and the images.

Why one place: the INSTALLER checks look for exactly these names (on GitHub, in the mirror, on quay.io)
and the lab publishes exactly these names; both must agree with each other and with the release pages.
"""

from __future__ import annotations

#: Where GitHub serves a release's assets: ``<RELEASES_URL>/<tag>/<asset>``.
RELEASES_URL = "https://github.com/kubermatic/kubermatic/releases/download"


def installer_archive(edition: str, release: str) -> str:
    """The installer archive of a release for Linux amd64: ``kubermatic-<ce|ee>-<tag>-linux-amd64.tar.gz``."""
    return f"kubermatic-{edition}-{release}-linux-amd64.tar.gz"


def archive_url(edition: str, release: str) -> str:
    return f"{RELEASES_URL}/{release}/{installer_archive(edition, release)}"


def release_images(edition: str, release: str) -> tuple[str, ...]:
    """The release's own images (the operator runs from the kubermatic image): API/controllers and dashboard."""
    suffix = "-ee" if edition == "ee" else ""
    return (f"quay.io/kubermatic/kubermatic{suffix}:{release}", f"quay.io/kubermatic/dashboard{suffix}:{release}")
