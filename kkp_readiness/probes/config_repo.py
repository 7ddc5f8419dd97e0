"""Configuration repository probe: read a KKP configuration repository with real git, as data.

The CONFIG checks judge what this module returns; nothing here decides pass or fail. Git is run as a
subprocess (with a timeout and without the user's or the system's git configuration) because only git
itself knows what is tracked, which attributes apply and what a committed blob holds: git-crypt
decrypts files in the work tree, so whether a secret is really protected shows only in the object
store (``git cat-file -p HEAD:<file>`` starts with git-crypt's header).

Secret *values* never leave this module: :class:`SecretValue` carries the file, the YAML path and
whether the value is a Vault reference, so no finding or evidence can repeat a secret.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kkp_readiness.errors import ProbeError

#: The first bytes of every blob git-crypt's clean filter writes (see git-crypt's README, "Internals").
GIT_CRYPT_HEADER = b"\x00GITCRYPT\x00"
GIT_TIMEOUT = 10.0
HELM_VALUES = "helm-values"
SECRET_PATHS_FILE = Path(__file__).resolve().parent.parent / "data" / "config_secret_paths.yaml"


class ConfigRepoError(ProbeError):
    """The repository could not be read (no git, timeout, unreadable file): the check could not look."""


def git_environment(home: Path | None = None) -> dict[str, str]:
    """An environment in which git reads no user or system configuration (a site's aliases, hooks or
    pagers must not change what the probe sees); ``home`` gives git a HOME of its own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    if home is not None:
        env["HOME"] = str(home)
    return env


def run_git(repo: Path, *args: str, env: dict[str, str] | None = None, check: bool = True,
            timeout: float = GIT_TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    """``git -C repo args`` with a clean environment; ``safe.directory`` lets root read a repository
    another user owns (a checkout on a bastion), as reading is all the probe does."""
    command = ["git", "-c", "safe.directory=*", "-C", str(repo), *args]
    try:
        done = subprocess.run(command, env=env or git_environment(), capture_output=True, timeout=timeout,
                              check=False)
    except FileNotFoundError:
        raise ConfigRepoError("git is not installed on this machine") from None
    except subprocess.TimeoutExpired:
        raise ConfigRepoError(f"git {' '.join(args)} in {repo} did not finish within {timeout:g} s") from None
    if check and done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigRepoError(f"git {' '.join(args)} in {repo} failed: {message[-1] if message else done.returncode}")
    return done


def _redact_url(url: str) -> str:
    """A remote URL without the user:token part an HTTPS remote may carry."""
    return re.sub(r"//[^/@]*@", "//***@", url)


@dataclass(frozen=True)
class RepoFacts:
    """What git says about a configuration repository."""

    path: str
    work_tree: bool
    head: str | None
    remotes: dict[str, str]
    tracked: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "work_tree": self.work_tree, "head": self.head, "remotes": self.remotes,
                "tracked_files": sorted(self.tracked)}


def read_repo(path: Path) -> RepoFacts:
    """Whether ``path`` is the top of a git work tree, its HEAD commit, remotes and tracked files."""
    if not path.is_dir():
        raise ConfigRepoError(f"{path} is not a directory (config_repo.path)")
    inside = run_git(path, "rev-parse", "--show-toplevel", check=False)
    if inside.returncode != 0:
        return RepoFacts(str(path), False, None, {}, frozenset())
    head = run_git(path, "rev-parse", "--verify", "-q", "HEAD", check=False)
    remotes = {}
    for line in run_git(path, "remote", "-v").stdout.decode().splitlines():
        name, url, *_ = line.split()
        remotes[name] = _redact_url(url)
    tracked = run_git(path, "ls-files", "-z", "--full-name", "--", ".").stdout.decode().split("\0")
    prefix = run_git(path, "rev-parse", "--show-prefix").stdout.decode().strip()
    return RepoFacts(str(path), True, head.stdout.decode().strip() or None, remotes,
                     frozenset(name.removeprefix(prefix) for name in tracked if name))


@dataclass(frozen=True)
class Encryption:
    """How one file is protected by git-crypt: marked in .gitattributes, encrypted in the HEAD commit."""

    file: str
    marked: bool
    encrypted_in_head: bool

    @property
    def protected(self) -> bool:
        return self.marked and self.encrypted_in_head


def git_crypt_state(repo: Path, file: str) -> Encryption:
    """Read the ``filter`` attribute of ``file`` and the first bytes of its committed blob.

    Why both: a line in .gitattributes protects only what is committed after it, and a blob committed
    without the filter (git-crypt not set up on that clone) is plain text although the file is marked.
    """
    attribute = run_git(repo, "check-attr", "filter", "--", file).stdout.decode().strip()
    marked = attribute.endswith(": git-crypt")
    blob = run_git(repo, "cat-file", "-p", f"HEAD:./{file}", check=False)
    return Encryption(file, marked, blob.returncode == 0 and blob.stdout.startswith(GIT_CRYPT_HEADER))


def work_tree_locked(path: Path) -> bool:
    """True if the work-tree file itself is git-crypt ciphertext (a clone that was never unlocked)."""
    with path.open("rb") as stream:
        return stream.read(len(GIT_CRYPT_HEADER)) == GIT_CRYPT_HEADER


def load_documents(path: Path) -> list[Any]:
    """Every YAML document of ``path`` (empty documents dropped); yaml.YAMLError for bad syntax."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigRepoError(f"cannot read {path}: {exc}") from None
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def document_kind(document: Any) -> str | None:
    """``kind`` of a Kubernetes object, ``helm-values`` for another mapping, None for anything else."""
    if not isinstance(document, dict):
        return None
    if "apiVersion" in document and "kind" in document:
        return str(document["kind"])
    return HELM_VALUES


@dataclass(frozen=True)
class SecretPath:
    applies_to: str
    path: str
    docs: str


@dataclass(frozen=True)
class VaultReference:
    prefix: str
    tool: str
    docs: str


@functools.cache
def secret_catalogue() -> tuple[tuple[SecretPath, ...], tuple[VaultReference, ...]]:
    """The known secret paths and Vault reference forms (kkp_readiness/data/config_secret_paths.yaml)."""
    data = yaml.safe_load(SECRET_PATHS_FILE.read_text(encoding="utf-8"))
    return (tuple(SecretPath(**entry) for entry in data["secret_paths"]),
            tuple(VaultReference(**entry) for entry in data["vault_references"]))


def _walk(node: Any, keys: list[str], where: str) -> Iterator[tuple[str, Any]]:
    if not keys:
        yield where, node
        return
    key, rest = keys[0], keys[1:]
    if isinstance(node, dict):
        items = node.items() if key == "*" else ([(key, node[key])] if key in node else [])
        for name, child in items:
            yield from _walk(child, rest, f"{where}.{name}" if where else str(name))
    elif isinstance(node, list) and key == "*":
        for index, child in enumerate(node):
            yield from _walk(child, rest, f"{where}[{index}]")


def values_at(document: Any, pattern: str) -> list[tuple[str, Any]]:
    """(concrete path, value) for every place ``pattern`` (dotted, ``*`` wildcards) matches.

    >>> values_at({"dex": {"clients": [{"id": "kkp", "secret": "s"}]}}, "dex.clients.*.secret")
    [('dex.clients[0].secret', 's')]
    """
    return list(_walk(document, pattern.split("."), ""))


def vault_reference(value: Any) -> VaultReference | None:
    """The documented Vault reference form ``value`` uses, if any."""
    if isinstance(value, str):
        for reference in secret_catalogue()[1]:
            if value.strip().startswith(reference.prefix):
                return reference
    return None


@dataclass(frozen=True)
class SecretValue:
    """A non-empty value at a known secret path; never the value itself."""

    file: str
    path: str
    kind: str
    docs: str
    vault: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "path": self.path, "kind": self.kind, "docs": self.docs,
                "vault_reference": self.vault}


def secret_values(file: str, documents: list[Any]) -> list[SecretValue]:
    """Every non-empty value at a known secret path of ``documents`` (the content of ``file``)."""
    found = []
    for index, document in enumerate(documents):
        kind = document_kind(document)
        prefix = f"[document {index}] " if len(documents) > 1 else ""
        for entry in secret_catalogue()[0]:
            if entry.applies_to != kind:
                continue
            for where, value in values_at(document, entry.path):
                if value in (None, "") or isinstance(value, (dict, list)):
                    continue
                reference = vault_reference(value)
                found.append(SecretValue(file, prefix + where, kind, entry.docs, reference.tool if reference else None))
    return found
