"""Unit tests for kkp_readiness.certs: pure judgement on certificates generated here, no network."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kkp_readiness.certs import (
    ChainVerdict,
    key_strength,
    load_trust_anchors,
    name_covered,
    validity,
    verify_complete_chain,
    verify_trust,
)
from kkp_readiness.probes.tls import CertificateInfo

NOW = datetime.now(UTC)
DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "KKP Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _cert(
    cn: str,
    key: object,
    issuer: x509.Certificate | None = None,
    issuer_key: object | None = None,
    *,
    ca: bool = False,
    sans: tuple[str, ...] = (),
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    """A web-PKI-shaped certificate: CA with keyUsage, leaf with SAN and serverAuth EKU."""
    public_key = key.public_key()  # type: ignore[attr-defined]
    signer = issuer_key or key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.subject if issuer is not None else _name(cn))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(days=1))
        .not_valid_after(not_after or NOW + timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),  # type: ignore[attr-defined]
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm)  # type: ignore[arg-type]


def _ec() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclasses.dataclass
class _Pki:
    root: x509.Certificate
    inter: x509.Certificate
    reissued: x509.Certificate
    leaf: x509.Certificate
    expired: x509.Certificate
    future: x509.Certificate
    weak: x509.Certificate
    other_root: x509.Certificate
    other_inter: x509.Certificate
    other_leaf: x509.Certificate
    self_signed: x509.Certificate
    ed_leaf: x509.Certificate


@pytest.fixture(scope="module")
def probe_pki() -> _Pki:
    root_key, inter_key, leaf_key = _ec(), _ec(), _ec()
    ca_since = NOW - timedelta(days=1000)
    root = _cert("KKP Test Root", root_key, ca=True, not_before=ca_since)
    inter = _cert("KKP Test Intermediate", inter_key, root, root_key, ca=True, not_before=ca_since)
    # The same intermediate (name and key) re-issued after the leaf; servers often present that one.
    reissued = _cert(
        "KKP Test Intermediate", inter_key, root, root_key, ca=True, not_before=NOW - timedelta(hours=1)
    )
    sans = ("kkp.lab", "*.kkp.lab")
    leaf = _cert("kkp.lab", leaf_key, inter, inter_key, sans=sans)
    expired = _cert(
        "old.kkp.lab",
        leaf_key,
        inter,
        inter_key,
        sans=("old.kkp.lab",),
        not_before=NOW - timedelta(days=400),
        not_after=NOW - timedelta(days=10),
    )
    future = _cert(
        "new.kkp.lab", leaf_key, inter, inter_key, sans=("new.kkp.lab",), not_before=NOW + timedelta(days=5)
    )
    weak = _cert(
        "weak.kkp.lab", rsa.generate_private_key(65537, 1024), inter, inter_key, sans=("weak.kkp.lab",)
    )
    other_root_key, other_inter_key = _ec(), _ec()
    other_root = _cert("Other Root", other_root_key, ca=True, not_before=ca_since)
    other_inter = _cert(
        "Other Intermediate", other_inter_key, other_root, other_root_key, ca=True, not_before=ca_since
    )
    other_leaf = _cert("kkp.lab", leaf_key, other_inter, other_inter_key, sans=sans)
    self_key = _ec()
    self_signed = _cert("self.kkp.lab", self_key, sans=("self.kkp.lab",))
    ed_leaf = _cert(
        "ed.kkp.lab", ed25519.Ed25519PrivateKey.generate(), inter, inter_key, sans=("ed.kkp.lab",)
    )
    return _Pki(
        root,
        inter,
        reissued,
        leaf,
        expired,
        future,
        weak,
        other_root,
        other_inter,
        other_leaf,
        self_signed,
        ed_leaf,
    )


def _der(*certs: x509.Certificate) -> list[bytes]:
    return [c.public_bytes(DER) for c in certs]


# ---------------------------------------------------------------------------------------------- names

NAME_TABLE = [
    ("kkp.lab", ["kkp.lab"], "kkp.lab"),
    ("KKP.Lab.", ["kkp.lab"], "kkp.lab"),
    ("kkp.lab", ["KKP.LAB"], "KKP.LAB"),
    ("a.kkp.lab", ["*.kkp.lab"], "*.kkp.lab"),
    ("A.KKP.LAB", ["*.kkp.lab"], "*.kkp.lab"),
    ("kkp.lab", ["*.kkp.lab"], None),
    ("a.b.kkp.lab", ["*.kkp.lab"], None),
    ("a.kkp.lab", ["kkp.lab", "*.kkp.lab"], "*.kkp.lab"),
    ("a.kkp.lab", ["a.kkp.lab", "*.kkp.lab"], "a.kkp.lab"),
    ("foo.kkp.lab", ["f*.kkp.lab"], None),
    ("foo.kkp.lab", ["*o.kkp.lab"], None),
    ("foo.kkp.lab", ["foo.*.lab"], None),
    ("a.kkp.lab", ["*.*.lab"], None),
    ("kkp.lab", ["*.lab"], None),
    ("x.lab", ["*.lab"], None),
    ("akkp.lab", ["*.kkp.lab"], None),
    ("a.kkp.lab.evil", ["*.kkp.lab"], None),
    ("a..kkp.lab", ["*.kkp.lab"], None),
    (".kkp.lab", ["*.kkp.lab"], None),
    ("", ["*.kkp.lab"], None),
    ("127.0.0.1", ["127.0.0.1", "*.0.0.1"], None),
    ("grafana.kkp.lab", [], None),
    ("*.kkp.lab", ["*.kkp.lab"], "*.kkp.lab"),
    ("bücher.kkp.lab", ["xn--bcher-kva.kkp.lab"], "xn--bcher-kva.kkp.lab"),
]


@pytest.mark.parametrize(
    ("name", "sans", "expected"), NAME_TABLE, ids=[f"{n or '<empty>'}-{s}" for n, s, _ in NAME_TABLE]
)
def test_name_covered(name: str, sans: list[str], expected: str | None) -> None:
    assert name_covered(name, sans) == expected


# ---------------------------------------------------------------------------------------------- trust


def test_verify_trust_ok_builds_path_to_root(probe_pki: _Pki) -> None:
    verdict = verify_trust(_der(probe_pki.leaf, probe_pki.inter), [probe_pki.root])
    assert verdict.ok, verdict.reason
    assert verdict.judgeable
    assert verdict.path == (
        "CN=kkp.lab,O=KKP Test",
        "CN=KKP Test Intermediate,O=KKP Test",
        "CN=KKP Test Root,O=KKP Test",
    )
    assert verdict.reason.startswith("trusted: ")
    json.dumps(verdict.to_dict())


def test_verify_trust_untrusted_names_the_unknown_issuer(probe_pki: _Pki) -> None:
    verdict = verify_trust(_der(probe_pki.other_leaf, probe_pki.other_inter), [probe_pki.root])
    assert not verdict.ok
    assert verdict.path == ()
    assert "untrusted" in verdict.reason
    assert "CN=Other Root" in verdict.reason
    assert "encountered processing" not in verdict.reason


def test_verify_trust_presented_foreign_root(probe_pki: _Pki) -> None:
    chain = _der(probe_pki.other_leaf, probe_pki.other_inter, probe_pki.other_root)
    verdict = verify_trust(chain, [probe_pki.root])
    assert not verdict.ok
    assert "self-signed certificate 'CN=Other Root,O=KKP Test'" in verdict.reason


def test_verify_trust_ignores_expiry_by_default(probe_pki: _Pki) -> None:
    chain = _der(probe_pki.expired, probe_pki.inter)
    assert verify_trust(chain, [probe_pki.root]).ok
    at_now = verify_trust(chain, [probe_pki.root], at=NOW)
    assert not at_now.ok
    assert "not valid at validation time" in at_now.reason


def test_verify_trust_judges_when_all_presented_certs_are_valid(probe_pki: _Pki) -> None:
    # Default moment: after the latest presented notBefore, so a re-issued intermediate is fair.
    assert verify_trust(_der(probe_pki.leaf, probe_pki.reissued), [probe_pki.root]).ok
    before = verify_trust(
        _der(probe_pki.leaf, probe_pki.reissued), [probe_pki.root], at=NOW - timedelta(hours=2)
    )
    assert not before.ok


def test_verify_trust_leaf_only_needs_intermediate_in_anchors(probe_pki: _Pki) -> None:
    leaf_only = _der(probe_pki.leaf)
    missing = verify_trust(leaf_only, [probe_pki.root])
    assert not missing.ok
    assert "CN=KKP Test Intermediate" in missing.reason
    assert verify_trust(leaf_only, [probe_pki.root, probe_pki.inter]).ok


def test_verify_trust_self_signed_leaf(probe_pki: _Pki) -> None:
    chain = _der(probe_pki.self_signed)
    assert verify_trust(chain, [probe_pki.self_signed]).ok
    verdict = verify_trust(chain, [probe_pki.root])
    assert not verdict.ok
    assert "self-signed" in verdict.reason


def test_verify_trust_weak_leaf_key_is_judged_elsewhere(probe_pki: _Pki) -> None:
    # The verifier only limits keys that *sign*; the leaf's own key size is key_strength()'s job.
    assert verify_trust(_der(probe_pki.weak, probe_pki.inter), [probe_pki.root]).ok


def test_verify_trust_garbage_and_empty_chain_are_not_judgeable(probe_pki: _Pki) -> None:
    garbage = verify_trust([b"not a certificate"], [probe_pki.root])
    assert (garbage.ok, garbage.judgeable) == (False, False)
    assert "cannot be parsed" in garbage.reason
    empty = verify_trust([], [probe_pki.root])
    assert (empty.ok, empty.judgeable) == (False, False)
    with pytest.raises(ValueError, match="no trust anchors"):
        verify_trust(_der(probe_pki.leaf), [])


# ---------------------------------------------------------------------------------------------- completeness


def test_complete_chain_ok(probe_pki: _Pki) -> None:
    verdict = verify_complete_chain(_der(probe_pki.leaf, probe_pki.inter), [probe_pki.root, probe_pki.inter])
    assert verdict.ok, verdict.reason
    assert verdict.path[-1] == "CN=KKP Test Root,O=KKP Test"
    assert verdict.missing == ()


def test_complete_chain_with_root_also_presented_is_ok(probe_pki: _Pki) -> None:
    chain = _der(probe_pki.leaf, probe_pki.inter, probe_pki.root)
    assert verify_complete_chain(chain, [probe_pki.root]).ok


def test_incomplete_chain_names_missing_intermediate(probe_pki: _Pki) -> None:
    verdict = verify_complete_chain(_der(probe_pki.leaf), [probe_pki.root, probe_pki.inter])
    assert not verdict.ok
    assert verdict.judgeable
    assert verdict.missing == ("CN=KKP Test Intermediate,O=KKP Test",)
    assert "CN=KKP Test Intermediate" in verdict.reason
    assert "incomplete chain" in verdict.reason


def test_complete_chain_unjudgeable_when_untrusted(probe_pki: _Pki) -> None:
    verdict = verify_complete_chain(
        _der(probe_pki.other_leaf, probe_pki.other_inter), [probe_pki.root, probe_pki.inter]
    )
    assert (verdict.ok, verdict.judgeable) == (False, False)
    assert verdict.reason.startswith("cannot judge: chain does not lead to any trusted certificate")


def test_complete_chain_unjudgeable_without_a_root_in_anchors(probe_pki: _Pki) -> None:
    verdict = verify_complete_chain(_der(probe_pki.leaf, probe_pki.inter), [probe_pki.inter])
    assert (verdict.ok, verdict.judgeable) == (False, False)
    assert "root" in verdict.reason


def test_complete_chain_self_signed_leaf_anchor(probe_pki: _Pki) -> None:
    assert verify_complete_chain(_der(probe_pki.self_signed), [probe_pki.self_signed]).ok


def test_chain_verdict_defaults() -> None:
    verdict = ChainVerdict(ok=False, reason="x")
    assert verdict.to_dict() == {"ok": False, "reason": "x", "path": [], "judgeable": True, "missing": []}


# ---------------------------------------------------------------------------------------------- validity


def test_validity_states(probe_pki: _Pki) -> None:
    state, days = validity(CertificateInfo.from_x509(probe_pki.leaf), NOW)
    assert state == "valid"
    assert 89.9 < days <= 90.0
    state, days = validity(CertificateInfo.from_x509(probe_pki.expired), NOW)
    assert state == "expired"
    assert -10.1 < days < -9.9
    state, days = validity(CertificateInfo.from_x509(probe_pki.future), NOW)
    assert state == "not-yet-valid"
    assert days > 0


def test_validity_bounds_are_inclusive(probe_pki: _Pki) -> None:
    info = CertificateInfo.from_x509(probe_pki.leaf)
    assert validity(info, info.not_after)[0] == "valid"
    assert validity(info, info.not_before)[0] == "valid"
    assert validity(info, info.not_after + timedelta(seconds=1))[0] == "expired"


def test_validity_needs_aware_now(probe_pki: _Pki) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validity(CertificateInfo.from_x509(probe_pki.leaf), datetime.now())


# ---------------------------------------------------------------------------------------------- key strength


def test_key_strength(probe_pki: _Pki) -> None:
    weak = CertificateInfo.from_x509(probe_pki.weak)
    assert key_strength(weak) == (False, "RSA 1024 bits, below the minimum of 2048")
    assert key_strength(weak, min_rsa_bits=1024) == (True, "RSA 1024 bits")
    assert key_strength(dataclasses.replace(weak, key_bits=3072)) == (True, "RSA 3072 bits")
    ok, text = key_strength(CertificateInfo.from_x509(probe_pki.leaf))
    assert ok
    assert text == "EC secp256r1 256 bits"
    assert key_strength(CertificateInfo.from_x509(probe_pki.leaf), min_ec_bits=384)[0] is False
    assert key_strength(CertificateInfo.from_x509(probe_pki.ed_leaf)) == (True, "Ed25519")
    assert key_strength(dataclasses.replace(weak, key_type="Ed448", key_bits=456)) == (True, "Ed448")
    assert key_strength(dataclasses.replace(weak, key_type="DSA", key_bits=2048))[0] is False
    assert key_strength(dataclasses.replace(weak, key_type="unknown", key_bits=0))[0] is False


# ---------------------------------------------------------------------------------------------- anchors


def test_load_trust_anchors_pem_bundle_der_and_directory(tmp_path: Path, probe_pki: _Pki) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(
        b"# comment\n" + probe_pki.root.public_bytes(PEM) + b"\nnoise\n" + probe_pki.inter.public_bytes(PEM)
    )
    assert load_trust_anchors(bundle) == (probe_pki.root, probe_pki.inter)
    assert load_trust_anchors(str(bundle)) == (probe_pki.root, probe_pki.inter)
    der = tmp_path / "root.der"
    der.write_bytes(probe_pki.root.public_bytes(DER))
    assert load_trust_anchors(der) == (probe_pki.root,)
    directory = tmp_path / "dir"
    directory.mkdir()
    (directory / "a.crt").write_bytes(probe_pki.root.public_bytes(PEM))
    (directory / "b.pem").write_bytes(probe_pki.inter.public_bytes(PEM) + probe_pki.root.public_bytes(PEM))
    (directory / "readme.txt").write_text("not a certificate")
    assert load_trust_anchors(directory) == (probe_pki.root, probe_pki.inter)


def test_load_trust_anchors_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_trust_anchors(tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    with pytest.raises(ValueError, match=r"holds no X\.509 certificate"):
        load_trust_anchors(junk)
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match=r"holds no X\.509 certificate"):
        load_trust_anchors(broken)


def test_load_trust_anchors_system_store() -> None:
    import ssl

    cafile = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
    if not Path(cafile).exists():
        pytest.skip(f"no system CA bundle at {cafile}")
    anchors = load_trust_anchors(None)
    assert len(anchors) > 10
    assert all(isinstance(a, x509.Certificate) for a in anchors)
