"""OpenID Connect judgements: the issuer KKP expects, how two issuers differ, which keys can sign.

Pure functions over plain data (the profile, and the discovery documents and key sets that
:mod:`kkp_readiness.probes.http` fetched), so that the AUTH checks stay short and every rule is
unit-tested on its own, as :mod:`kkp_readiness.certs` does for X.509.

Why exact comparison: OpenID Connect Discovery 1.0 (section 4.3) requires the ``issuer`` of the
document to be identical to the issuer URL the client was configured with, and the clients of a KKP
installation (dashboard and API, kube-apiserver's OIDC authenticator, kubectl's oidc-login) compare
the strings byte for byte. One trailing slash, ``http`` for ``https`` or an added ``:443`` makes
every token rejected, so :func:`issuer_difference` names the part that differs.

>>> issuer_difference("https://kkp.example.com/dex", "https://kkp.example.com/dex/")
"path '/dex/' instead of '/dex' (a trailing slash)"
>>> [k["kid"] for k in signing_keys({"keys": [{"kty": "RSA", "kid": "a", "use": "sig"},
...                                            {"kty": "RSA", "kid": "b", "use": "enc"}]})]
['a']
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kkp_readiness.profile_model import Profile

__all__ = [
    "DEX_PATH",
    "REQUIRED_ENDPOINTS",
    "WELL_KNOWN",
    "configured_issuer",
    "dex_discovery_url",
    "discovery_url",
    "endpoint_problems",
    "https_url",
    "issuer_difference",
    "key_summary",
    "signing_keys",
]

#: Where KKP's Dex chart publishes Dex under the base domain.
DEX_PATH = "/dex"
#: Appended to an issuer (without its trailing slash) to find its discovery document.
WELL_KNOWN = "/.well-known/openid-configuration"
#: What a client of the own provider needs from its discovery document (AUTH-005).
REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
#: The only JWK members evidence shows: the rest is key material, private parameters included if a
#: provider publishes them by mistake.
_SUMMARY_MEMBERS = ("kid", "kty", "use", "alg")


def https_url(host: str, port: int, path: str) -> str:
    """``https://host[:port]path``, the port written only when it is not 443.

    >>> https_url("kkp.lab", 8443, "/dex")
    'https://kkp.lab:8443/dex'
    """
    literal = f"[{host}]" if ":" in host else host
    return f"https://{literal}{'' if port == 443 else f':{port}'}{path}"


def configured_issuer(profile: Profile) -> str:
    """The issuer KKP is configured with: ``auth.oidc_issuer``, else Dex under the base domain.

    Why the default carries ``certificates.port``: Dex's issuer is the URL at which clients reach
    it, ``https://<base_domain>/dex`` on the standard port; where the ingress serves HTTPS on
    another port (the lab), the port is part of that URL, and of the issuer.

    >>> configured_issuer(profile)  # base_domain kkp.example.com, no auth.oidc_issuer
    'https://kkp.example.com/dex'
    """
    return profile.auth.oidc_issuer or https_url(profile.base_domain, profile.certificates.port, DEX_PATH)


def dex_discovery_url(profile: Profile) -> str:
    """Where AUTH-003 reads Dex's discovery document: under the base domain on the ingress port.

    >>> dex_discovery_url(profile)
    'https://kkp.example.com/dex/.well-known/openid-configuration'
    """
    return https_url(profile.base_domain, profile.certificates.port, DEX_PATH + WELL_KNOWN)


def discovery_url(issuer: str) -> str:
    """The discovery document of ``issuer``: a terminating slash is dropped before the suffix (Discovery 4).

    >>> discovery_url("https://sso.example.com/realms/kkp/")
    'https://sso.example.com/realms/kkp/.well-known/openid-configuration'
    """
    return issuer.rstrip("/") + WELL_KNOWN


def _raw_host(netloc: str) -> str:
    """The host as written (urlsplit's ``hostname`` is lower-cased), without user info and port."""
    host = netloc.rsplit("@", 1)[-1]
    return host[: host.find("]") + 1] if host.startswith("[") else host.split(":", 1)[0]


def _port_text(port: int | None) -> str:
    return "none" if port is None else str(port)


def issuer_difference(expected: str, found: Any) -> str | None:
    """None when ``found`` is exactly ``expected``; else which part differs, in words.

    >>> issuer_difference("https://sso.example.com/realms/kkp", "http://sso.example.com/realms/kkp")
    'scheme http instead of https'
    >>> issuer_difference("https://kkp.example.com/dex", "https://kkp.example.com/dex") is None
    True
    """
    if isinstance(found, str) and found == expected:
        return None
    if found is None:
        return "the document declares no issuer"
    if not isinstance(found, str):
        return f"the issuer is not a string but {type(found).__name__} {found!r}"
    want, got = urlsplit(expected), urlsplit(found)
    differences = []
    if want.scheme != got.scheme:
        differences.append(f"scheme {got.scheme or '(none)'} instead of {want.scheme}")
    elif expected.split(":", 1)[0] != found.split(":", 1)[0]:
        differences.append("the scheme's letter case")
    if (want.hostname or "") != (got.hostname or ""):
        differences.append(f"host {got.hostname or '(none)'} instead of {want.hostname}")
    elif _raw_host(want.netloc) != _raw_host(got.netloc):
        differences.append("the host's letter case")
    try:
        want_port, got_port = want.port, got.port
    except ValueError:
        want_port = got_port = None
        differences.append("a port that is not a number")
    if want_port != got_port:
        differences.append(f"port {_port_text(got_port)} instead of {_port_text(want_port)}")
    if want.path != got.path:
        slash = " (a trailing slash)" if want.path.rstrip("/") == got.path.rstrip("/") else ""
        differences.append(f"path {got.path!r} instead of {want.path!r}{slash}")
    if (want.query, want.fragment) != (got.query, got.fragment):
        differences.append("the query or fragment")
    return "; ".join(differences) or "a detail of the spelling"


def endpoint_problems(document: dict[str, Any]) -> dict[str, str]:
    """Each required endpoint that is missing or not an absolute https:// URL, with what is wrong.

    >>> endpoint_problems({"authorization_endpoint": "https://sso/auth", "jwks_uri": "http://sso/certs"})
    {'token_endpoint': 'missing', 'jwks_uri': "'http://sso/certs' is not an https:// URL"}
    """
    problems: dict[str, str] = {}
    for name in REQUIRED_ENDPOINTS:
        value = document.get(name)
        if value is None or value == "":
            problems[name] = "missing"
        elif not isinstance(value, str):
            problems[name] = f"not a URL but {type(value).__name__} {value!r}"
        else:
            parts = urlsplit(value)
            if parts.scheme != "https" or not parts.hostname:
                problems[name] = f"{value!r} is not an https:// URL"
    return problems


def signing_keys(jwks: dict[str, Any]) -> list[dict[str, Any]]:
    """The keys of a JWK set a relying party can verify ID tokens with.

    A key counts when its ``use`` is absent or ``sig`` (RFC 7517 4.2: absent means unrestricted)
    and it names its ``kty`` and a ``kid`` (clients pick the key by the token header's kid). A set
    without a ``keys`` list has none.

    >>> signing_keys({"keys": [{"kty": "RSA", "kid": "k1"}]})
    [{'kty': 'RSA', 'kid': 'k1'}]
    >>> signing_keys({"keys": []})
    []
    """
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return []
    return [
        key for key in keys
        if isinstance(key, dict)
        and key.get("use", "sig") == "sig"
        and isinstance(key.get("kty"), str) and key["kty"]
        and isinstance(key.get("kid"), str) and key["kid"]
    ]


def key_summary(jwks: dict[str, Any]) -> list[dict[str, Any]] | str:
    """The keys of a JWK set for evidence: kid, kty, use and alg only, never key material.

    >>> key_summary({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "n": "0vx7...", "e": "AQAB"}]})
    [{'kid': 'k1', 'kty': 'RSA', 'use': 'sig'}]
    """
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return f"no 'keys' list (members: {', '.join(sorted(jwks)) or 'none'})"
    return [
        {member: key[member] for member in _SUMMARY_MEMBERS if member in key} if isinstance(key, dict)
        else f"not a JWK: {type(key).__name__}"
        for key in keys
    ]
