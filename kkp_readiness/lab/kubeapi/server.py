"""The lab's Kubernetes API server: HTTPS, bearer tokens, client certificates, discovery, REST paths.

Built on ``http.server.ThreadingHTTPServer`` and ``ssl`` (no dependencies): each connection gets
its own thread, in which the TLS handshake happens too, so one slow client never blocks others.
HTTP/1.1 keep-alive is supported (every response has a length, watches are chunked), as the
``kubernetes`` client and ``kubectl`` reuse connections.

What is served, with the real paths and shapes:

* ``/healthz``, ``/livez``, ``/readyz`` and ``/version`` also without a token (as for
  ``system:anonymous`` on a real cluster); everything else needs ``Authorization: Bearer`` or a
  client certificate, or 401 ``Unauthorized``; a token's ``forbidden`` resources give 403
  ``Forbidden`` for every verb;
* client certificates (when the config names a ``client_ca``), as kube-apiserver's x509
  authenticator reads them: the user is the subject CN, the groups its O values; the certificate
  is tried before the token. Authorisation stays the fixture's one model: a certificate user gets
  the grants of the fixture identity (token entry) with that user name, an unknown user none;
* discovery: ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>``, ``/apis/<group>/<version>``;
* list (with ``labelSelector``, ``fieldSelector``; ``limit``/``continue`` ignored: everything in
  one page), watch (``?watch=true``), get, and for writable kinds create and delete;
* ``pods/<name>/log`` (text/plain): what the lab's kubelet captured of a Job's pod (see ``store``);
  authorised as ``get`` on pods;
* ``meta.k8s.io/v1`` ``Table`` responses when asked for (``kubectl get``).

Every request is logged to the request log as one line: time, method, path with query, status,
token name (``-`` without one; ``x509:<name>`` for a client certificate), so a test can prove that a
read-only run wrote nothing and which credential a client presented.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from kkp_readiness.lab.kubeapi.cluster import Cluster, TokenSpec
from kkp_readiness.lab.kubeapi.resources import ResourceType
from kkp_readiness.lab.kubeapi.selectors import SelectorError, field_matcher, label_matcher
from kkp_readiness.lab.kubeapi.store import ApiError, Store, bad_request, now
from kkp_readiness.lab.kubeapi.tables import table, wants_table

PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
#: A watch without timeoutSeconds ends after this long (a real server picks 30-60 minutes).
DEFAULT_WATCH_SECONDS = 300
#: How long an idle keep-alive connection is kept.
IDLE_TIMEOUT = 60.0

JSON = "application/json"
NOT_FOUND = ApiError(404, "NotFound", "the server could not find the requested resource", {})
METHOD_NOT_ALLOWED = ApiError(
    405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}
)
UNAUTHORIZED = ApiError(401, "Unauthorized", "Unauthorized")
#: Groups the fixture's tokens (service-account tokens) authenticate into, as SelfSubjectReview reports them.
TOKEN_GROUPS = ("system:serviceaccounts", "system:authenticated")
#: The group kube-apiserver adds to every authenticated user (certificate users too).
AUTHENTICATED = "system:authenticated"
#: A ``forbidden`` entry meaning every resource: the grants of a user the fixture has no identity for.
EVERY_RESOURCE = "*"
VERBS = {"GET": "get", "POST": "create", "DELETE": "delete", "PUT": "update", "PATCH": "patch"}


def version_info(git_version: str) -> dict[str, str]:
    """``/version`` as a kube-apiserver of ``git_version`` (``v1.31.4``) answers it."""
    major, minor = git_version.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
        "gitTreeState": "clean",
        "buildDate": "2024-12-10T19:19:19Z",
        "goVersion": "go1.22.9",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _without_type(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


class RequestLog:
    """Appends one line per request; thread-safe and flushed at once (a test reads it right after)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(self.path, "a", buffering=1)  # noqa: SIM115 - open for the process's life

    def write(self, method: str, target: str, status: int, user: str) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self._lock:
            self._file.write(f"{stamp} {method} {target} {status} {user}\n")


