"""Egress probe: one HTTP(S) exchange as the bastion makes it, directly or through the site's proxy.

Why its own probe: the PROXY and INSTALLER checks ask "can the installation reach this URL the way
it will really go?", which is a TCP connection opened by the bastion (``Connector``, an SSH tunnel in
practice), optionally a ``CONNECT`` through the site's HTTP proxy with its credentials, then TLS
verified for the URL's host. Every step that fails is an observation with its own words (the proxy
refused the tunnel, the certificate did not verify, the connection was refused) rather than an
exception: a host that cannot be reached is exactly what these checks look for. Only a bastion that
cannot be used at all raises (from the connector), and the check then ends as ``error``.

The probe never resolves names itself: the bastion (or the proxy) does, as the real clients would.
One deadline bounds the whole exchange; bodies are capped; credentials are sent, never returned.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from kkp_readiness import __version__

#: Opens a TCP connection to (host, port) within the timeout, as the bastion would; raises OSError.
Connector = Callable[[str, int, float], socket.socket]
#: Enough for a token or a status page; the body is evidence, not data.
MAX_BODY_BYTES = 64 * 1024
_MAX_HEAD_BYTES = 16 * 1024


def direct_connector(host: str, port: int, timeout: float) -> socket.socket:
    """Connect from this machine (when the suite runs on the bastion itself)."""
    return socket.create_connection((host, port), timeout=timeout)


@dataclass(frozen=True)
class Proxy:
    """The site's HTTP proxy; ``credentials`` ("user:password") go into Proxy-Authorization only."""

    host: str
    port: int
    credentials: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The proxy's address as reports show it (never with the credentials)."""
        return f"http://{self.host}:{self.port}"

    def authorization(self) -> dict[str, str]:
        if not self.credentials:
            return {}
        return {"Proxy-Authorization": "Basic " + base64.b64encode(self.credentials.encode()).decode()}

    @classmethod
    def from_url(cls, url: str, credentials: str | None = None) -> Proxy:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"proxy {url!r}: expected http://host:port (the proxy is spoken to in plain HTTP)")
        return cls(parts.hostname, parts.port or 3128, credentials)


@dataclass(frozen=True)
class HttpAnswer:
    """What one request observed. ``problem`` says why no HTTP answer came (None: ``status`` is set)."""

    url: str
    method: str
    via: str
    status: int | None = None
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    problem: str | None = None
    #: Where a problem arose: "connect" (TCP), "proxy" (CONNECT refused), "tls" or "http"; "" if none.
    stage: str = ""
    elapsed_ms: float = 0.0

    @property
    def answered(self) -> bool:
        return self.problem is None and self.status is not None

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def summary(self) -> str:
        """One line for messages: what was tried and what came back."""
        tried = f"{self.method} {self.url} via {self.via}"
        if self.problem:
            return f"{tried}: {self.problem}"
        return f"{tried}: HTTP {self.status} {self.reason}".rstrip()

    def to_dict(self) -> dict[str, Any]:
        """Evidence: the exchange without the body (tokens and files must not reach a report)."""
        return {"url": self.url, "method": self.method, "via": self.via, "status": self.status,
                "reason": self.reason, "problem": self.problem, "stage": self.stage or None,
                "elapsed_ms": self.elapsed_ms,
                "headers": {k: v for k, v in self.headers.items() if k in _EVIDENCE_HEADERS}}


_EVIDENCE_HEADERS = frozenset({"content-type", "content-length", "location", "www-authenticate", "server",
                               "docker-distribution-api-version", "docker-content-digest"})


class _Failed(Exception):
    """One step did not work; its text is the observation, ``stage`` the step."""

    def __init__(self, message: str, stage: str = "http") -> None:
        super().__init__(message)
        self.stage = stage


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Failed("no complete answer within the time limit")
    return left


def _read_head(sock: socket.socket, deadline: float) -> tuple[int, str, dict[str, str]]:
    """Status line and headers of a proxy's CONNECT answer (read byte-exact up to the blank line)."""
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(1)
        if not chunk:
            raise _Failed("the proxy closed the connection without answering CONNECT", "proxy")
        data += chunk
        if len(data) > _MAX_HEAD_BYTES:
            raise _Failed("the proxy's answer to CONNECT has no end of headers", "proxy")
    lines = data.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise _Failed(f"the proxy answered CONNECT with {lines[0]!r}, not HTTP", "proxy")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


