"""HTTP probe: fetch one JSON document over verified HTTPS from the address the site's DNS gives.

Why this probe exists: the AUTH checks read OpenID Connect discovery documents and key sets as
KKP's components and its users' browsers do, over HTTPS with the certificate verified. Unlike the
TLS probe (:mod:`kkp_readiness.probes.tls`), which inspects a handshake and trusts nothing, this is
an ordinary verifying client. It never asks this machine's resolver: the caller passes the
address to dial, resolved through the profile's DNS servers as for the TLS checks (site and lab
names often resolve only there), and the probe sends the URL's host name as SNI and ``Host`` and
verifies the certificate for that name (chain against the CA bundle, else the system store).

What is an observation and what is an error, so that "could not look" never reads as "wrong":

* A certificate that does not verify (untrusted issuer, expired, wrong name, too weak a key) is
  an observation: "answers over verified HTTPS" is part of the requirements that use this probe.
  The answer then carries OpenSSL's reason in ``certificate_error`` and no document; nothing is
  sent over a connection that did not verify.
* Everything else that keeps the document from being read raises
  :class:`~kkp_readiness.errors.HttpProbeError`, and the check ends as ``error``: a refused or
  timed-out connection, a handshake that fails for another reason, an HTTP status other than 200,
  a redirect to another scheme, host or port (the probe dials only the address it was given, so
  it cannot follow one; redirects within the same origin are followed, at most three), a body
  over ``max_bytes`` or compressed, a body that is not a JSON object.

>>> answer = fetch_json("https://kkp.example.com/dex/.well-known/openid-configuration", "192.0.2.80",
...                     timeout=5.0, ca_bundle="/etc/kkp/ca-bundle.pem")
>>> answer.verified, answer.status, answer.document["issuer"]
(True, 200, 'https://kkp.example.com/dex')
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import urllib3
from urllib3.exceptions import (
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from kkp_readiness import __version__
from kkp_readiness.errors import HttpProbeError

__all__ = ["MAX_BODY_BYTES", "MAX_REDIRECTS", "JsonAnswer", "fetch_json", "origin_of"]

#: Discovery documents and key sets are a few KiB; a larger body is not one of them.
MAX_BODY_BYTES = 1024 * 1024
#: Same-origin redirects followed (e.g. a trailing-slash redirect); more is a loop.
MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class JsonAnswer:
    """What one HTTPS GET of a JSON document observed, as plain data.

    ``url`` is the URL asked for, ``final_url`` the one that answered (after same-origin
    redirects, listed in ``redirects``); ``address``:``port`` is where the probe connected.
    ``certificate_error`` is OpenSSL's reason when the server's certificate did not verify for the
    URL's host name; then ``status`` and ``document`` are None, as no request was sent.

    >>> answer.to_dict()["certificate_error"]
    'certificate verify failed: certificate has expired'
    """

    url: str
    final_url: str
    address: str
    port: int
    certificate_error: str | None
    status: int | None
    document: dict[str, Any] | None
    elapsed_ms: float
    redirects: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        """True when the certificate verified (the document, if any, came over verified HTTPS)."""
        return self.certificate_error is None

    def to_dict(self, with_document: bool = True) -> dict[str, Any]:
        """JSON-friendly form for evidence; ``with_document=False`` leaves the body out (e.g. a key set).

        >>> sorted(answer.to_dict(with_document=False))[:3]
        ['address', 'certificate_error', 'elapsed_ms']
        """
        data: dict[str, Any] = {
            "url": self.url,
            "final_url": self.final_url,
            "address": self.address,
            "port": self.port,
            "verified": self.verified,
            "certificate_error": self.certificate_error,
            "status": self.status,
            "elapsed_ms": self.elapsed_ms,
            "redirects": list(self.redirects),
        }
        if with_document:
            data["document"] = self.document
        return data


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, lower-case host, port) of an absolute URL, the port defaulting to the scheme's.

    Why: "same origin" decides which redirects the probe may follow, and the port to dial for a
    URL without one is 443 for https.

    >>> origin_of("https://SSO.example.com/realms/kkp")
    ('https', 'sso.example.com', 443)
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port must be a number in 1-65535") from None
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or default or 0


def _check_url(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ValueError(f"{url!r} is not an absolute https:// URL; this probe speaks verified HTTPS only")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{url!r}: credentials in a URL are not sent; remove the user:password@ part")
    origin_of(url)  # validates the port
    return parts


def _remaining(deadline: float) -> float:
    # Never 0: a zero timeout would make the socket non-blocking instead of timing out at once.
    return max(deadline - time.monotonic(), 0.001)


def _host_header(host: str, port: int) -> str:
    literal = f"[{host}]" if ":" in host else host
    return literal if port == 443 else f"{literal}:{port}"


def _verification_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate-verification error somewhere inside urllib3's wrapping, if that was the cause."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        stack.extend([*current.args, current.__cause__, current.__context__])
    return None


def _describe_verification(error: ssl.SSLCertVerificationError) -> str:
    reason = error.verify_message or error.reason or str(error)
    return f"certificate verify failed: {reason}"


def _transport_error(exc: HTTPError, what: str, timeout: float) -> HttpProbeError:
    if isinstance(exc, NewConnectionError):
        cause = exc.__cause__ or exc.__context__
        reason = (getattr(cause, "strerror", None) or str(cause)) if cause else str(exc)
        return HttpProbeError(f"{what}: TCP connect failed: {reason}; check address, port and firewall")
    if isinstance(exc, ReadTimeoutError):
        return HttpProbeError(f"{what}: no complete answer within {timeout} s")
    if isinstance(exc, Urllib3Timeout):
        return HttpProbeError(f"{what}: TCP connect timed out after {timeout} s; check routing and firewall")
    if isinstance(exc, SSLError):
        return HttpProbeError(f"{what}: TLS handshake failed: {exc}; is this port speaking TLS?")
    if isinstance(exc, ProtocolError):
        return HttpProbeError(f"{what}: connection lost: {exc}")
    return HttpProbeError(f"{what}: {type(exc).__name__}: {exc}")


def _read_capped(response: Any, max_bytes: int, deadline: float, timeout: float, what: str) -> bytes:
    """The body, at most ``max_bytes``, read within the overall deadline."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise HttpProbeError(f"{what}: the body is {declared} bytes, more than the {max_bytes} a JSON document "
                             "of this kind may have")
    body = bytearray()
    while True:
        if time.monotonic() >= deadline:
            raise HttpProbeError(f"{what}: no complete answer within {timeout} s")
        sock = getattr(response.connection, "sock", None)
        if sock is not None:
            sock.settimeout(_remaining(deadline))  # each read gets only what is left of the whole deadline
        chunk = response.read1(_CHUNK)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > max_bytes:
            raise HttpProbeError(f"{what}: the body exceeds {max_bytes} bytes; not a JSON document of this kind")


