"""Scrubbing of resolved secrets from everything the run writes.

Every secret a profile resolves is registered here; every text the suite emits (messages,
evidence, reports) passes through :func:`redact`, and the finished report directory is
scrubbed once more as a safety net (:func:`scrub_tree`). Base64 forms are scrubbed too,
because self-contained HTML reports embed attachments base64-encoded.
"""

from __future__ import annotations

import base64
import functools
import html
import json
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


def _escaped(secret: str) -> set[str]:
    """How the secret looks inside JSON, HTML and XML files (quotes, backslashes, <, >, & escaped)."""
    forms = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    forms.add(html.escape(secret, quote=True))
    forms.add(html.escape(secret, quote=False))
    forms.add(secret.replace("&", "&#38;").replace("<", "&#60;").replace(">", "&#62;").replace('"', "&#34;"))
    return forms


@functools.lru_cache(maxsize=512)
def _forms(secret: str) -> tuple[str, ...]:
    """The secret, its escaped forms and its base64 forms at every byte alignment, longest first."""
    raw = secret.encode()
    forms = [secret, *_escaped(secret)]
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
    return tuple(sorted(set(forms), key=len, reverse=True))


@functools.lru_cache(maxsize=8)
def _patterns(secrets: frozenset[str]) -> tuple[str, ...]:
    """Every form of every secret, longest secret first (computed once per set of secrets: a run redacts
    tens of thousands of strings)."""
    return tuple(form for secret in sorted(secrets, key=len, reverse=True) for form in _forms(secret))


def redact(text: str) -> str:
    """Replace every registered secret (plain or base64-embedded) in ``text`` by a mask."""
    if not _secrets or not text:
        return text
    for form in _patterns(frozenset(_secrets)):
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


def scrub_file(path: Path) -> bool:
    """Redact one text file in place (JSON files also value by value, after decoding escapes)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return False
    clean = redact(text)
    if path.suffix == ".json":
        try:
            document = json.loads(clean)
        except ValueError:
            pass
        else:
            scrubbed = redact_obj(document)
            if scrubbed != document:
                clean = json.dumps(scrubbed)
    if clean == text:
        return False
    path.write_text(clean, encoding="utf-8")
    return True


def scrub_tree(root: Path) -> list[Path]:
    """Redact every text file under ``root`` in place; returns the files that had to change."""
    if not _secrets or not root.exists():
        return []
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    return [path for path in files if scrub_file(path)]