class KubeApi:
    """The application: cluster data, tokens, request routing; independent of the transport."""

    def __init__(
        self,
        cluster: Cluster,
        address: str,
        port: int,
        volumes_dir: Path | None = None,
        class_dirs: dict[str, Path] | None = None,
    ) -> None:
        self.cluster = cluster
        self.store = Store(cluster, volumes_dir=volumes_dir, class_dirs=class_dirs)
        self.registry = self.store.registry
        self.tokens: dict[str, TokenSpec] = {t.token: t for t in cluster.tokens if t.token}
        # A certificate proves a user name, not a token: the first identity of each user decides its grants.
        self.users: dict[str, TokenSpec] = {}
        for spec in cluster.tokens:
            self.users.setdefault(spec.user, spec)
        self.address = address
        self.port = port

    # -- discovery -------------------------------------------------------------------------------

    def discovery(self, parts: list[str]) -> dict[str, Any] | None:
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.address}:{self.port}"}
                ],
            }
        if parts == ["api", "v1"]:
            return self._resource_list("", "v1")
        groups = self.registry.groups()
        if parts == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group(g, v) for g, v in groups.items()],
            }
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
            return {"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1], groups[parts[1]])}
        if len(parts) == 3 and parts[0] == "apis" and parts[2] in groups.get(parts[1], ()):
            return self._resource_list(parts[1], parts[2])
        return None

    @staticmethod
    def _group(name: str, versions: list[str]) -> dict[str, Any]:
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": entries, "preferredVersion": entries[0]}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": [t.discovery() for t in self.registry.in_group_version(group, version)],
        }

    # -- resource paths --------------------------------------------------------------------------

    def resolve(self, parts: list[str]) -> tuple[ResourceType, str | None, str | None, str | None] | None:
        """(type, namespace, name, subresource) of a resource path, or None if it is none."""
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        if not rest:
            return None
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespaced = self.registry.by_plural(group, version, rest[2])
            if namespaced is not None and namespaced.namespaced:
                namespace, rest = rest[1], rest[2:]
        rtype = self.registry.by_plural(group, version, rest[0])
        if rtype is None or len(rest) > 3:
            return None
        if namespace is None and rtype.namespaced and len(rest) > 1:
            return None  # /api/v1/pods/NAME does not exist: namespaced objects need their namespace
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        return rtype, namespace, name, subresource

    def certificate_identity(self, user: str) -> TokenSpec:
        """The fixture identity whose grants a client certificate for ``user`` gets.

        Fixture identities are token entries and several may share a user name (``restricted``
        shares ``reader``'s, to model a narrower binding); a certificate names only the user, so it
        gets the first entry's grants (the reader's). A user the fixture does not know is
        authenticated but, like a user without RBAC bindings, forbidden every resource.
        """
        return self.users.get(user) or TokenSpec("-", user, forbidden=(EVERY_RESOURCE,))

    def allowed(self, token: TokenSpec, resource: str, group: str) -> bool:
        qualified = f"{resource}.{group}" if group else resource
        return EVERY_RESOURCE not in token.forbidden and qualified not in token.forbidden

    def review(
        self, token: TokenSpec, rtype: ResourceType, body: Any, groups: tuple[str, ...] = TOKEN_GROUPS
    ) -> dict[str, Any]:
        """Answer a SelfSubjectAccessReview (``kubectl auth can-i``) or SelfSubjectReview (whoami)."""
        spec = body.get("spec", {}) if isinstance(body, dict) else {}
        if rtype.kind == "SelfSubjectReview":
            status: dict[str, Any] = {"userInfo": {"username": token.user, "groups": list(groups)}}
        else:
            attributes = spec.get("resourceAttributes")
            resource = (attributes or {}).get("resource", "")
            allowed = attributes is None or self.allowed(token, resource, (attributes or {}).get("group", ""))
            status = {"allowed": allowed}
        return {
            "kind": rtype.kind,
            "apiVersion": rtype.api_version,
            "metadata": {"creationTimestamp": None},
            **({"spec": spec} if rtype.kind == "SelfSubjectAccessReview" else {}),
            "status": status,
        }

    def authorize(
        self, token: TokenSpec, verb: str, rtype: ResourceType, namespace: str | None, name: str | None
    ) -> None:
        if self.allowed(token, rtype.plural, rtype.group):
            return
        subject = f'{rtype.qualified} "{name}"' if name else rtype.qualified
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        details: dict[str, Any] = {"name": name} if name else {}
        details.update({"group": rtype.group} if rtype.group else {})
        details["kind"] = rtype.plural
        raise ApiError(
            403,
            "Forbidden",
            f'{subject} is forbidden: User "{token.user}" cannot {verb} resource "{rtype.plural}" '
            f'in API group "{rtype.group}" {scope}',
            details,
        )


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None


