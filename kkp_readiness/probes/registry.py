"""Registry probe: the Docker Registry HTTP API v2 as a pulling client speaks it, read-only.

Why: the offline mirror (PROXY-006..008) and the Enterprise Edition pull secret (INSTALLER-003/004)
are proven the way containerd proves them when it pulls: ``GET /v2/`` and its ``WWW-Authenticate``
challenge, then either Basic authentication or the token flow (``GET <realm>?service=...&scope=
repository:<name>:pull`` with the credentials, answered by a bearer token), then a ``HEAD`` of the
image manifest. Nothing is ever pushed or deleted. Requests go through :mod:`egress` (the bastion,
the proxy), so the answers are those the installation will get.

Tokens and passwords are only sent; evidence carries statuses and challenges, never a credential.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from kkp_readiness.probes.egress import HttpAnswer

#: What a pull accepts (OCI and Docker, single images and multi-arch indexes).
MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
#: (url, method, headers) -> answer; egress.request with the route, trust and proxy bound.
Fetch = Callable[[str, str, dict[str, str]], HttpAnswer]


@dataclass(frozen=True)
class ImageRef:
    """``registry/repository:tag`` (or ``@sha256:...``) split as container runtimes split it."""

    registry: str
    repository: str
    reference: str

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Docker's rules: a first component with a dot, a colon or "localhost" is a registry."""
        name, reference = text, "latest"
        if "@" in name:
            name, reference = name.split("@", 1)
        elif re.search(r":[^/]+$", name):
            name, reference = name.rsplit(":", 1)
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, rest
        else:
            registry, repository = "docker.io", name
        if registry == "docker.io" and "/" not in repository:
            repository = f"library/{repository}"
        return cls(registry, repository, reference)

    def in_registry(self, registry: str) -> ImageRef:
        """The same image in another registry, as ``kubermatic-installer mirror-images`` places it."""
        return ImageRef(registry, self.repository, self.reference)

    def __str__(self) -> str:
        separator = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry}/{self.repository}{separator}{self.reference}"


@dataclass(frozen=True)
class Credentials:
    """A registry login; ``password`` never appears in a repr, a message or evidence."""

    username: str
    password: str = field(repr=False)

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    @classmethod
    def from_docker_config(cls, text: str, registry: str) -> Credentials:
        """The entry for ``registry`` of a ``.dockerconfigjson`` (``auths.<registry>.auth`` or user/password).

        Raises ValueError naming what is wrong (never the content): not JSON, no entry, no credentials.
        """
        try:
            auths = json.loads(text)["auths"]
        except (ValueError, KeyError, TypeError):
            raise ValueError("the pull secret is not a Docker config JSON (an object with \"auths\")") from None
        entry = next((v for k, v in auths.items() if _registry_host(k) == registry), None)
        if not isinstance(entry, dict):
            raise ValueError(f"the pull secret has no entry for {registry} (it has {sorted(auths)})")
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise ValueError(f"the pull secret's auth for {registry} is not base64 of user:password") from None
            return cls(user, password)
        if entry.get("username") and entry.get("password"):
            return cls(entry["username"], entry["password"])
        raise ValueError(f"the pull secret's entry for {registry} holds no credentials")


def _registry_host(key: str) -> str:
    """``https://quay.io/v1/`` and ``quay.io`` name the same registry in a Docker config."""
    return re.sub(r"^https?://", "", key).split("/", 1)[0]


@dataclass(frozen=True)
class Challenge:
    """A ``WWW-Authenticate`` header: scheme (bearer, basic) and its parameters."""

    scheme: str
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> Challenge | None:
        match = re.match(r"\s*(\w+)\s*(.*)", header or "")
        if not match:
            return None
        params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', match.group(2))}
        return cls(match.group(1).lower(), params)


@dataclass(frozen=True)
class Access:
    """The outcome of logging in for one repository: headers to send, or the problem."""

    headers: dict[str, str] = field(repr=False)
    problem: str | None
    how: str
    answer: HttpAnswer | None = None


class RegistrySession:
    """One registry, its challenge read once, an authorization per repository (read-only)."""

    def __init__(self, base_url: str, fetch: Fetch, credentials: Credentials | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.fetch = fetch
        self.credentials = credentials
        self._api: HttpAnswer | None = None
        self._access: dict[str, Access] = {}

    def api(self) -> HttpAnswer:
        """``GET /v2/``: 200, or 401 with a challenge, from a registry speaking the v2 API."""
        if self._api is None:
            self._api = self.fetch(f"{self.base_url}/v2/", "GET", {})
        return self._api

    def speaks_v2(self) -> str | None:
        """None if the answer is a v2 registry's; else what is wrong with it."""
        answer = self.api()
        if not answer.answered:
            return answer.summary()
        if answer.status == 200:
            return None
        if answer.status == 401 and Challenge.parse(answer.header("www-authenticate")):
            return None
        return f"{answer.summary()} (expected 200, or 401 with a WWW-Authenticate challenge)"

    def access(self, repository: str) -> Access:
        """Authorization for pulling ``repository``, by whatever the registry's challenge asks for."""
        if repository not in self._access:
            self._access[repository] = self._authorize(repository)
        return self._access[repository]

    def _authorize(self, repository: str) -> Access:
        problem = self.speaks_v2()
        if problem:
            return Access({}, f"the registry does not answer as a v2 registry: {problem}", "none")
        answer = self.api()
        if answer.status == 200:
            return Access({}, None, "anonymous (GET /v2/ answered 200)")
        challenge = Challenge.parse(answer.header("www-authenticate"))
        assert challenge is not None
        who = f"user {self.credentials.username}" if self.credentials else "no credentials"
        if challenge.scheme == "basic":
            if not self.credentials:
                return Access({}, "the registry wants Basic authentication and no credentials are set", "basic")
            header = {"Authorization": self.credentials.basic()}
            checked = self.fetch(f"{self.base_url}/v2/", "GET", header)
            if checked.status == 200:
                return Access(header, None, f"basic authentication as {who}", checked)
            return Access({}, f"the registry refused {who}: {checked.summary()}", "basic", checked)
        if challenge.scheme != "bearer" or not challenge.params.get("realm"):
            return Access({}, f"unsupported challenge {answer.header('www-authenticate')!r}", challenge.scheme)
        query = {"scope": f"repository:{repository}:pull"}
        if challenge.params.get("service"):
            query = {"service": challenge.params["service"], **query}
        token_url = f"{challenge.params['realm']}?{urlencode(query)}"
        headers = {"Authorization": self.credentials.basic()} if self.credentials else {}
        reply = self.fetch(token_url, "GET", headers)
        how = f"token from {challenge.params['realm']} for {who}"
        if reply.status != 200:
            return Access({}, f"the token service refused {who}: {reply.summary()}", how, reply)
        try:
            document = json.loads(reply.body)
            token = document.get("token") or document.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            return Access({}, f"the token service answered 200 without a token ({reply.url})", how, reply)
        return Access({"Authorization": f"Bearer {token}"}, None, how, reply)

    def manifest(self, image: ImageRef) -> tuple[Access, HttpAnswer | None]:
        """``HEAD`` of the image's manifest with the repository's authorization (None if none was had)."""
        access = self.access(image.repository)
        if access.problem:
            return access, None
        url = f"{self.base_url}/v2/{image.repository}/manifests/{image.reference}"
        return access, self.fetch(url, "HEAD", {"Accept": MANIFEST_TYPES, **access.headers})
