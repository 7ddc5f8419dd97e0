"""Unit tests for kkp_readiness.probes.http against real HTTPS servers on 127.0.0.1 (no other address).

The server's certificate names ``idp.test`` only: the probe dials 127.0.0.1 and must send that name
as SNI and Host and verify the certificate for it, never asking a resolver.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kkp_readiness.errors import HttpProbeError, ProbeError
from kkp_readiness.lab.ca import LabCA, utcnow
from kkp_readiness.probes.http import MAX_REDIRECTS, JsonAnswer, fetch_json, origin_of

LOOPBACK = "127.0.0.1"
NAME = "idp.test"
DISCOVERY = {"issuer": "https://idp.test/realms/kkp", "jwks_uri": "https://idp.test/realms/kkp/certs"}


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Omit Content-Length and close the connection after the body (a close-delimited body).
    close_delimited: bool = False
    #: Send the body one byte at a time with this pause (a server that trickles).
    trickle: float = 0.0


def json_route(document: object, **kwargs: object) -> Route:
    return Route(body=json.dumps(document).encode(), headers={"Content-Type": "application/json"}, **kwargs)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:  # the name http.server dispatches to
        self.server.requests.append((self.path, dict(self.headers)))
        route = self.server.routes.get(self.path, Route(status=404, body=b"not found"))
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        if route.close_delimited:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        try:
            if route.trickle:
                for byte in route.body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(route.trickle)
            else:
                self.wfile.write(route.body)
        except OSError:  # the client gave up, as it should
            pass

    def log_message(self, format: str, *args: object) -> None:  # quiet: no request log on stderr
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]
    requests: list[tuple[str, dict[str, str]]]
    server_names: list[str | None]


@dataclass
class Pki:
    ca_bundle: str
    other_bundle: str
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("http-pki")
    ca = LabCA(directory / "ca", label="Probe")
    other = LabCA(directory / "other", label="Other")
    now = utcnow()
    leaf = ca.issue_leaf([NAME], now - dt.timedelta(days=1), now + dt.timedelta(days=30), directory=directory)
    return Pki(str(ca.bundle_path), str(other.bundle_path), leaf.fullchain, leaf.key)


@pytest.fixture
def server(pki: Pki) -> Iterator[_Server]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert, pki.key)
    httpd = _Server((LOOPBACK, 0), _Handler)
    httpd.routes, httpd.requests, httpd.server_names = {}, [], []
    context.sni_callback = lambda _sock, name, _ctx: httpd.server_names.append(name)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def port_of(httpd: _Server) -> int:
    return int(httpd.server_address[1])


@pytest.fixture
def fetch(server: _Server, pki: Pki) -> Callable[..., JsonAnswer]:
    def _fetch(path: str, host: str = NAME, **kwargs: object) -> JsonAnswer:
        kwargs.setdefault("timeout", 3.0)
        kwargs.setdefault("ca_bundle", pki.ca_bundle)
        return fetch_json(f"https://{host}:{port_of(server)}{path}", LOOPBACK, **kwargs)  # type: ignore[arg-type]

    return _fetch


# --- answers ---------------------------------------------------------------------------------------


def test_json_document_over_verified_https_with_sni_and_host_of_the_url(server: _Server, fetch) -> None:
    server.routes["/realms/kkp/.well-known/openid-configuration"] = json_route(DISCOVERY)
    answer = fetch("/realms/kkp/.well-known/openid-configuration")
    assert answer.verified
    assert answer.certificate_error is None
    assert (answer.status, answer.document) == (200, DISCOVERY)
    assert (answer.address, answer.port) == (LOOPBACK, port_of(server))
    assert answer.final_url == answer.url
    assert server.server_names == [NAME]
    _, headers = server.requests[0]
    assert headers["Host"] == f"{NAME}:{port_of(server)}"
    assert headers["Accept-Encoding"] == "identity"


def test_to_dict_is_plain_data_and_can_leave_the_document_out(server: _Server, fetch) -> None:
    server.routes["/keys"] = json_route({"keys": [{"kid": "k1", "kty": "RSA", "n": "AQAB"}]})
    answer = fetch("/keys")
    assert json.loads(json.dumps(answer.to_dict()))["document"]["keys"][0]["kid"] == "k1"
    assert "document" not in answer.to_dict(with_document=False)
    assert answer.to_dict(with_document=False)["verified"] is True


def test_port_argument_dials_elsewhere_than_the_url_says(server: _Server, pki: Pki) -> None:
    server.routes["/doc"] = json_route({"a": 1})
    answer = fetch_json(f"https://{NAME}/doc", LOOPBACK, port=port_of(server), timeout=3.0, ca_bundle=pki.ca_bundle)
    assert answer.document == {"a": 1}
    assert server.requests[0][1]["Host"] == NAME  # the URL's origin, port 443 implied


# --- certificates that do not verify are data, not errors --------------------------------------------


def test_untrusted_certificate_is_reported_not_raised(server: _Server, fetch, pki: Pki) -> None:
    server.routes["/doc"] = json_route(DISCOVERY)
    answer = fetch("/doc", ca_bundle=pki.other_bundle)
    assert not answer.verified
    assert answer.certificate_error is not None
    assert "unable to get local issuer certificate" in answer.certificate_error
    assert (answer.status, answer.document) == (None, None)
    assert server.requests == []  # nothing was sent over the unverified connection


def test_certificate_for_another_name_is_reported(server: _Server, fetch) -> None:
    server.routes["/doc"] = json_route(DISCOVERY)
    answer = fetch("/doc", host="login.test")
    assert answer.certificate_error is not None
    assert "Hostname mismatch" in answer.certificate_error
    assert server.server_names == ["login.test"]


def test_without_a_bundle_the_system_store_is_used(server: _Server, fetch) -> None:
    server.routes["/doc"] = json_route(DISCOVERY)
    answer = fetch("/doc", ca_bundle=None)
    assert answer.certificate_error is not None  # the test CA is in no system store
    assert "certificate verify failed" in answer.certificate_error


def test_unreadable_ca_bundle_is_a_probe_error(fetch, tmp_path: Path) -> None:
    with pytest.raises(HttpProbeError, match="cannot load the CA bundle"):
        fetch("/doc", ca_bundle=str(tmp_path / "missing.pem"))


# --- redirects ---------------------------------------------------------------------------------------


def test_same_origin_redirect_is_followed(server: _Server, fetch) -> None:
    server.routes["/realms/kkp"] = Route(status=301, headers={"Location": "/realms/kkp/"})
    server.routes["/realms/kkp/"] = json_route(DISCOVERY)
    answer = fetch("/realms/kkp")
    assert answer.document == DISCOVERY
    assert answer.redirects == (f"https://{NAME}:{port_of(server)}/realms/kkp/",)
    assert answer.final_url.endswith("/realms/kkp/")


@pytest.mark.parametrize("location", [
    "https://evil.test/doc",
    "https://idp.test:1/doc",
    "http://idp.test/doc",
])
def test_redirect_to_another_origin_is_refused(server: _Server, fetch, location: str) -> None:
    server.routes["/doc"] = Route(status=302, headers={"Location": location})
    with pytest.raises(HttpProbeError, match="another scheme, host or port") as caught:
        fetch("/doc")
    assert location in str(caught.value)
    assert len(server.requests) == 1


def test_redirect_loop_ends(server: _Server, fetch) -> None:
    server.routes["/loop"] = Route(status=307, headers={"Location": "/loop"})
    with pytest.raises(HttpProbeError, match=f"more than {MAX_REDIRECTS} redirects"):
        fetch("/loop")
    assert len(server.requests) == MAX_REDIRECTS + 1


# --- what keeps the document from being read is an error -------------------------------------------


@pytest.mark.parametrize("status", [404, 500, 401])
def test_http_error_status_is_a_probe_error(server: _Server, fetch, status: int) -> None:
    server.routes["/doc"] = Route(status=status, body=b"nope")
    with pytest.raises(HttpProbeError, match=f"answered HTTP {status}"):
        fetch("/doc")


def test_redirect_without_location_is_a_status_error(server: _Server, fetch) -> None:
    server.routes["/doc"] = Route(status=302)
    with pytest.raises(HttpProbeError, match="answered HTTP 302"):
        fetch("/doc")


def test_body_over_the_cap_by_content_length_is_refused_unread(server: _Server, fetch) -> None:
    server.routes["/big"] = json_route({"x": "y" * 5000})
    with pytest.raises(HttpProbeError, match="more than the 1000"):
        fetch("/big", max_bytes=1000)


def test_body_over_the_cap_without_content_length_is_refused(server: _Server, fetch) -> None:
    server.routes["/big"] = json_route({"x": "y" * 200_000}, close_delimited=True)
    with pytest.raises(HttpProbeError, match="exceeds 100000 bytes"):
        fetch("/big", max_bytes=100_000)


def test_body_at_the_cap_is_read(server: _Server, fetch) -> None:
    body = json.dumps({"x": "y" * 990}).encode()
    server.routes["/fits"] = Route(body=body, close_delimited=True)
    assert fetch("/fits", max_bytes=len(body)).document == {"x": "y" * 990}


@pytest.mark.parametrize(("body", "match"), [
    (b"<html>login</html>", "not JSON"),
    (b"[1, 2]", "not an object"),
    (b"\xff\xfe\x00garbage", "not JSON"),
    (b"", "not JSON"),
])
def test_body_that_is_not_a_json_object_is_a_probe_error(server: _Server, fetch, body: bytes, match: str) -> None:
    server.routes["/doc"] = Route(body=body)
    with pytest.raises(HttpProbeError, match=match):
        fetch("/doc")


def test_compressed_body_is_refused(server: _Server, fetch) -> None:
    server.routes["/doc"] = Route(body=gzip.compress(b"{}"), headers={"Content-Encoding": "gzip"})
    with pytest.raises(HttpProbeError, match="gzip-encoded"):
        fetch("/doc")


def test_refused_connection_is_a_probe_error() -> None:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        closed = sock.getsockname()[1]
    with pytest.raises(HttpProbeError, match="TCP connect failed") as caught:
        fetch_json(f"https://{NAME}:{closed}/doc", LOOPBACK, timeout=2.0)
    assert isinstance(caught.value, ProbeError)


def test_silent_server_times_out_within_the_timeout() -> None:
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(1)  # accepts into the backlog, never answers the handshake
        start = time.monotonic()
        with pytest.raises(HttpProbeError, match=r"within 0\.5 s"):
            fetch_json(f"https://{NAME}:{listener.getsockname()[1]}/doc", LOOPBACK, timeout=0.5)
    assert time.monotonic() - start < 2.0


def test_trickling_body_is_bounded_by_the_whole_timeout(server: _Server, fetch) -> None:
    server.routes["/slow"] = Route(body=b'{"x": "' + b"y" * 60 + b'"}', trickle=0.05)
    start = time.monotonic()
    with pytest.raises(HttpProbeError, match=r"no complete answer within 0\.6 s"):
        fetch("/slow", timeout=0.6)
    assert time.monotonic() - start < 1.5


def test_port_that_does_not_speak_tls_is_a_probe_error() -> None:
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(1)

        def answer_in_plain_text() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer_in_plain_text, daemon=True)
        thread.start()
        with pytest.raises(HttpProbeError, match="TLS handshake failed"):
            fetch_json(f"https://{NAME}:{listener.getsockname()[1]}/doc", LOOPBACK, timeout=2.0)
        thread.join(2)


# --- arguments ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://idp.test/doc", "idp.test/doc", "https:///doc", "https://u:p@idp.test/"])
def test_only_absolute_https_urls_without_credentials(url: str) -> None:
    with pytest.raises(ValueError):
        fetch_json(url, LOOPBACK, timeout=1.0)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        fetch_json("https://idp.test/doc", LOOPBACK, timeout=0)


@pytest.mark.parametrize(("url", "origin"), [
    ("https://IdP.test/realms/kkp", ("https", "idp.test", 443)),
    ("https://idp.test:8443", ("https", "idp.test", 8443)),
    ("http://idp.test/x", ("http", "idp.test", 80)),
    ("https://[::1]:9443/x", ("https", "::1", 9443)),
])
def test_origin_of(url: str, origin: tuple[str, str, int]) -> None:
    assert origin_of(url) == origin