def _parse(body: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        start = body[:60].decode("utf-8", "replace")
        raise HttpProbeError(f"{what}: the body is not JSON ({exc}); it starts with {start!r}") from None
    if not isinstance(document, dict):
        raise HttpProbeError(f"{what}: the body is JSON but not an object (a {type(document).__name__})")
    return document


def fetch_json(
    url: str,
    address: str,
    *,
    timeout: float,
    ca_bundle: str | None = None,
    port: int | None = None,
    max_bytes: int = MAX_BODY_BYTES,
) -> JsonAnswer:
    """GET the JSON object at ``url`` over verified HTTPS, connecting to ``address``.

    ``port`` is where to connect, default the URL's port (443 without one); SNI, ``Host`` and the
    name the certificate must carry come from the URL. ``ca_bundle`` is a PEM file of trusted CAs
    (the profile's ``certificates.ca_bundle``); without it the system store is used. ``timeout``
    bounds the whole exchange: connect, handshake, request, every read and any redirects.

    Returns a :class:`JsonAnswer`; a certificate that does not verify is reported in it. Raises
    HttpProbeError when the document could not be read (see the module docstring), and ValueError
    for a URL that is not an absolute https:// URL.

    >>> fetch_json("https://sso.example.com/realms/kkp/.well-known/openid-configuration", "192.0.2.90",
    ...            timeout=5.0).document["jwks_uri"]
    'https://sso.example.com/realms/kkp/protocol/openid-connect/certs'
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    parts = _check_url(url)
    scheme, host, url_port = origin_of(url)
    dial_port = port or url_port
    what = f"GET {url} (at {address}:{dial_port})"
    try:
        context = ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise HttpProbeError(f"cannot load the CA bundle {ca_bundle}: {exc}") from None
    start = time.monotonic()
    deadline = start + timeout
    headers = {
        "Host": _host_header(host, url_port),
        "Accept": "application/json",
        "Accept-Encoding": "identity",
        "User-Agent": f"kkp-readiness/{__version__}",
    }
    pool = urllib3.HTTPSConnectionPool(
        address, dial_port, server_hostname=host, ssl_context=context, retries=False, maxsize=1, block=False
    )
    current, redirects = url, []
    try:
        while True:
            target = parts.path or "/"
            if parts.query:
                target += f"?{parts.query}"
            try:
                response = pool.urlopen(
                    "GET", target, headers=headers, redirect=False, retries=False, assert_same_host=False,
                    preload_content=False, decode_content=False,
                    timeout=urllib3.Timeout(total=_remaining(deadline)),
                )
            except HTTPError as exc:
                verification = _verification_error(exc)
                if verification is None:
                    raise _transport_error(exc, what, timeout) from exc
                return JsonAnswer(
                    url=url, final_url=current, address=address, port=dial_port,
                    certificate_error=_describe_verification(verification), status=None, document=None,
                    elapsed_ms=round((time.monotonic() - start) * 1000.0, 3), redirects=tuple(redirects),
                )
            try:
                location = response.headers.get("Location")
                if response.status in _REDIRECT_STATUSES and location:
                    following = urljoin(current, location)
                    try:
                        same_origin = origin_of(following) == (scheme, host, url_port)
                    except ValueError:
                        same_origin = False
                    if not same_origin:
                        raise HttpProbeError(
                            f"{what}: HTTP {response.status} redirects to {following}, another scheme, host or "
                            f"port; the probe dials only {address}, the address given for {host}, so it does not "
                            "follow: publish the document at the URL itself"
                        )
                    if len(redirects) >= MAX_REDIRECTS:
                        raise HttpProbeError(f"{what}: more than {MAX_REDIRECTS} redirects ({' -> '.join(redirects)})")
                    redirects.append(following)
                    current, parts = following, urlsplit(following)
                    continue
                if response.status != 200:
                    raise HttpProbeError(f"{what}: answered HTTP {response.status} {response.reason or ''}".rstrip()
                                         + "; the document is not served at this URL")
                encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
                if encoding != "identity":
                    raise HttpProbeError(f"{what}: the body is {encoding}-encoded although identity was asked for")
                body = _read_capped(response, max_bytes, deadline, timeout, what)
            except HTTPError as exc:
                raise _transport_error(exc, what, timeout) from exc
            except OSError as exc:  # a read that timed out or broke after the headers
                if isinstance(exc, TimeoutError):
                    raise HttpProbeError(f"{what}: no complete answer within {timeout} s") from exc
                raise HttpProbeError(f"{what}: connection lost while reading: {exc}") from exc
            finally:
                response.close()  # an unread body (a redirect's, a refused one) must not be reused
                response.release_conn()
            document = _parse(body, what)
            return JsonAnswer(
                url=url, final_url=current, address=address, port=dial_port, certificate_error=None,
                status=response.status, document=document,
                elapsed_ms=round((time.monotonic() - start) * 1000.0, 3), redirects=tuple(redirects),
            )
    finally:
        pool.close()
