"""The run manifest: hashes of every artifact, the Ed25519 signature, and what verify names after a change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kkp_readiness.report import manifest


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "allure-results").mkdir(parents=True)
    (run / "results.json").write_text('{"exit_code": 0}')
    (run / "report.html").write_text("<html>pass</html>")
    (run / "allure-results" / "a-result.json").write_text("{}")
    return run


def test_an_untouched_run_verifies(tmp_path: Path) -> None:
    run = _run(tmp_path)
    written = manifest.write_manifest(run, "r1")
    assert [f["path"] for f in written["files"]] == ["allure-results/a-result.json", "report.html", "results.json"]
    result = manifest.verify_run(run)
    assert result.ok
    assert result.checked == 3
    assert result.signature == "unsigned"


def test_one_changed_byte_names_the_file(tmp_path: Path) -> None:
    run = _run(tmp_path)
    manifest.write_manifest(run, "r1")
    (run / "report.html").write_text("<html>fail</html>")
    result = manifest.verify_run(run)
    assert not result.ok
    assert result.changed == ["report.html"]
    assert "changed:  report.html (its SHA-256 differs from the manifest's)" in result.lines()


def test_missing_and_added_files_are_named(tmp_path: Path) -> None:
    run = _run(tmp_path)
    manifest.write_manifest(run, "r1")
    (run / "results.json").unlink()
    (run / "extra.txt").write_text("slipped in")
    result = manifest.verify_run(run)
    assert (result.missing, result.unlisted) == (["results.json"], ["extra.txt"])


def test_a_signed_manifest_verifies_with_its_key_and_not_after_an_edit(tmp_path: Path) -> None:
    run = _run(tmp_path)
    key = Ed25519PrivateKey.generate()
    manifest.write_manifest(run, "r1", key)
    assert manifest.verify_run(run, key.public_key()).signature == "valid"
    other = Ed25519PrivateKey.generate().public_key()
    assert manifest.verify_run(run, other).signature == "wrong-key"
    # Someone re-hashes an edited report into the manifest: the signature no longer matches.
    (run / "report.html").write_text("<html>edited</html>")
    body = json.loads((run / manifest.MANIFEST).read_text())
    body["files"][1]["sha256"] = manifest.sha256_file(run / "report.html")
    (run / manifest.MANIFEST).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    result = manifest.verify_run(run)
    assert result.changed == []
    assert result.signature == "invalid"
    assert not result.ok


def test_a_removed_signature_is_missing(tmp_path: Path) -> None:
    run = _run(tmp_path)
    manifest.write_manifest(run, "r1", Ed25519PrivateKey.generate())
    (run / manifest.SIGNATURE).unlink()
    assert manifest.verify_run(run).signature == "missing"


@pytest.mark.parametrize("encoding", ["pem", "openssh"])
def test_signing_keys_load_from_pem_and_openssh_with_a_passphrase(tmp_path: Path, encoding: str) -> None:
    key = Ed25519PrivateKey.generate()
    fmt = serialization.PrivateFormat.PKCS8 if encoding == "pem" else serialization.PrivateFormat.OpenSSH
    path = tmp_path / "handover.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt,
                                       serialization.BestAvailableEncryption(b"s3cret-phrase")))
    loaded = manifest.load_signing_key(path, "s3cret-phrase")
    assert manifest.key_fingerprint(loaded.public_key()) == manifest.key_fingerprint(key.public_key())
    with pytest.raises(manifest.ManifestError, match="cannot be loaded"):
        manifest.load_signing_key(path, "wrong")


def test_a_non_ed25519_key_is_refused_with_how_to_make_one(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / "ec.key"
    path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(manifest.ManifestError, match="openssl genpkey -algorithm ed25519"):
        manifest.load_signing_key(path)
