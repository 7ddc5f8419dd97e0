"""The OpenID Connect judgements (kkp_readiness.oidc) and the profile's auth section they read."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kkp_readiness.errors import ProfileError
from kkp_readiness.oidc import (
    configured_issuer,
    dex_discovery_url,
    discovery_url,
    endpoint_problems,
    https_url,
    issuer_difference,
    key_summary,
    signing_keys,
)
from kkp_readiness.profile import load_profile
from kkp_readiness.profile_model import Profile

MINIMAL = """\
    name: site
    base_domain: kkp.example.com
    ingress: {addresses: [192.0.2.10]}
    dns: {servers: [192.0.2.53]}
    seeds: [{name: seed, nodeport_proxy_addresses: [192.0.2.11]}]
"""


def profile_with(tmp_path: Path, extra: str = "") -> Profile:
    path = tmp_path / "site.yaml"
    path.write_text(textwrap.dedent(MINIMAL) + textwrap.dedent(extra))
    return load_profile(str(path)).profile


# --- which issuer KKP expects ------------------------------------------------------------------------


def test_dex_issuer_defaults_to_the_base_domain(tmp_path: Path) -> None:
    profile = profile_with(tmp_path)
    assert configured_issuer(profile) == "https://kkp.example.com/dex"
    assert dex_discovery_url(profile) == "https://kkp.example.com/dex/.well-known/openid-configuration"


def test_dex_issuer_default_carries_a_non_standard_ingress_port(tmp_path: Path) -> None:
    profile = profile_with(tmp_path, "certificates: {port: 8443}\n")
    assert configured_issuer(profile) == "https://kkp.example.com:8443/dex"
    assert dex_discovery_url(profile) == "https://kkp.example.com:8443/dex/.well-known/openid-configuration"


def test_configured_issuer_wins_over_the_default(tmp_path: Path) -> None:
    profile = profile_with(tmp_path, "auth: {oidc_issuer: 'https://login.example.com/dex'}\n")
    assert configured_issuer(profile) == "https://login.example.com/dex"
    assert dex_discovery_url(profile) == "https://kkp.example.com/dex/.well-known/openid-configuration"


def test_own_provider_needs_an_issuer(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="provider oidc needs oidc_issuer"):
        profile_with(tmp_path, "auth: {provider: oidc}\n")


@pytest.mark.parametrize("issuer", [
    "http://sso.example.com/realms/kkp",
    "sso.example.com/realms/kkp",
    "https://sso.example.com/realms/kkp?x=1",
    "https://sso.example.com/realms/kkp#top",
    "https:///realms/kkp",
])
def test_issuer_must_be_an_https_url_without_query_or_fragment(tmp_path: Path, issuer: str) -> None:
    with pytest.raises(ProfileError, match=r"auth\.oidc_issuer"):
        profile_with(tmp_path, f"auth: {{provider: oidc, oidc_issuer: '{issuer}'}}\n")


def test_issuer_with_credentials_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="must not contain credentials"):
        profile_with(tmp_path, "auth: {provider: oidc, oidc_issuer: 'https://u:p4ssword@sso.example.com/'}\n")


def test_https_url_writes_the_port_only_when_not_443() -> None:
    assert https_url("kkp.lab", 443, "/dex") == "https://kkp.lab/dex"
    assert https_url("kkp.lab", 31443, "/dex") == "https://kkp.lab:31443/dex"
    assert https_url("2001:db8::1", 8443, "/x") == "https://[2001:db8::1]:8443/x"


def test_discovery_url_drops_a_terminating_slash() -> None:
    assert discovery_url("https://sso/realms/kkp") == "https://sso/realms/kkp/.well-known/openid-configuration"
    assert discovery_url("https://sso/realms/kkp/") == "https://sso/realms/kkp/.well-known/openid-configuration"
    assert discovery_url("https://sso") == "https://sso/.well-known/openid-configuration"


# --- issuer comparison ---------------------------------------------------------------------------------

EXPECTED = "https://kkp.example.com/dex"


@pytest.mark.parametrize(("found", "says"), [
    ("https://kkp.example.com/dex/", "path '/dex/' instead of '/dex' (a trailing slash)"),
    ("http://kkp.example.com/dex", "scheme http instead of https"),
    ("https://login.example.com/dex", "host login.example.com instead of kkp.example.com"),
    ("https://kkp.example.com:443/dex", "port 443 instead of none"),
    ("https://kkp.example.com:8443/dex", "port 8443 instead of none"),
    ("https://kkp.example.com/auth", "path '/auth' instead of '/dex'"),
    ("https://KKP.example.com/dex", "the host's letter case"),
    ("HTTPS://kkp.example.com/dex", "the scheme's letter case"),
    ("https://kkp.example.com/dex?x", "the query or fragment"),
    ("http://login.example.com/dex/", "scheme http instead of https; host login.example.com instead of "
                                      "kkp.example.com; path '/dex/' instead of '/dex' (a trailing slash)"),
    (None, "the document declares no issuer"),
    (42, "the issuer is not a string but int 42"),
    ("", "scheme (none) instead of https; host (none) instead of kkp.example.com; path '' instead of '/dex'"),
])
def test_issuer_difference_names_what_differs(found: object, says: str) -> None:
    assert issuer_difference(EXPECTED, found) == says


def test_identical_issuers_do_not_differ() -> None:
    assert issuer_difference(EXPECTED, EXPECTED) is None
    assert issuer_difference("https://kkp.lab:31443/dex", "https://kkp.lab:31443/dex") is None


def test_expected_with_a_port_and_found_without() -> None:
    assert issuer_difference("https://kkp.lab:31443/dex", "https://kkp.lab/dex") == "port none instead of 31443"


# --- endpoints and keys --------------------------------------------------------------------------------

ENDPOINTS = {
    "authorization_endpoint": "https://sso/auth",
    "token_endpoint": "https://sso/token",
    "jwks_uri": "https://sso/certs",
}


def test_complete_endpoints_have_no_problem() -> None:
    assert endpoint_problems(ENDPOINTS) == {}


def test_endpoint_problems_name_each_endpoint() -> None:
    document = {"authorization_endpoint": "", "token_endpoint": ["https://sso/token"], "jwks_uri": "/certs"}
    assert endpoint_problems(document) == {
        "authorization_endpoint": "missing",
        "token_endpoint": "not a URL but list ['https://sso/token']",
        "jwks_uri": "'/certs' is not an https:// URL",
    }
    assert endpoint_problems({**ENDPOINTS, "jwks_uri": "http://sso/certs"}) == {
        "jwks_uri": "'http://sso/certs' is not an https:// URL"
    }


@pytest.mark.parametrize(("keys", "kids"), [
    ([{"kty": "RSA", "kid": "a", "use": "sig"}], ["a"]),
    ([{"kty": "EC", "kid": "b"}], ["b"]),  # use absent: unrestricted
    ([{"kty": "RSA", "kid": "c", "use": "enc"}], []),
    ([{"kty": "RSA", "use": "sig"}], []),  # no kid to select it by
    ([{"kid": "d", "use": "sig"}], []),  # no kty
    ([{"kty": "", "kid": "e"}, {"kty": "RSA", "kid": ""}], []),
    (["not-a-key", {"kty": "RSA", "kid": "f"}], ["f"]),
    ([], []),
])
def test_signing_keys(keys: list, kids: list[str]) -> None:
    assert [key["kid"] for key in signing_keys({"keys": keys})] == kids


@pytest.mark.parametrize("jwks", [{}, {"keys": None}, {"keys": {"kid": "a"}}])
def test_a_set_without_a_keys_list_has_no_signing_key(jwks: dict) -> None:
    assert signing_keys(jwks) == []


def test_key_summary_never_shows_key_material() -> None:
    private = {"kty": "RSA", "kid": "k", "use": "sig", "alg": "RS256", "n": "0vx7", "e": "AQAB", "d": "X5bc",
               "p": "83i", "q": "3dfO", "dp": "G4s", "dq": "s9lA", "qi": "GyM", "k": "GawgguFyGrWKav7AX4VKUg"}
    assert key_summary({"keys": [private, 7]}) == [
        {"kid": "k", "kty": "RSA", "use": "sig", "alg": "RS256"},
        "not a JWK: int",
    ]
    assert key_summary({"issuer": "x"}) == "no 'keys' list (members: issuer)"
