"""How to reach the bastion: the profile's fields, an OpenSSH client configuration, jump hosts, the agent.

Why: operators already describe their bastion in ``~/.ssh/config`` (HostName, Port, User, IdentityFile,
UserKnownHostsFile, ProxyJump) and keep keys in ``ssh-agent``; the suite reaches the bastion the way
their ``ssh`` does instead of asking them to repeat it. Precedence is ``ssh``'s: what the profile sets
explicitly wins (as ``ssh -p``/``-l``/``-i``/``-J`` do), the configuration fills in the rest.
This module only computes the route; ``fixtures/bastion.py`` dials it, verifying every hop's host key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import paramiko

from kkp_readiness.profile_model import BastionSpec, split_endpoint

DEFAULT_KEY = "~/.ssh/id_ed25519"
DEFAULT_SSH_CONFIG = "~/.ssh/config"


@dataclass(frozen=True)
class Hop:
    """One SSH server on the way: who logs in where."""

    user: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Route:
    """The bastion, the jump hosts before it (in order), the key files (empty: the agent) and known_hosts."""

    bastion: Hop
    jumps: tuple[Hop, ...] = ()
    key_files: tuple[str, ...] = ()
    known_hosts: str | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)


def parse_jump(text: str, default_user: str) -> Hop:
    """``[user@]host[:port]`` (``[v6]:port`` too), as ``ssh -J`` and ProxyJump write a hop."""
    user, _, rest = text.strip().rpartition("@")
    host, port = split_endpoint(rest, 22)
    return Hop(user or default_user, host, port)


def read_ssh_config(path: str, alias: str) -> dict[str, object]:
    """What OpenSSH's configuration at ``path`` says about ``alias`` (paramiko's ``SSHConfig.lookup``)."""
    try:
        config = paramiko.SSHConfig.from_path(os.path.expanduser(path))
    except OSError as exc:
        raise ValueError(f"cannot read the SSH client configuration {path}: {exc}") from None
    return dict(config.lookup(alias))


def resolve_jump(text: str, default_user: str, config_path: str | None) -> Hop:
    """A jump hop; with a configuration, an alias gets its HostName, and Port/User unless the hop names them."""
    hop = parse_jump(text, default_user)
    if config_path is None:
        return hop
    found = read_ssh_config(config_path, hop.host)
    named_user = "@" in text
    named_port = text.strip().rpartition("@")[2].rsplit("]", 1)[-1].count(":") == 1
    return Hop(hop.user if named_user else str(found.get("user", default_user)), str(found.get("hostname", hop.host)),
               hop.port if named_port else int(str(found.get("port", 22))))


def build_route(spec: BastionSpec, key_file: str | None, known_hosts: str | None,
                ssh_config: str | None = None) -> Route:
    """The route to the bastion from the profile (``key_file``/``known_hosts`` already resolved to paths).

    Keys: the profile's ``key_file``, else the configuration's IdentityFile(s), else the agent when
    ``SSH_AUTH_SOCK`` is set (``key_files`` empty), else ``~/.ssh/id_ed25519``.
    """
    explicit = spec.model_fields_set
    sources: dict[str, str] = {}
    host, port, user = spec.host, spec.port, spec.user
    config_path = (ssh_config or DEFAULT_SSH_CONFIG) if spec.use_ssh_config else None
    jumps_text = list(spec.proxy_jump)
    key_files = [key_file] if key_file else []
    if config_path is not None:
        path = config_path
        found = read_ssh_config(path, spec.host)
        host = str(found.get("hostname", spec.host))
        sources["host"] = f"HostName of {spec.host} in {path}"
        if "port" not in explicit and "port" in found:
            port, sources["port"] = int(str(found["port"])), path
        if user is None and "user" in found:
            user, sources["user"] = str(found["user"]), path
        if not key_files and found.get("identityfile"):
            key_files = [os.path.expanduser(str(f)) for f in found["identityfile"]]  # type: ignore[attr-defined]
        if known_hosts is None and found.get("userknownhostsfile"):
            known_hosts = os.path.expanduser(str(found["userknownhostsfile"]).split()[0])
        if not jumps_text and found.get("proxyjump") and str(found["proxyjump"]).lower() != "none":
            jumps_text = str(found["proxyjump"]).split(",")
    if user is None:
        raise ValueError("bastion.user is not set and the SSH client configuration names no User")
    if not key_files and not os.environ.get("SSH_AUTH_SOCK"):
        key_files = [os.path.expanduser(DEFAULT_KEY)]
    bastion_host, bastion_port = split_endpoint(host, port)
    jumps = tuple(resolve_jump(text, user, config_path) for text in jumps_text)
    return Route(Hop(user, bastion_host, bastion_port), jumps, tuple(key_files), known_hosts, sources)


def describe_keys(route: Route) -> str:
    """The keys tried, for messages (never their content)."""
    return ", ".join(route.key_files) if route.key_files else "the keys of ssh-agent ($SSH_AUTH_SOCK)"