def _open(url: str, connect: Connector, proxy: Proxy | None, context: ssl.SSLContext, deadline: float,
          ) -> tuple[socket.socket, str]:
    """A socket ready for the request (TLS verified for https) and the request target to use."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    dial = (proxy.host, proxy.port) if proxy else (host, port)
    try:
        sock = connect(dial[0], dial[1], _remaining(deadline))
    except OSError as exc:
        where = f"the proxy {proxy.url}" if proxy else f"{host}:{port}"
        raise _Failed(f"no TCP connection to {where}: {exc.strerror or exc}", "connect") from None
    try:
        if proxy and parts.scheme == "http":
            return sock, url  # a plain-HTTP request goes to the proxy in absolute form
        if proxy:
            head = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}",
                    f"User-Agent: kkp-readiness/{__version__}"]
            head += [f"{k}: {v}" for k, v in proxy.authorization().items()]
            sock.settimeout(_remaining(deadline))
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            status, reason, _ = _read_head(sock, deadline)
            if status in (401, 407):  # 407 by the standard; some proxies (tinyproxy) answer 401
                what = "refused the credentials" if proxy.credentials else "wants credentials"
                raise _Failed(f"the proxy {proxy.url} {what} for CONNECT {host}:{port} ({status} {reason}); "
                              "check proxy.credentials", "proxy")
            if status != 200:
                raise _Failed(f"the proxy {proxy.url} refused CONNECT {host}:{port}: {status} {reason}".rstrip(),
                              "proxy")
        if parts.scheme == "https":
            sock.settimeout(_remaining(deadline))
            try:
                sock = context.wrap_socket(sock, server_hostname=host)
            except ssl.SSLCertVerificationError as exc:
                raise _Failed(f"TLS certificate of {host} not verified: {exc.verify_message or exc.reason}",
                              "tls") from None
            except (ssl.SSLError, OSError) as exc:
                raise _Failed(f"TLS handshake with {host} failed: {exc}", "tls") from None
        return sock, target
    except BaseException:
        sock.close()
        raise


def request(url: str, *, connect: Connector, context: ssl.SSLContext, timeout: float, proxy: Proxy | None = None,
            method: str = "GET", headers: dict[str, str] | None = None, max_bytes: int = MAX_BODY_BYTES,
            ) -> HttpAnswer:
    """One request to ``url`` (http or https) as the connector's host makes it; never follows redirects.

    ``proxy``: the request goes through it (``CONNECT`` for https, absolute form for http).
    ``context`` verifies the server certificate (the caller chooses the trust store).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    via = proxy.url if proxy else "direct"
    start = time.monotonic()
    deadline = start + timeout

    def answer(**kwargs: Any) -> HttpAnswer:
        return HttpAnswer(url, method, via, elapsed_ms=round((time.monotonic() - start) * 1000, 1), **kwargs)

    try:
        sock, target = _open(url, connect, proxy, context, deadline)
    except _Failed as exc:
        return answer(problem=str(exc), stage=exc.stage)
    connection = http.client.HTTPConnection(parts.hostname, parts.port)
    connection.sock = sock  # already connected (and through TLS); what is left of the deadline bounds the rest
    try:
        sock.settimeout(_remaining(deadline))
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        default_port = 443 if parts.scheme == "https" else 80
        port = parts.port or default_port
        host_header = parts.hostname if port == default_port else f"{parts.hostname}:{port}"
        sent = {"Host": host_header, "User-Agent": f"kkp-readiness/{__version__}", "Accept-Encoding": "identity",
                "Connection": "close", **(headers or {})}
        if proxy and parts.scheme == "http":
            sent.update(proxy.authorization())
        for name, value in sent.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = b"" if method == "HEAD" else response.read(max_bytes)
        return answer(status=response.status, reason=response.reason or "",
                      headers={k.lower(): v for k, v in response.getheaders()}, body=body)
    except _Failed as exc:
        return answer(problem=str(exc), stage=exc.stage)
    except (OSError, http.client.HTTPException) as exc:
        text = "no complete answer within the time limit" if isinstance(exc, TimeoutError) else \
            f"the exchange broke off: {type(exc).__name__}: {exc}"
        return answer(problem=text, stage="http")
    finally:
        connection.close()


def trust(ca_bundle: str | None) -> ssl.SSLContext:
    """A verifying context: the PEM bundle when given (a site or proxy CA), else the system store."""
    return ssl.create_default_context(cafile=ca_bundle)
