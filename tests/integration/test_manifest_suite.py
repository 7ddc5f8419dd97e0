"""A lab run's signed manifest: ``kkp-readiness verify`` passes on the untouched run and names a changed file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import PROJECT_ROOT, run_suite

PASSPHRASE = "handover-passphrase-7f3a9c"


def verify(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kkp_readiness", "verify", str(run_dir), *args],
                          capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT, check=False)


def test_signed_run_verifies_until_a_byte_changes(healthy_lab, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    (tmp_path / "handover.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    (tmp_path / "handover.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    profile = tmp_path / "signed.yaml"
    profile.write_text(f"extends: {PROJECT_ROOT / 'profiles' / 'lab.yaml'}\nname: lab-signed\n"
                       "handover: {signing_key: handover.key, signing_key_passphrase: '${env:HANDOVER_PASSPHRASE}'}\n")
    run = run_suite(healthy_lab.workdir, tmp_path / "reports", "-m", "dns", profile=str(profile),
                    env={"HANDOVER_PASSPHRASE": PASSPHRASE})
    assert run.returncode == 0, run.output[-3000:]
    assert run.run_dir is not None
    files = [p for p in run.run_dir.rglob("*") if p.is_file()]
    assert (run.run_dir / "manifest.json") in files
    assert (run.run_dir / "manifest.json.sig") in files
    assert not [p for p in files if PASSPHRASE in p.read_text(errors="ignore")]

    untouched = verify(run.run_dir, "--public-key", str(tmp_path / "handover.pub"))
    assert untouched.returncode == 0, untouched.stdout + untouched.stderr
    assert "signature: valid" in untouched.stdout
    assert "verified: nothing changed since the run" in untouched.stdout

    results = run.run_dir / "results.json"
    data = bytearray(results.read_bytes())
    data[10] ^= 0x01
    results.write_bytes(bytes(data))
    tampered = verify(run.run_dir)
    assert tampered.returncode == 1, tampered.stdout
    assert "changed:  results.json" in tampered.stdout
    assert "NOT VERIFIED" in tampered.stdout


def test_an_unsigned_run_still_has_its_manifest(healthy_lab, tmp_path: Path) -> None:
    run = run_suite(healthy_lab.workdir, tmp_path / "reports", "-m", "dns")
    assert run.run_dir is not None
    result = verify(run.run_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "signature: none" in result.stdout
    assert not (run.run_dir / "manifest.json.sig").exists()
