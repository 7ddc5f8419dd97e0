"""Unit tests of the lab's building blocks, without starting daemons."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from kkp_readiness.errors import LabError
from kkp_readiness.lab import LabCA, free_port
from kkp_readiness.lab.ca import utcnow
from kkp_readiness.lab.dns_part import DnsData, healthy_dns_data, render_dnsmasq_conf
from kkp_readiness.lab.ingress_part import ServerBlock, render_nginx_conf
from kkp_readiness.lab.topology import (
    INGRESS_ADDRESS,
    is_loopback,
    require_loopback,
)


def test_loopback_guard() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.0.0.99")
    assert is_loopback("127.255.255.254")
    for address in ("0.0.0.0", "192.0.2.1", "::1", "localhost", ""):
        assert not is_loopback(address)
        with pytest.raises(LabError, match="loopback"):
            require_loopback(address)


def test_free_port_is_free_for_tcp_and_udp() -> None:
    port = free_port("127.0.0.1")
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        tcp.bind(("127.0.0.1", port))
        udp.bind(("127.0.0.1", port))
    assert free_port(INGRESS_ADDRESS, udp=False) > 0
    with pytest.raises(LabError):
        free_port("0.0.0.0")


def test_ca_chain_verifies_and_has_proper_extensions(tmp_path: Path) -> None:
    ca = LabCA(tmp_path)
    now = utcnow()
    leaf = ca.issue_leaf(["kkp.lab", "*.kkp.lab"], now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    bundle = x509.load_pem_x509_certificates((tmp_path / "ca-bundle.pem").read_bytes())
    assert [c.subject for c in bundle] == [ca.root.cert.subject, ca.intermediate.cert.subject]
    fullchain = x509.load_pem_x509_certificates(leaf.fullchain.read_bytes())
    assert fullchain == [leaf.certificate, ca.intermediate.cert]
    verifier = (
        PolicyBuilder().store(Store([ca.root.cert])).build_server_verifier(x509.DNSName("grafana.kkp.lab"))
    )
    chain = verifier.verify(leaf.certificate, [ca.intermediate.cert])
    assert chain[-1] == ca.root.cert
    for cert, is_ca in ((ca.root.cert, True), (ca.intermediate.cert, True), (leaf.certificate, False)):
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is is_ca
        assert cert.extensions.get_extension_for_class(x509.KeyUsage).critical
    assert (tmp_path / "server.key").stat().st_mode & 0o077 == 0


def test_leaf_needs_a_name(tmp_path: Path) -> None:
    ca = LabCA(tmp_path)
    with pytest.raises(LabError):
        ca.issue_leaf([], utcnow(), utcnow())


def test_client_certificate_is_a_kubernetes_user(tmp_path: Path) -> None:
    """kube-apiserver reads the user from the CN and the groups from the O values, and accepts only
    certificates for client authentication."""
    ca = LabCA(tmp_path)
    now = utcnow()
    leaf = ca.issue_client("jane", ["ops", "auditors"], now - dt.timedelta(days=1), now + dt.timedelta(days=1))
    subject = leaf.certificate.subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["jane"]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["ops", "auditors"]
    assert list(leaf.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert leaf.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    leaf.certificate.verify_directly_issued_by(ca.intermediate.cert)
    assert x509.load_pem_x509_certificates(leaf.fullchain.read_bytes()) == [leaf.certificate, ca.intermediate.cert]
    assert (tmp_path / "client.key").stat().st_mode & 0o077 == 0
    with pytest.raises(LabError, match="user name"):
        ca.issue_client("", ["ops"], now, now)


def test_dnsmasq_config_forwards_nothing_and_listens_on_loopback(tmp_path: Path) -> None:
    conf = render_dnsmasq_conf(healthy_dns_data(), 5353, tmp_path / "d.pid", tmp_path / "d.log", "primary")
    lines = conf.splitlines()
    for needed in (
        "no-resolv",
        "no-hosts",
        "bind-interfaces",
        "listen-address=127.0.0.1",
        "port=5353",
        "local=/#/",
        "address=/kkp.lab/127.0.0.10",
        "address=/seed.kkp.lab/127.0.0.11",
        "host-record=grafana.seed.kkp.lab,127.0.0.10",
    ):
        assert needed in lines
    assert not any(line.startswith("server=") for line in lines)


def test_dnsmasq_config_refuses_non_loopback_records(tmp_path: Path) -> None:
    data = DnsData(wildcards={"kkp.lab": "192.0.2.1"})
    with pytest.raises(LabError):
        render_dnsmasq_conf(data, 5353, tmp_path / "d.pid", tmp_path / "d.log", "primary")


def test_nginx_config_user_directive_only_as_root(tmp_path: Path) -> None:
    ca = LabCA(tmp_path)
    leaf = ca.issue_leaf(["kkp.lab"], utcnow(), utcnow() + dt.timedelta(days=1))
    blocks = [(ServerBlock(), leaf)]
    as_user = render_nginx_conf(tmp_path, 8443, blocks, allow_weak=False, as_root=False)
    as_root = render_nginx_conf(tmp_path, 8443, blocks, allow_weak=False, as_root=True)
    assert "user " not in as_user
    assert "user root;" in as_root
    assert "listen 127.0.0.10:8443 ssl default_server;" in as_user
    assert str(leaf.fullchain) in as_user
    assert "SECLEVEL" not in as_user
    assert "@SECLEVEL=0" in render_nginx_conf(tmp_path, 8443, blocks, allow_weak=True, as_root=False)
