"""Secret scrubbing, including base64-embedded forms at every alignment."""

from __future__ import annotations

import base64

import pytest

from kkp_readiness import redact


@pytest.fixture(autouse=True)
def _clean():
    redact.clear()
    yield
    redact.clear()


@pytest.mark.parametrize("prefix", [b"", b"a", b"ab", b"abc", b"key: "])
@pytest.mark.parametrize("suffix", [b"", b"!", b"xy"])
def test_base64_embedded_secret_is_scrubbed(prefix: bytes, suffix: bytes) -> None:
    secret = "canary-7f3a-secret"
    redact.register(secret)
    encoded = base64.b64encode(prefix + secret.encode() + suffix).decode()
    scrubbed = redact.redact(f"data:text/plain;base64,{encoded}")
    assert redact.MASK in scrubbed
    assert secret not in scrubbed


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="shorter"):
        redact.register("abc")


def test_scrub_tree_rewrites_only_files_with_secrets(tmp_path) -> None:
    redact.register("topsecret-value")
    (tmp_path / "a.txt").write_text("has topsecret-value inside")
    (tmp_path / "b.txt").write_text("clean")
    (tmp_path / "c.bin").write_bytes(b"\xff\xfe\x00")
    changed = redact.scrub_tree(tmp_path)
    assert [p.name for p in changed] == ["a.txt"]
    assert "topsecret-value" not in (tmp_path / "a.txt").read_text()


def test_nested_objects_are_redacted() -> None:
    redact.register("topsecret-value")
    assert redact.redact_obj({"k": ["topsecret-value", 1]}) == {"k": [redact.MASK, 1]}


@pytest.mark.parametrize("secret", ['Pa"ss-w0rd&<zz>', "back\\slash-secret", "ünïcode-sëcret"])
def test_escaped_forms_in_json_and_html_are_scrubbed(tmp_path, secret: str) -> None:
    import html
    import json

    redact.register(secret)
    (tmp_path / "r.json").write_text(json.dumps({"message": f"AssertionError: {secret}"}))
    (tmp_path / "r.html").write_text(f"<td>{html.escape(secret)}</td>")
    redact.scrub_tree(tmp_path)
    assert secret not in json.loads((tmp_path / "r.json").read_text())["message"]
    assert html.escape(secret) not in (tmp_path / "r.html").read_text()
