"""Secret references: the only way a profile may hold a secret.

A profile never contains a password; it says where to find one: ``${env:NAME}`` or
``${file:PATH}``. The loader resolves references once, registers each value with
:mod:`kkp_readiness.redact`, and the value is only reachable through :meth:`SecretRef.reveal`,
so that printing a profile, a model dump or a repr never shows it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic_core import core_schema

from kkp_readiness import redact

REFERENCE = re.compile(r"^\$\{(?P<kind>env|file):(?P<target>[^}]+)\}$")


class SecretResolutionError(ValueError):
    """A reference could not be resolved (unset variable, unreadable file)."""


class SecretRef:
    """A reference to a secret, resolved on demand and then remembered.

    >>> ref = SecretRef("${env:VSPHERE_PASSWORD}")
    >>> str(ref)
    '${env:VSPHERE_PASSWORD}'
    """

    __slots__ = ("_value", "kind", "reference", "target")

    def __init__(self, reference: str) -> None:
        match = REFERENCE.match(reference.strip())
        if not match:
            raise ValueError(
                "secrets must be references such as ${env:NAME} or ${file:/path/to/file}; "
                "an inline value is not allowed"
            )
        self.reference = reference.strip()
        self.kind = match["kind"]
        self.target = match["target"].strip()
        self._value: str | None = None

    def resolve(self, base_dir: Path) -> str:
        """Read the value (relative files are relative to the profile that names them)."""
        if self.kind == "env":
            value = os.environ.get(self.target)
            if value is None:
                raise SecretResolutionError(f"environment variable {self.target} is not set (referenced as {self})")
            if value == "":
                raise SecretResolutionError(f"environment variable {self.target} is empty (referenced as {self})")
        else:
            path = Path(os.path.expanduser(self.target))
            path = path if path.is_absolute() else base_dir / path
            try:
                value = path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise SecretResolutionError(f"cannot read {path} (referenced as {self}): {exc.strerror}") from None
            if not value:
                raise SecretResolutionError(f"{path} is empty (referenced as {self})")
        try:
            redact.register(value)
        except ValueError as exc:
            raise SecretResolutionError(f"{self}: {exc}") from None
        self._value = value
        return value

    @property
    def resolved(self) -> bool:
        return self._value is not None

    def reveal(self) -> str:
        """The secret itself; only for handing to a client library, never for output."""
        if self._value is None:
            raise SecretResolutionError(f"{self} has not been resolved")
        return self._value

    def __str__(self) -> str:
        return self.reference

    def __repr__(self) -> str:
        return f"SecretRef({self.reference!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretRef) and other.reference == self.reference

    def __hash__(self) -> int:
        return hash(self.reference)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        def validate(value: Any) -> SecretRef:
            if isinstance(value, SecretRef):
                return value
            if not isinstance(value, str):
                raise ValueError("secrets must be references such as ${env:NAME} (a string)")
            return cls(value)

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )
