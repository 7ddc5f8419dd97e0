"""Each fault shows up in the DNS data or in the certificates the ingress serves."""

from __future__ import annotations

import datetime as dt
import ssl
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from kkp_readiness.errors import LabError
from kkp_readiness.lab import FAULTS, PARTS, Fault, Lab, resolve_faults
from kkp_readiness.lab.topology import (
    BASE_DOMAIN,
    INGRESS_ADDRESS,
    INGRESS_NAMES,
    NODEPORT_PROXY_ADDRESS,
    SEED_DOMAIN,
    SEED_MLA_NAMES,
    WRONG_ADDRESS,
)

NXDOMAIN = "NXDOMAIN"
EXPECTED_BREAKS = {
    "proxy-denies-registry": ("PROXY-001",),
    "proxy-denies-acme": ("PROXY-004",),
    "proxy-credentials-wrong": ("PROXY-001", "PROXY-002", "PROXY-003", "PROXY-005", "INSTALLER-001",
                                "INSTALLER-003", "INSTALLER-004"),
    "github-release-missing": ("INSTALLER-001",),
    "ee-pull-secret-revoked": ("INSTALLER-003", "INSTALLER-004"),
    "ee-no-read-access": ("INSTALLER-004",),
    "mirror-image-missing": ("PROXY-008",),
    "cloud-api-unreachable-from-bastion": ("ACCESS-005",),
    "bastion-unknown-host-key": ("ACCESS-002",),
    "bastion-wrong-user-key": ("ACCESS-001",),
    "bastion-tool-missing": ("ACCESS-003",),
    "bastion-tool-too-old": ("ACCESS-003",),
    "bastion-optional-tool-missing": (),
    "node-ssh-closed": ("ACCESS-006", "SEED-003"),
    "bastion-dns-tcp-blocked": ("ACCESS-008",),
    "node-sudo-password": ("SEED-003",),
    "ingress-http-closed": ("ACCESS-007",),
    "kube-hdd-fast-class": (),
    "dns-missing-wildcard": ("DNS-003",),
    "dns-missing-seed-wildcard": ("DNS-004",),
    "dns-wrong-address": ("DNS-004",),
    "dns-servers-disagree": ("DNS-002", "DNS-006"),
    "dns-no-soa": ("INFRA-008",),
    "cert-missing-name": ("CERT-002",),
    "cert-expired": ("CERT-004", "AUTH-003"),
    "cert-expiring-soon": (),
    "cert-untrusted-ca": ("CERT-001", "CERT-103", "AUTH-003"),
    "cert-incomplete-chain": ("CERT-006",),
    "cert-split": ("CERT-003",),
    "cert-weak-key": ("CERT-007", "AUTH-003"),
    "dex-issuer-mismatch": ("AUTH-003",),
    "oidc-issuer-mismatch": ("AUTH-004",),
    "oidc-no-signing-keys": ("AUTH-005",),
    "kube-node-not-ready": ("INFRA-003",),
    "kube-cni-not-ready": ("INFRA-004",),
    "kube-two-control-planes": ("INFRA-002",),
    "kube-single-zone": (),
    "kube-old-version": ("INFRA-005",),
    "kube-small-nodes": ("INFRA-006", "PERF-006"),
    "kube-no-fast-class": ("STORAGE-001",),
    "kube-immediate-binding": (),
    "kube-no-expansion": (),
    "kube-no-default-class": ("STORAGE-005",),
    "kube-no-backup-class": (),
    "kube-unreachable": (),
    "kube-forbidden-storageclasses": (),
    "kube-lb-controller-off": ("LB-010",),
    "kube-binder-off": ("STORAGE-010",),
    "kube-small-lb-pool": ("LB-002", "LB-010"),
    "kube-pool-overlaps-nodes": ("LB-003",),
    "kube-l2-announcement": (),
    "kube-no-bgp-peer": ("LB-005",),
    "kube-ingress-ip-mismatch": ("LB-006",),
    "kube-nodeport-proxy-pending": ("LB-007",),
    "kube-no-metallb": ("LB-001", "LB-010"),
    "kube-seed-tunneling": ("NET-004",),
    "kube-csi-driver-missing": ("INFRA-007", "STORAGE-010"),
    "kube-no-backup-destination": ("STORAGE-007",),
    "kube-backup-store-down": ("STORAGE-007",),
    "kube-etcd-on-default-class": ("STORAGE-008",),
    "kube-prometheus-without-class": ("STORAGE-009",),
    "kube-issuer-not-ready": ("CERT-101",),
    "kube-acme-http01": ("CERT-102",),
    "kube-ca-bundle-unrelated": ("CERT-103",),
    "kube-dex-not-ready": ("AUTH-001",),
    "kube-dex-no-connector": ("AUTH-002",),
    "kube-not-kubeone": (),
    "kube-unsupported-os": ("SEED-002",),
    "kube-kkp-not-installed": (),
    "kube-mla-node-untainted": (),
    "kube-mla-node-small": (),
    "config-plaintext-secret": ("CONFIG-004",),
    "config-missing-file": ("CONFIG-002",),
    "config-no-remote": (),
    "config-invalid-yaml": ("CONFIG-003",),
    "conformance-test-failed": (),
    "conformance-old-version": (),
    "conformance-skipped": (),
    "disk-slow": ("PERF-001", "PERF-003"),
    "etcd-cpu-starved": ("PERF-005",),
    "etcd-unreachable": (),
    "node-fio-missing": (),
    "kube-fast-volumes-slow": ("PERF-002", "PERF-004"),
    "openstack-api-unreachable-from-workers": ("OPENSTACK-009",),
    "openstack-workers-cut-off-from-seed": ("OPENSTACK-015",),
    "azure-api-unreachable-from-workers": ("AZURE-006",),
    "azure-workers-cut-off-from-seed": ("AZURE-012",),
    "vsphere-api-unreachable-from-workers": ("VSPHERE-010",),
    "vsphere-workers-cut-off-from-seed": ("VSPHERE-013",),
    "openstack-bad-credentials": (),
    "vsphere-bad-password": (),
    "vsphere-missing-privilege": ("VSPHERE-002",),
    "vsphere-folder-missing": ("VSPHERE-003",),
    "vsphere-network-missing": ("VSPHERE-004",),
    "vsphere-template-missing": ("VSPHERE-012",),
    "openstack-missing-role": ("OPENSTACK-002",),
    "openstack-zone-missing": ("OPENSTACK-003",),
    "openstack-no-router-interface": ("OPENSTACK-004",),
    "openstack-no-floating-ip-pool": ("OPENSTACK-004", "OPENSTACK-005", "OPENSTACK-011"),
    "openstack-subnet-too-small": ("OPENSTACK-006",),
    "openstack-subnet-no-dhcp": ("OPENSTACK-007",),
    "openstack-flavor-missing": ("OPENSTACK-011",),
    "azure-bad-credentials": (),
    "azure-missing-role": ("AZURE-002",),
    "azure-zone-missing": ("AZURE-003",),
    "azure-subnet-no-route-table": ("AZURE-004",),
    "azure-subnet-too-small": ("AZURE-005",),
    "azure-md-image-missing": ("AZURE-008",),
}
#: Faults whose requirement must WARN rather than fail; every other fault warns nothing.
EXPECTED_WARNS = {
    "bastion-optional-tool-missing": ("ACCESS-004",),
    "cert-expired": ("CERT-005",),
    "cert-expiring-soon": ("CERT-005",),
    "kube-single-zone": ("INFRA-001",),
    "kube-hdd-fast-class": ("STORAGE-002",),
    "kube-immediate-binding": ("STORAGE-003",),
    "kube-no-expansion": ("STORAGE-004",),
    "kube-no-backup-class": ("STORAGE-006",),
    "kube-l2-announcement": ("LB-004",),
    "kube-not-kubeone": ("SEED-001",),
    "kube-mla-node-untainted": ("PERF-009",),
    "kube-mla-node-small": ("PERF-008",),
    "config-no-remote": ("CONFIG-001",),
    "conformance-test-failed": ("PERF-007",),
    "conformance-old-version": ("PERF-007",),
    "conformance-skipped": ("PERF-007",),
}


def _label() -> str:
    return f"r{uuid.uuid4().hex[:10]}"






def _sans(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted(ext.get_values_for_type(x509.DNSName))


# --- the registry ---------------------------------------------------------------------------------


def test_registry_holds_the_documented_faults_and_what_they_break() -> None:
    assert {name: fault.breaks for name, fault in FAULTS.items()} == EXPECTED_BREAKS
    assert {name: fault.warns for name, fault in FAULTS.items() if fault.warns} == EXPECTED_WARNS
    for name, fault in FAULTS.items():
        assert isinstance(fault, Fault)
        assert fault.name == name
        assert fault.part in PARTS
        assert fault.description.endswith(".")
        assert "\n" not in fault.description
        assert fault.touches


def test_fault_is_frozen() -> None:
    with pytest.raises(AttributeError):
        FAULTS["cert-expired"].name = "other"  # type: ignore[misc]


def test_unknown_fault_is_a_lab_error_listing_the_known_ones() -> None:
    with pytest.raises(LabError) as excinfo:
        Lab(faults=["dns-no-such-thing"])
    assert "dns-no-such-thing" in str(excinfo.value)
    for name in FAULTS:
        assert name in str(excinfo.value)


@pytest.mark.parametrize(
    "pair",
    [
        ("dns-missing-seed-wildcard", "dns-wrong-address"),
        ("cert-expired", "cert-expiring-soon"),
        ("kube-no-fast-class", "kube-immediate-binding"),
        ("kube-no-fast-class", "kube-no-expansion"),
    ],
)
def test_faults_changing_the_same_thing_cannot_be_combined(pair: tuple[str, str]) -> None:
    with pytest.raises(LabError, match="cannot be combined"):
        resolve_faults(pair)


def test_duplicates_are_ignored_and_order_is_the_registry_order() -> None:
    faults = resolve_faults(["cert-expired", "dns-missing-wildcard", "cert-expired"])
    assert [f.name for f in faults] == ["dns-missing-wildcard", "cert-expired"]


# --- DNS faults -----------------------------------------------------------------------------------


def test_dns_missing_wildcard(start_lab, resolve) -> None:
    state = start_lab("dns-missing-wildcard")
    for server in (state["dns"]["primary"], state["dns"]["secondary"]):
        assert resolve(server, f"{_label()}.{BASE_DOMAIN}") == NXDOMAIN
        for name in (BASE_DOMAIN, *INGRESS_NAMES, *SEED_MLA_NAMES):
            assert resolve(server, name) == [INGRESS_ADDRESS], name
        assert resolve(server, f"{_label()}.{SEED_DOMAIN}") == [NODEPORT_PROXY_ADDRESS]


def test_dns_missing_seed_wildcard(start_lab, resolve) -> None:
    state = start_lab("dns-missing-seed-wildcard")
    for server in (state["dns"]["primary"], state["dns"]["secondary"]):
        assert resolve(server, f"{_label()}.{SEED_DOMAIN}") == NXDOMAIN
        for name in SEED_MLA_NAMES:
            assert resolve(server, name) == [INGRESS_ADDRESS]
        assert resolve(server, f"{_label()}.{BASE_DOMAIN}") == [INGRESS_ADDRESS]


def test_dns_wrong_address(start_lab, resolve) -> None:
    state = start_lab("dns-wrong-address")
    for server in (state["dns"]["primary"], state["dns"]["secondary"]):
        assert resolve(server, f"{_label()}.{SEED_DOMAIN}") == [WRONG_ADDRESS]
        for name in SEED_MLA_NAMES:
            assert resolve(server, name) == [INGRESS_ADDRESS]


def test_dns_servers_disagree(start_lab, resolve) -> None:
    state = start_lab("dns-servers-disagree")
    primary, secondary = state["dns"]["primary"], state["dns"]["secondary"]
    name = f"prometheus.{BASE_DOMAIN}"
    assert resolve(primary, name) == [INGRESS_ADDRESS]
    assert resolve(secondary, name) == [WRONG_ADDRESS]
    assert resolve(secondary, name, tcp=True) == [WRONG_ADDRESS]
    for other in (f"grafana.{BASE_DOMAIN}", f"{_label()}.{SEED_DOMAIN}", *SEED_MLA_NAMES):
        assert resolve(primary, other) == resolve(secondary, other)


def test_dns_faults_combine(start_lab, resolve) -> None:
    state = start_lab("dns-missing-wildcard", "dns-servers-disagree", "dns-wrong-address")
    primary, secondary = state["dns"]["primary"], state["dns"]["secondary"]
    assert state["faults"] == ["dns-missing-wildcard", "dns-wrong-address", "dns-servers-disagree"]
    assert resolve(primary, f"prometheus.{BASE_DOMAIN}") == [INGRESS_ADDRESS]
    assert resolve(secondary, f"prometheus.{BASE_DOMAIN}") == [WRONG_ADDRESS]
    assert resolve(primary, f"{_label()}.{BASE_DOMAIN}") == NXDOMAIN
    assert resolve(secondary, f"{_label()}.{SEED_DOMAIN}") == [WRONG_ADDRESS]


def test_dns_no_soa(start_lab, resolve) -> None:
    from kkp_readiness.probes.dns import DnsServer
    from kkp_readiness.probes.dns_zone import find_zone

    state = start_lab("dns-no-soa")
    primary, secondary = state["dns"]["primary"], state["dns"]["secondary"]
    healthy = find_zone(BASE_DOMAIN, DnsServer.parse(primary), timeout=2.0)
    assert (healthy.apex, healthy.nameservers) == (BASE_DOMAIN, (f"ns1.{BASE_DOMAIN}", f"ns2.{BASE_DOMAIN}"))
    broken = find_zone(f"grafana.{BASE_DOMAIN}", DnsServer.parse(secondary), timeout=2.0)
    assert (broken.apex, broken.soa, broken.nameservers) == (None, None, ())
    for other in (BASE_DOMAIN, f"grafana.{BASE_DOMAIN}", f"{_label()}.{SEED_DOMAIN}", *SEED_MLA_NAMES):
        assert resolve(primary, other) == resolve(secondary, other), other


# --- certificate faults ---------------------------------------------------------------------------


def test_cert_missing_name(start_lab, served_chain) -> None:
    state = start_lab("cert-missing-name")
    port, root = state["ingress"]["https_port"], Path(state["root_ca"])
    leaf = served_chain(port, f"grafana.{BASE_DOMAIN}", cafile=root)[0]
    assert _sans(leaf) == sorted([BASE_DOMAIN, f"grafana.{BASE_DOMAIN}", f"prometheus.{BASE_DOMAIN}"])
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        served_chain(port, f"alertmanager.{BASE_DOMAIN}", cafile=root)


def test_cert_expired(start_lab, served_chain) -> None:
    state = start_lab("cert-expired")
    leaf = served_chain(state["ingress"]["https_port"], BASE_DOMAIN)[0]
    now = dt.datetime.now(dt.UTC)
    assert leaf.not_valid_after_utc < now - dt.timedelta(days=9)
    assert leaf.not_valid_before_utc < now - dt.timedelta(days=399)
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        served_chain(state["ingress"]["https_port"], BASE_DOMAIN, cafile=Path(state["root_ca"]))


def test_cert_expiring_soon_still_verifies(start_lab, served_chain) -> None:
    state = start_lab("cert-expiring-soon")
    leaf = served_chain(state["ingress"]["https_port"], BASE_DOMAIN, cafile=Path(state["root_ca"]))[0]
    now = dt.datetime.now(dt.UTC)
    assert now + dt.timedelta(days=9) < leaf.not_valid_after_utc < now + dt.timedelta(days=11)


def test_cert_untrusted_ca(start_lab, served_chain) -> None:
    state = start_lab("cert-untrusted-ca")
    port = state["ingress"]["https_port"]
    chain = served_chain(port, f"grafana.{BASE_DOMAIN}")
    assert len(chain) == 2
    assert _sans(chain[0]) == sorted([BASE_DOMAIN, f"*.{BASE_DOMAIN}"])
    bundle = x509.load_pem_x509_certificates(Path(state["ca_bundle"]).read_bytes())
    assert chain[1] not in bundle
    assert chain[1].issuer not in [ca.subject for ca in bundle]
    for cafile in (state["root_ca"], state["ca_bundle"]):
        with pytest.raises(ssl.SSLCertVerificationError):
            served_chain(port, f"grafana.{BASE_DOMAIN}", cafile=Path(cafile))


def test_cert_incomplete_chain(start_lab, served_chain) -> None:
    state = start_lab("cert-incomplete-chain")
    port = state["ingress"]["https_port"]
    assert len(served_chain(port, f"grafana.{BASE_DOMAIN}")) == 1
    # A client that has only the root cannot build the chain...
    with pytest.raises(ssl.SSLCertVerificationError, match="local issuer"):
        served_chain(port, f"grafana.{BASE_DOMAIN}", cafile=Path(state["root_ca"]))
    # ...one that was given the bundle with the intermediate can.
    assert len(served_chain(port, f"grafana.{BASE_DOMAIN}", cafile=Path(state["ca_bundle"]))) == 1


def test_cert_split(start_lab, served_chain) -> None:
    state = start_lab("cert-split")
    port, root = state["ingress"]["https_port"], Path(state["root_ca"])
    grafana = served_chain(port, f"grafana.{BASE_DOMAIN}", cafile=root)
    prometheus = served_chain(port, f"prometheus.{BASE_DOMAIN}", cafile=root)
    assert grafana[0].fingerprint(hashes.SHA256()) != prometheus[0].fingerprint(hashes.SHA256())
    assert _sans(grafana[0]) == [f"grafana.{BASE_DOMAIN}"]
    assert _sans(prometheus[0]) == sorted([BASE_DOMAIN, f"*.{BASE_DOMAIN}"])
    assert len(grafana) == len(prometheus) == 2
    assert served_chain(port, f"alertmanager.{BASE_DOMAIN}")[0] == prometheus[0]


def test_cert_weak_key(start_lab, served_chain) -> None:
    state = start_lab("cert-weak-key")
    port = state["ingress"]["https_port"]
    chain = served_chain(port, f"grafana.{BASE_DOMAIN}", weak=True)
    assert chain[0].public_key().key_size == 1024
    assert len(chain) == 2
    # OpenSSL's default security level refuses to verify such a chain.
    with pytest.raises(ssl.SSLCertVerificationError, match="too weak"):
        served_chain(port, f"grafana.{BASE_DOMAIN}", cafile=Path(state["root_ca"]))


def test_cert_faults_combine(start_lab, served_chain) -> None:
    state = start_lab("cert-expired", "cert-incomplete-chain", "cert-split")
    port = state["ingress"]["https_port"]
    chain = served_chain(port, f"prometheus.{BASE_DOMAIN}")
    assert len(chain) == 1
    assert chain[0].not_valid_after_utc < dt.datetime.now(dt.UTC)
    assert _sans(served_chain(port, f"grafana.{BASE_DOMAIN}")[0]) == [f"grafana.{BASE_DOMAIN}"]
