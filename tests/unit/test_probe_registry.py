"""The registry probe's parsing: image references, challenges, Docker config JSON; proxy bypass rules."""

from __future__ import annotations

import base64
import json

import pytest

from fixtures.egress import bypasses_proxy
from kkp_readiness.allowlist import GROUPS, load_allowlist, targets_for
from kkp_readiness.probes.egress import HttpAnswer, Proxy
from kkp_readiness.probes.registry import Challenge, Credentials, ImageRef, RegistrySession


@pytest.mark.parametrize(("text", "expected"), [
    ("quay.io/kubermatic/kubermatic-ee:v2.28.2", ("quay.io", "kubermatic/kubermatic-ee", "v2.28.2")),
    ("registry.k8s.io/pause:3.10", ("registry.k8s.io", "pause", "3.10")),
    ("nginx", ("docker.io", "library/nginx", "latest")),
    ("calico/node:v3.28.0", ("docker.io", "calico/node", "v3.28.0")),
    ("localhost:5000/a/b@sha256:abc", ("localhost:5000", "a/b", "sha256:abc")),
    ("registry.example.com:5000/kubermatic/dashboard", ("registry.example.com:5000", "kubermatic/dashboard",
                                                         "latest")),
])
def test_image_references_split_as_runtimes_split_them(text: str, expected: tuple[str, str, str]) -> None:
    image = ImageRef.parse(text)
    assert (image.registry, image.repository, image.reference) == expected


def test_a_mirrored_image_keeps_its_path() -> None:
    image = ImageRef.parse("quay.io/kubermatic/kubermatic-ee:v2.28.2").in_registry("registry.example.com")
    assert str(image) == "registry.example.com/kubermatic/kubermatic-ee:v2.28.2"


def test_challenges_parse() -> None:
    bearer = Challenge.parse('Bearer realm="https://quay.io/v2/auth",service="quay.io"')
    assert bearer == Challenge("bearer", {"realm": "https://quay.io/v2/auth", "service": "quay.io"})
    assert Challenge.parse('Basic realm="mirror"') == Challenge("basic", {"realm": "mirror"})
    assert Challenge.parse("") is None


def test_docker_config_credentials_never_show_the_password() -> None:
    auth = base64.b64encode(b"robot+ci:s3cr3t-value").decode()
    credentials = Credentials.from_docker_config(json.dumps({"auths": {"https://quay.io/v1/": {"auth": auth}}}),
                                                 "quay.io")
    assert (credentials.username, credentials.password) == ("robot+ci", "s3cr3t-value")
    assert "s3cr3t" not in repr(credentials)
    with pytest.raises(ValueError, match=r"no entry for quay\.io") as missing:
        Credentials.from_docker_config(json.dumps({"auths": {"ghcr.io": {"auth": auth}}}), "quay.io")
    assert "s3cr3t" not in str(missing.value)
    with pytest.raises(ValueError, match="not a Docker config JSON"):
        Credentials.from_docker_config("robot+ci:s3cr3t-value", "quay.io")


def test_token_flow_asks_the_realm_with_the_credentials() -> None:
    """The probe follows the challenge: 401 with a Bearer realm, then the realm with Basic credentials."""
    asked: list[tuple[str, dict[str, str]]] = []

    def fetch(url: str, method: str, headers: dict[str, str]) -> HttpAnswer:
        asked.append((url, headers))
        if url.endswith("/v2/"):
            return HttpAnswer(url, method, "direct", 401, "Unauthorized",
                              {"www-authenticate": 'Bearer realm="https://auth.example.com/token",service="reg"'})
        if url.startswith("https://auth.example.com/token"):
            return HttpAnswer(url, method, "direct", 200, "OK", {}, body=b'{"token": "t0k"}')
        return HttpAnswer(url, method, "direct", 200 if headers.get("Authorization") == "Bearer t0k" else 401)

    session = RegistrySession("https://reg.example.com", fetch, Credentials("u", "p"))
    access, answer = session.manifest(ImageRef.parse("reg.example.com/team/app:1.0"))
    assert access.problem is None
    assert answer is not None
    assert answer.status == 200
    assert asked[1][0] == "https://auth.example.com/token?service=reg&scope=repository%3Ateam%2Fapp%3Apull"
    assert asked[1][1]["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


@pytest.mark.parametrize(("host", "no_proxy", "bypass"), [
    ("registry.kkp.lab", [".kkp.lab"], True), ("kkp.lab", [".kkp.lab"], True), ("quay.io", [".kkp.lab"], False),
    ("quay.io", ["*"], True), ("notquay.io", ["quay.io"], False), ("a.quay.io", ["quay.io"], True),
])
def test_no_proxy_as_curl_reads_it(host: str, no_proxy: list[str], bypass: bool) -> None:
    assert bypasses_proxy(host, no_proxy) is bypass


def test_proxy_url_never_shows_credentials() -> None:
    proxy = Proxy.from_url("http://proxy.example.com:3128", "user:pa55")
    assert proxy.url == "http://proxy.example.com:3128"
    assert "pa55" not in repr(proxy)
    with pytest.raises(ValueError, match="http://host:port"):
        Proxy.from_url("socks5://proxy.example.com:1080")


def test_the_allowlist_covers_every_group_with_docs() -> None:
    allowlist = load_allowlist()
    assert set(allowlist) == set(GROUPS)
    assert all(t.docs.startswith("https://") and t.why for targets in allowlist.values() for t in targets)
    assert {t.host for t in targets_for("os_packages", ["flatcar"])} == {"update.release.flatcar-linux.net"}
    assert "archive.ubuntu.com" in {t.host for t in targets_for("os_packages", ["ubuntu"])}
