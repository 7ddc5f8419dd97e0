"""The HTTPS server every lab cloud API runs in: TLS, routing to a provider ``Api``, a request log.

Built on ``http.server.ThreadingHTTPServer`` and ``ssl`` like the lab's Kubernetes API server: one thread
per connection (the handshake happens there too), HTTP/1.1 keep-alive with a length on every
response, as the SDKs reuse connections. The request log has one line per request: time, method,
path without the query, status. Bodies and headers are never logged (they carry passwords and tokens).
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from kkp_readiness.lab.topology import require_loopback

IDLE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Request:
    """One HTTP request as a provider API sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body (OAuth token requests)."""
        return {key: values[-1] for key, values in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Response:
    """What a provider API answers; a ``dict`` or ``list`` body is sent as JSON."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def json_error(status: int, body: Any) -> Response:
    return Response(status, body)


class ProviderApi(Protocol):
    """A provider's request handler."""

    def handle(self, request: Request) -> Response: ...


class RequestLog:
    """Append-only, one line per request; thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, method: str, path: str, status: int) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self._lock, self.path.open("a") as log:
            log.write(f"{stamp} {method} {path} {status}\n")


def read_request_log(path: Path | str) -> list[tuple[str, str, int]]:
    """(method, path, status) of every request logged so far."""
    lines = Path(path).read_text().splitlines() if Path(path).exists() else []
    return [(f[1], f[2], int(f[3])) for f in (line.split(" ") for line in lines) if len(f) == 4]


def _handler(api: ProviderApi, log: RequestLog) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "kkp-lab-cloudapi"
        timeout = IDLE_TIMEOUT

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                              self.headers, body)
            try:
                response = api.handle(request)
            except Exception as exc:  # a bug in the stand-in: a 500 the SDK reports, and the log says why
                response = Response(500, {"error": {"code": "InternalError", "message": f"lab stand-in: {exc!r}"}})
            payload = response.payload()
            self.send_response(response.status)
            if payload or response.status not in (204, 304):
                self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            log.write(self.command, parts.path, response.status)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve  # noqa: N815 (http.server's names)

        def log_message(self, format: str, *args: Any) -> None:  # the request log is ours
            pass

    return Handler


class TlsServer(ThreadingHTTPServer):
    """A threading HTTP server whose connections are TLS (handshake in the connection's thread)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that does not trust the lab CA, or a bare TCP probe
        self.RequestHandlerClass(tls, client_address, self)


def build_server(address: str, port: int, certfile: str, keyfile: str, api: ProviderApi,
                 request_log: Path) -> TlsServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return TlsServer((require_loopback(address), port), _handler(api, RequestLog(request_log)), context)


def serve_in_thread(server: TlsServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    return thread


Route = Callable[..., Response]