def _query(raw: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def certificate_user(peer: dict[str, Any] | None) -> tuple[str, tuple[str, ...]] | None:
    """(user, groups) of a verified client certificate (``SSLSocket.getpeercert()``), or None.

    As kube-apiserver's x509 authenticator: the user is the subject CN, the groups are its O
    values; a certificate without a CN authenticates nobody (the token is tried instead).
    """
    attributes = [pair for rdn in (peer or {}).get("subject", ()) for pair in rdn]
    names = [value for key, value in attributes if key == "commonName"]
    if not names:
        return None
    return names[-1], tuple(value for key, value in attributes if key == "organizationName")


class Handler(BaseHTTPRequestHandler):
    """One connection; ``server.api`` is the ``KubeApi``."""

    server: KubeApiServer
    protocol_version = "HTTP/1.1"
    server_version = "kkp-lab-kubeapi"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    #: The token name the request authenticated with, for the request log ("-": none).
    _user = "-"
    #: The groups of the authenticated request (SelfSubjectReview).
    _groups: tuple[str, ...] = TOKEN_GROUPS
    #: (user, groups) of the connection's verified client certificate, None without one.
    _certificate: tuple[str, tuple[str, ...]] | None = None

    def setup(self) -> None:
        super().setup()
        # Verified in the handshake against the client CA; getpeercert() is {} when none was sent.
        self._certificate = certificate_user(self.connection.getpeercert())

    # -- plumbing --------------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests go to the request log, see log_request

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = int(code) if str(code).isdigit() else 0
        self.server.request_log.write(
            getattr(self, "command", "-") or "-", getattr(self, "path", "-") or "-", status, self._user
        )

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, code: int, body: bytes, content_type: str = JSON) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, data: dict[str, Any]) -> None:
        self._send(code, json.dumps(data, separators=(",", ":")).encode())

    def _error(self, error: ApiError) -> None:
        self._json(error.code, error.status())

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    # -- routing ---------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        self._user = "-"
        try:
            body = self._read_body()
            self._route(body)
        except ApiError as error:
            self._error(error)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug in the lab server: answer like a real server's 500
            self._error(ApiError(500, "InternalError", f"Internal error occurred: {type(exc).__name__}: {exc}"))
            raise

    def _authenticate(self, path: str) -> TokenSpec | None:
        """The identity of the request: its client certificate first, then its bearer token.

        kube-apiserver runs its x509 authenticator before the token authenticators and the first
        that recognises the request wins, so a certificate user is never judged by a token.
        """
        if self._certificate is not None:
            user, groups = self._certificate
            identity = self.server.api.certificate_identity(user)
            self._user, self._groups = f"x509:{identity.name}", (*groups, AUTHENTICATED)
            return identity
        self._groups = TOKEN_GROUPS
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if not header:
            if path in PUBLIC_PATHS:
                return None
            raise UNAUTHORIZED
        token = self.server.api.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            raise UNAUTHORIZED
        self._user = token.name
        return token

    def _route(self, body: bytes) -> None:
        api = self.server.api
        url = urlsplit(self.path)
        path = "/" + "/".join(unquote(p) for p in url.path.split("/") if p)
        query = _query(url.query)
        token = self._authenticate(path)
        if path in ("/healthz", "/livez", "/readyz"):
            if self.command not in ("GET", "HEAD"):
                raise METHOD_NOT_ALLOWED
            self._send(200, b"ok", "text/plain; charset=utf-8")
            return
        if path == "/version":
            if self.command not in ("GET", "HEAD"):
                raise METHOD_NOT_ALLOWED
            self._json(200, version_info(api.cluster.version))
            return
        parts = [p for p in path.split("/") if p]
        document = api.discovery(parts)
        if document is not None:
            if self.command not in ("GET", "HEAD"):
                raise METHOD_NOT_ALLOWED
            self._json(200, document)
            return
        resolved = api.resolve(parts)
        if resolved is None:
            raise NOT_FOUND
        assert token is not None  # resource paths are never public
        rtype, namespace, name, subresource = resolved
        if subresource not in (None, "status") and not (subresource == "log" and rtype.kind == "Pod"):
            raise NOT_FOUND
        watching = query.get("watch") in ("true", "1")
        verb = VERBS.get(self.command or "", "get")
        if self.command in ("GET", "HEAD") and name is None:
            verb = "watch" if watching else "list"
        api.authorize(token, verb, rtype, namespace, name)
        if rtype.review:
            if self.command != "POST" or name is not None:
                raise METHOD_NOT_ALLOWED
            self._json(201, api.review(token, rtype, _json_body(body), self._groups))
            return
        if subresource == "log":
            if self.command not in ("GET", "HEAD"):
                raise METHOD_NOT_ALLOWED
            assert name is not None
            assert namespace is not None
            text = api.store.pod_log(namespace, name, query.get("container") or None)
            self._send(200, text.encode(), "text/plain")
            return
        if self.command in ("GET", "HEAD"):
            if name is None:
                self._list(rtype, namespace, query, watching)
            else:
                self._object(api.store.get(rtype, namespace, name), rtype)
        elif self.command == "POST" and name is None and rtype.writable:
            self._create(rtype, namespace, body)
        elif self.command == "DELETE" and name is not None and subresource is None and rtype.writable:
            self._json(200, self._deleted(rtype, api.store.delete(rtype, namespace, name)))
        else:
            raise METHOD_NOT_ALLOWED

    @staticmethod
    def _deleted(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """What DELETE answers: the object (as it looked when deleted) or, for jobs, a Status.

        A real server returns the object for kinds with graceful deletion or finalizers (pods,
        PVCs, namespaces) and for services; the lab deletes at once, so the object is returned
        as the last state a watcher would see, with ``deletionTimestamp`` set.
        """
        if rtype.kind == "Job":
            details = {"name": obj["metadata"]["name"], "group": rtype.group, "kind": rtype.plural}
            details["uid"] = obj["metadata"]["uid"]
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        obj["metadata"]["deletionTimestamp"] = now()
        obj["metadata"]["deletionGracePeriodSeconds"] = 0
        if rtype.kind == "Namespace":
            obj["status"] = {"phase": "Terminating"}
        return obj

    def _object(self, obj: dict[str, Any], rtype: ResourceType) -> None:
        if wants_table(self.headers.get("Accept")):
            self._json(200, table(rtype, [obj], obj["metadata"]["resourceVersion"]))
        else:
            self._json(200, obj)

    def _matcher(self, rtype: ResourceType, query: dict[str, str]) -> Any:
        try:
            labels = label_matcher(query.get("labelSelector"))
            fields = field_matcher(query.get("fieldSelector"), rtype.kind)
        except SelectorError as exc:
            raise bad_request(str(exc)) from None
        return lambda obj: labels(obj) and fields(obj)

    def _list(self, rtype: ResourceType, namespace: str | None, query: dict[str, str], watching: bool) -> None:
        matches = self._matcher(rtype, query)
        if watching:
            self._watch(rtype, namespace, query, matches)
            return
        items, resource_version = self.server.api.store.list(rtype, namespace, matches)
        if wants_table(self.headers.get("Accept")):
            self._json(200, table(rtype, items, resource_version, query.get("includeObject", "Metadata")))
            return
        self._json(
            200,
            {
                "kind": rtype.list_kind,
                "apiVersion": rtype.api_version,
                "metadata": {"resourceVersion": resource_version},
                # As kube-apiserver: the items of built-in kinds carry no kind/apiVersion (only the
                # list says them); custom resources' items do.
                "items": items if rtype.custom else [_without_type(i) for i in items],
            },
        )

    def _create(self, rtype: ResourceType, namespace: str | None, body: bytes) -> None:
        if _query(urlsplit(self.path).query).get("dryRun"):
            # Not simulated: refuse rather than pretend that a dry run was validated.
            raise bad_request("dryRun is not supported by the lab API server")
        self._json(201, self.server.api.store.create(rtype, namespace, _json_body(body)))

    def _watch(self, rtype: ResourceType, namespace: str | None, query: dict[str, str], matches: Any) -> None:
        store = self.server.api.store
        try:
            timeout = min(float(query.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS), DEFAULT_WATCH_SECONDS)
        except ValueError:
            raise bad_request("timeoutSeconds must be a number") from None
        start = query.get("resourceVersion", "")
        with store.lock:
            if start and start != "0":
                if not start.isdigit():
                    raise bad_request(f"invalid resource version: {start}")
                position, initial = int(start), []
                store.events_after(position, rtype)  # 410 Expired before any byte is sent
            else:
                initial, current = store.list(rtype, namespace, matches)
                position = int(current)
        self.send_response(200)
        self.send_header("Content-Type", JSON)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.close_connection = True

        def send(kind: str, obj: dict[str, Any]) -> None:
            line = json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()

        for obj in initial:
            send("ADDED", obj)
        deadline = time.monotonic() + timeout
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                with store.changed:
                    try:
                        events = store.events_after(position, rtype)
                    except ApiError as error:
                        send("ERROR", error.status())
                        break
                    if not events:
                        store.changed.wait(min(remaining, 1.0))
                        continue
                for event in events:
                    position = event.resource_version
                    ns = event.object["metadata"].get("namespace")
                    if (namespace is None or ns == namespace) and matches(event.object):
                        send(event.type, event.object)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            pass


class KubeApiServer(ThreadingHTTPServer):
    """Threading HTTPS server; the TLS handshake happens in the connection's own thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, api: KubeApi, tls: ssl.SSLContext, request_log: RequestLog) -> None:
        self.api = api
        self.tls = tls
        self.request_log = request_log
        super().__init__((api.address, api.port), Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(IDLE_TIMEOUT)
        # Headers and body go out in separate writes: without NODELAY, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every response.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            connection.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self.request_log.write("TLS", "-", 0, f"handshake-failed:{type(exc).__name__}")
            _close_after_alert(connection)
            return
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()


#: How long a refused client may take to read the handshake alert before its connection is dropped.
ALERT_GRACE = 1.0


def _close_after_alert(connection: ssl.SSLSocket) -> None:
    """Close a connection whose handshake failed so that the client reads the server's alert.

    With TLS 1.3 the client has finished its side (and sent its request) before the server rejects
    its certificate. Closing with that request unread makes the kernel send a reset, and the
    client then often sees a bare EOF instead of "unknown ca"; sending FIN and reading what is left
    first lets the alert arrive.
    """
    with contextlib.suppress(OSError):
        socket.socket.shutdown(connection, socket.SHUT_WR)
        connection.settimeout(ALERT_GRACE)
        while socket.socket.recv(connection, 65536):
            pass
    connection.close()


def server_context(cert_chain: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """The server's TLS context; with ``client_ca`` it asks for client certificates issued under it.

    Asked for, not required: token clients send none. A certificate that does not chain to
    ``client_ca`` fails the handshake: Python's ``ssl`` cannot hand it over unverified to be treated
    as anonymous (401), which is what kube-apiserver does; either way the client is refused.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_chain), str(key))
    context.set_alpn_protocols(["http/1.1"])
    if client_ca is not None:
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cafile=str(client_ca))
    return context


def build_server(config: dict[str, Any]) -> KubeApiServer:
    """The server described by ``config.json`` (see ``KubeApiPart``), bound but not yet serving."""
    cluster = Cluster.load(config["cluster"])
    volumes_dir = config.get("volumes_dir")
    class_dirs = {name: Path(path) for name, path in (config.get("class_volumes_dirs") or {}).items()}
    api = KubeApi(
        cluster, config["address"], int(config["port"]), Path(volumes_dir) if volumes_dir else None, class_dirs
    )
    client_ca = config.get("client_ca")
    tls = server_context(Path(config["cert_chain"]), Path(config["key"]), Path(client_ca) if client_ca else None)
    return KubeApiServer(api, tls, RequestLog(Path(config["request_log"])))
