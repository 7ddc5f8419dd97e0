"""The run's manifest: every artifact with its SHA-256, optionally signed (Ed25519), and its verification.

An auditor receives a run directory and must be able to tell that nothing in it changed since the
run: ``manifest.json`` lists every file (path relative to the run directory, size, SHA-256) and is
written last, after the reports were scrubbed of secrets and the Allure report was generated. When the
profile names a signing key (``handover.signing_key``, an Ed25519 private key in PEM), the manifest's
exact bytes are signed and the signature written beside it (``manifest.json.sig``, base64); the
manifest carries the public key and its fingerprint, so ``kkp-readiness verify`` can check the signature
and the auditor can compare the fingerprint with the one the installation team published (or pass the
expected public key with ``--public-key``, which is what proves who signed).

>>> import tempfile, pathlib
>>> run = pathlib.Path(tempfile.mkdtemp())
>>> _ = (run / "results.json").write_text("{}")
>>> manifest = write_manifest(run, run_id="r1")
>>> verify_run(run).ok
True
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kkp_readiness.errors import KkpReadinessError

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
FORMAT = "kkp-readiness-manifest/1"


class ManifestError(KkpReadinessError):
    """The run directory has no readable manifest, or the signing key cannot be used."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _artifacts(run_dir: Path, exclude: tuple[str, ...] = ()) -> list[Path]:
    """Every regular file of the run except the manifest, its signature and ``exclude``, sorted (stable
    manifests)."""
    skip = {MANIFEST, SIGNATURE, *exclude}
    return sorted(p for p in run_dir.rglob("*") if p.is_file() and not p.is_symlink()
                  and p.relative_to(run_dir).as_posix() not in skip)


def file_entries(run_dir: Path, exclude: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """``{path, size, sha256}`` of every artifact (``_artifacts``): the manifest's list, and the handover's."""
    return [{"path": p.relative_to(run_dir).as_posix(), "size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in _artifacts(run_dir, exclude)]


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """``SHA256:<base64>`` of the raw public key, the form OpenSSH uses for key fingerprints."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def load_signing_key(path: Path, passphrase: str | None = None) -> Ed25519PrivateKey:
    """The Ed25519 private key of ``path`` (PEM, PKCS#8 or OpenSSH), or a ``ManifestError`` saying why not."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read the signing key {path}: {exc.strerror or exc}") from None
    secret = passphrase.encode() if passphrase else None
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, secret)
        else:
            key = serialization.load_pem_private_key(data, secret)
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"the signing key {path} cannot be loaded: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ManifestError(f"the signing key {path} is a {type(key).__name__}; an Ed25519 key is needed "
                            "(`openssl genpkey -algorithm ed25519 -out handover.key`)")
    return key


def write_manifest(run_dir: Path, run_id: str, signing_key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
    """Hash every artifact into ``manifest.json`` (and sign it when a key is given); the manifest."""
    files = file_entries(run_dir)
    manifest: dict[str, Any] = {"format": FORMAT, "run": run_id, "algorithm": "sha256", "files": files}
    if signing_key is not None:
        public = signing_key.public_key()
        manifest["signature"] = {
            "algorithm": "ed25519", "file": SIGNATURE, "key_fingerprint": key_fingerprint(public),
            "public_key": public.public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
        }
    body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (run_dir / MANIFEST).write_bytes(body)
    if signing_key is not None:
        (run_dir / SIGNATURE).write_text(base64.b64encode(signing_key.sign(body)).decode() + "\n")
    else:
        (run_dir / SIGNATURE).unlink(missing_ok=True)
    return manifest


@dataclass
class Verification:
    """What ``verify_run`` found; ``ok`` only when every file matches and a signature present is valid."""

    checked: int = 0
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    signature: str = "unsigned"  # unsigned | valid | invalid | missing | wrong-key
    key_fingerprint: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (not (self.changed or self.missing or self.unlisted or self.problems)
                and self.signature in ("unsigned", "valid"))

    def lines(self) -> list[str]:
        """The report ``kkp-readiness verify`` prints, one finding per line."""
        out = [f"changed:  {path} (its SHA-256 differs from the manifest's)" for path in self.changed]
        out += [f"missing:  {path} (listed in the manifest, not in the run directory)" for path in self.missing]
        out += [f"unlisted: {path} (in the run directory, not in the manifest)" for path in self.unlisted]
        out += self.problems
        signature = {
            "unsigned": "signature: none (the profile named no handover.signing_key)",
            "valid": f"signature: valid, key {self.key_fingerprint}",
            "invalid": f"signature: INVALID for key {self.key_fingerprint}: manifest.json changed after signing",
            "missing": f"signature: MISSING: the manifest names key {self.key_fingerprint} but {SIGNATURE} is gone",
            "wrong-key": f"signature: made with key {self.key_fingerprint}, not with the public key given",
        }[self.signature]
        return [*out, f"{self.checked} file(s) checked against {MANIFEST}", signature]


def verify_run(run_dir: Path, public_key: Ed25519PublicKey | None = None) -> Verification:
    """Recompute every hash and check the signature (against ``public_key`` when given)."""
    path = run_dir / MANIFEST
    try:
        body = path.read_bytes()
        manifest = json.loads(body)
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ManifestError(f"{path} is not a kkp-readiness manifest ({FORMAT})")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(isinstance(e, dict) and isinstance(e.get("path"), str)
                                              and isinstance(e.get("sha256"), str) for e in files):
        raise ManifestError(f"{path} lists its files malformed (each needs a path and a sha256)")
    result = Verification()
    listed = {entry["path"]: entry for entry in files}
    for relative, entry in sorted(listed.items()):
        target = run_dir / relative
        if not target.is_file():
            result.missing.append(relative)
            continue
        result.checked += 1
        if sha256_file(target) != entry["sha256"]:
            result.changed.append(relative)
    present = {p.relative_to(run_dir).as_posix() for p in _artifacts(run_dir)}
    result.unlisted = sorted(present - set(listed))
    signed = manifest.get("signature")
    if signed:
        _check_signature(run_dir, body, signed, public_key, result)
    elif public_key is not None:
        result.signature = "missing"
        result.problems.append("a public key was given, but the manifest is not signed")
    return result


def _check_signature(run_dir: Path, body: bytes, signed: dict[str, Any], public_key: Ed25519PublicKey | None,
                     result: Verification) -> None:
    result.key_fingerprint = signed.get("key_fingerprint") if isinstance(signed, dict) else None
    try:
        embedded = serialization.load_pem_public_key(str(signed["public_key"]).encode())
    except (KeyError, TypeError, ValueError):
        result.signature = "invalid"
        result.problems.append("the manifest's signature block carries no usable public key")
        return
    if not isinstance(embedded, Ed25519PublicKey) or key_fingerprint(embedded) != result.key_fingerprint:
        result.signature = "invalid"
        return
    if public_key is not None and key_fingerprint(public_key) != result.key_fingerprint:
        result.signature = "wrong-key"
        return
    try:
        signature = base64.b64decode((run_dir / SIGNATURE).read_text().strip(), validate=True)
    except (OSError, ValueError):
        result.signature = "missing"
        return
    try:
        (public_key or embedded).verify(signature, body)
        result.signature = "valid"
    except InvalidSignature:
        result.signature = "invalid"
