"""Scrubbing of resolved secrets from everything the run writes.

Every secret a profile resolves is registered here; every text the suite emits (messages,
evidence, reports) passes through :func:`redact`, and the finished report directory is
scrubbed once more as a safety net (:func:`scrub_tree`). Base64 forms are scrubbed too,
because self-contained HTML reports embed attachments base64-encoded.
"""

from __future__ import annotations

import base64
from pathlib import Path

MASK = "***REDACTED***"
_MIN_SECRET_LENGTH = 4
_secrets: set[str] = set()


def register(value: str) -> None:
    """Remember ``value`` as a secret (very short values would mask ordinary text and are refused)."""
    if len(value) < _MIN_SECRET_LENGTH:
        raise ValueError(f"secret values shorter than {_MIN_SECRET_LENGTH} characters cannot be scrubbed")
    _secrets.add(value)
    stripped = value.strip()
    if stripped != value and len(stripped) >= _MIN_SECRET_LENGTH:
        _secrets.add(stripped)


def registered() -> frozenset[str]:
    """The secrets known to this process."""
    return frozenset(_secrets)


def clear() -> None:
    """Forget every secret (tests only)."""
    _secrets.clear()


def _forms(secret: str) -> list[str]:
    """The secret and its base64 forms at every byte alignment, longest first."""
    raw = secret.encode()
    forms = [secret]
    for shift in range(3):
        padded = b"\0" * shift + raw
        encoded = base64.b64encode(padded).decode()
        # Drop the characters that depend on the unknown neighbouring bytes.
        start = (shift * 4 + 2) // 3 if shift else 0
        core = encoded[start:]
        core = core.rstrip("=")
        if len(raw) % 3 or shift:
            core = core[:-1] if len(core) > 1 else core
        if len(core) >= 8:
            forms.append(core)
    return sorted(set(forms), key=len, reverse=True)


def redact(text: str) -> str:
    """Replace every registered secret (plain or base64-embedded) in ``text`` by a mask."""
    if not _secrets or not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        for form in _forms(secret):
            if form in text:
                text = text.replace(form, MASK)
    return text


def redact_obj(value: object) -> object:
    """Redact strings inside nested dicts/lists (for JSON evidence)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_obj(k): redact_obj(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_obj(v) for v in value]
    return value


def scrub_tree(root: Path) -> list[Path]:
    """Redact every text file under ``root`` in place; returns the files that had to change."""
    changed: list[Path] = []
    if not _secrets:
        return changed
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        clean = redact(text)
        if clean != text:
            path.write_text(clean, encoding="utf-8")
            changed.append(path)
    return changed
