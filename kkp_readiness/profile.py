"""Loading a profile: find it, compose ``extends``, interpolate the lab, validate, resolve secrets.

Every problem is a :class:`ProfileError` whose message names the file, the line where known,
the field path and what is wrong, so that a bad profile stops the run before any check.

>>> loaded = load_profile("vsphere")            # doctest: +SKIP
>>> loaded.profile.base_domain                  # doctest: +SKIP
'kubermatic.example.com'
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from kkp_readiness.errors import ProfileError
from kkp_readiness.profile_model import Profile
from kkp_readiness.secrets import SecretRef, SecretResolutionError

PROJECT_PROFILES = Path(__file__).resolve().parent.parent / "profiles"
LAB_REFERENCE = re.compile(r"\$\{lab:(?P<key>[A-Za-z0-9_.]+)\}")
FieldPath = tuple[str | int, ...]


def format_path(path: FieldPath) -> str:
    """``('seeds', 0, 'name')`` -> ``seeds[0].name``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


@dataclass(frozen=True)
class SourceFile:
    path: Path
    sha256: str


@dataclass
class LoadedProfile:
    """A validated profile and where it came from."""

    profile: Profile
    path: Path
    files: list[SourceFile]
    document: dict[str, Any]
    provenance: dict[FieldPath, tuple[Path, int | None]] = field(repr=False)
    lab_state: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def sha256(self) -> str:
        """SHA-256 of the effective document (``extends`` merged, references unresolved)."""
        canonical = json.dumps(self.document, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def resolve_path(self, field: FieldPath, value: str | None) -> str | None:
        """A file path from the profile: ``~`` expanded, relative to the profile file that set it."""
        if not value:
            return None
        path = Path(os.path.expanduser(value))
        if path.is_absolute():
            return str(path)
        source = self.provenance.get(field, (self.path, None))[0]
        return str(source.parent / path)

    def where(self, path: FieldPath) -> str:
        """``file:line`` of the most specific known place that set ``path``."""
        for length in range(len(path), -1, -1):
            hit = self.provenance.get(path[:length])
            if hit:
                file, line = hit
                return f"{_display(file)}:{line}" if line else _display(file)
        return _display(self.path)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def search_dirs() -> list[Path]:
    """Where profile names are looked up: $KKP_READINESS_PROFILES, ./profiles, the project's."""
    dirs = [Path(p) for p in os.environ.get("KKP_READINESS_PROFILES", "").split(os.pathsep) if p]
    return [*dirs, Path.cwd() / "profiles", PROJECT_PROFILES]


def find_profile(reference: str, relative_to: Path | None = None) -> Path:
    """A name (``vsphere``) or a path (``profiles/my-site.yaml``) to an existing file."""
    looks_like_path = "/" in reference or reference.endswith((".yaml", ".yml"))
    if looks_like_path:
        candidates = [Path(reference)] if relative_to is None else [relative_to / reference, Path(reference)]
    else:
        dirs = ([relative_to] if relative_to else []) + search_dirs()
        candidates = [d / f"{reference}{ext}" for d in dirs for ext in (".yaml", ".yml")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    if looks_like_path:
        raise ProfileError(f"profile file {reference} does not exist")
    known = sorted({p.stem for d in search_dirs() if d.is_dir() for p in d.glob("*.y*ml")})
    raise ProfileError(f"no profile named {reference!r}; known profiles: {', '.join(known) or 'none'}")


def _line_map(node: yaml.Node, path: FieldPath = ()) -> Iterator[tuple[FieldPath, int]]:
    """Line numbers (1-based) of every mapping key and sequence item in a composed YAML tree."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, str(key_node.value))
            yield child, key_node.start_mark.line + 1
            yield from _line_map(value_node, child)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            yield child, item.start_mark.line + 1
            yield from _line_map(item, child)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys: the second ``certificates:`` block must not silently win."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[FieldPath, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{_display(path)}: cannot read: {exc.strerror}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{_display(path)}:{mark.line + 1}:{mark.column + 1}" if mark else _display(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError(f"{where}: YAML syntax error: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(f"{_display(path)}: a profile must be a mapping, found {type(data).__name__}")
    lines = dict(_line_map(node)) if node is not None else {}
    return data, lines


def _merge(base: Any, override: Any) -> Any:
    """Deep-merge mappings; any other value (lists included) is replaced by the override."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def _compose(path: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], dict, list[SourceFile]]:
    """Load ``path`` with everything it extends; later files override earlier ones."""
    if path in chain:
        cycle = " -> ".join(_display(p) for p in (*chain, path))
        raise ProfileError(f"circular extends: {cycle}")
    data, lines = _read_yaml(path)
    parents = data.pop("extends", None)
    if parents is None:
        parents = []
    elif isinstance(parents, str):
        parents = [parents]
    elif not (isinstance(parents, list) and all(isinstance(p, str) for p in parents)):
        raise ProfileError(f"{_display(path)}:{lines.get(('extends',), '?')}: extends: must be a name or a list")
    merged: dict[str, Any] = {}
    provenance: dict[FieldPath, tuple[Path, int | None]] = {}
    files: list[SourceFile] = []
    for parent in parents:
        try:
            parent_path = find_profile(parent, relative_to=path.parent)
        except ProfileError as exc:
            raise ProfileError(f"{_display(path)}:{lines.get(('extends',), '?')}: extends: {exc}") from None
        parent_data, parent_provenance, parent_files = _compose(parent_path, (*chain, path))
        merged = _merge(merged, parent_data)
        provenance.update(parent_provenance)
        files.extend(f for f in parent_files if f not in files)
    merged = _merge(merged, data)
    provenance.update({key: (path, line) for key, line in lines.items() if key != ("extends",)})
    files.append(SourceFile(path, hashlib.sha256(path.read_bytes()).hexdigest()))
    return merged, provenance, files


def lab_dir() -> Path:
    """Where a running lab keeps its state (``kkp-readiness lab up`` writes it)."""
    configured = os.environ.get("KKP_READINESS_LAB_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "kkp-readiness" / "lab"


def _lab_state() -> dict[str, Any] | None:
    state_file = lab_dir() / "state.json"
    try:
        return json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _interpolate_lab(document: Any, loaded: LoadedProfile, path: FieldPath = ()) -> Any:
    """Replace ``${lab:dotted.key}`` with values from the running lab's state file."""
    if isinstance(document, dict):
        return {k: _interpolate_lab(v, loaded, (*path, k)) for k, v in document.items()}
    if isinstance(document, list):
        return [_interpolate_lab(v, loaded, (*path, i)) for i, v in enumerate(document)]
    if not isinstance(document, str) or "${lab:" not in document:
        return document
    state = loaded.lab_state if loaded.lab_state is not None else _lab_state()
    loaded.lab_state = state
    if state is None:
        raise ProfileError(
            f"{loaded.where(path)}: {format_path(path)}: needs the running lab ({document}), but no lab state "
            f"was found in {lab_dir()}; start it with `kkp-readiness lab up`"
        )

    whole = LAB_REFERENCE.fullmatch(document)
    if whole:
        return lookup_value(state, whole["key"], loaded, path)  # keeps the state file's type (port -> int)
    return LAB_REFERENCE.sub(lambda m: str(lookup_value(state, m["key"], loaded, path)), document)


def lookup_value(state: dict[str, Any], key: str, loaded: LoadedProfile, path: FieldPath) -> Any:
    """A dotted key of the lab state; only scalars can be referenced."""
    value: Any = state
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ProfileError(f"{loaded.where(path)}: {format_path(path)}: the lab state has no {key!r}")
        value = value[part]
    if isinstance(value, (dict, list)):
        raise ProfileError(f"{loaded.where(path)}: {format_path(path)}: lab state {key!r} is not a single value")
    return value


def _leaves(value: Any, path: FieldPath = ()) -> Iterator[tuple[FieldPath, Any]]:
    """Every leaf value of a validated model with its field path (secret references are leaves)."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _leaves(getattr(value, name), (*path, name))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    else:
        yield path, value


def _validation_problems(error: ValidationError, loaded: LoadedProfile) -> list[str]:
    problems = []
    for issue in error.errors():
        path: FieldPath = tuple(p for p in issue["loc"] if not (isinstance(p, str) and "[" in p))
        message = issue["msg"].removeprefix("Value error, ")
        if issue["type"] == "extra_forbidden":
            type_hint = f" (not a field of {format_path(path[:-1])})" if path[:-1] else ""
            message = f"unknown key{type_hint}; check the spelling against the README's profile reference"
        elif issue["type"] == "missing":
            message = "required field is missing"
        else:
            given = issue.get("input")
            sensitive = ("must be references", "must not contain credentials")
            from_secret_field = any(m in message for m in sensitive) or "secret" in format_path(path)
            if given is not None and not isinstance(given, (dict, list)) and not from_secret_field:
                message += f" (got {given!r})"
        problems.append(f"{loaded.where(path)}: {format_path(path)}: {message}")
    return problems


def load_profile(reference: str) -> LoadedProfile:
    """Find, compose, validate and resolve a profile; raises :class:`ProfileError`."""
    path = find_profile(reference)
    document, provenance, files = _compose(path, ())
    if provenance.get(("name",), (path, None))[0] != path:
        document["name"] = path.stem  # a site profile that extends vsphere is not "vsphere"
    loaded = LoadedProfile(
        profile=None, path=path, files=files, document=document, provenance=provenance  # type: ignore[arg-type]
    )
    effective = _interpolate_lab(document, loaded)
    try:
        loaded.profile = Profile.model_validate(effective)
    except ValidationError as exc:
        problems = _validation_problems(exc, loaded)
        raise ProfileError(f"profile {_display(path)} is invalid:\n  " + "\n  ".join(problems)) from None
    leftovers = [f"{loaded.where(p)}: {format_path(p)}: {v!r}: references (${{env:...}}, ${{file:...}}) are only "
                 "allowed in secret fields; write the value itself"
                 for p, v in _leaves(loaded.profile) if isinstance(v, str) and "${" in v]
    if leftovers:
        raise ProfileError(f"profile {_display(path)} is invalid:\n  " + "\n  ".join(leftovers))
    problems = []
    for secret_path, ref in ((p, v) for p, v in _leaves(loaded.profile) if isinstance(v, SecretRef)):
        try:
            ref.resolve(loaded.provenance.get(secret_path, (path, None))[0].parent)
        except SecretResolutionError as exc:
            problems.append(f"{loaded.where(secret_path)}: {format_path(secret_path)}: {exc}")
    if problems:
        raise ProfileError(f"profile {_display(path)} references secrets that cannot be resolved:\n  "
                           + "\n  ".join(problems))
    return loaded
