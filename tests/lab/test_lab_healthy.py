"""A healthy lab serves exactly the data and certificates the ``lab`` profile expects."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import urllib.request
import uuid
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from kkp_readiness.lab import PARTS, Lab
from kkp_readiness.lab.process import _group_members
from kkp_readiness.lab.topology import (
    BASE_DOMAIN,
    INGRESS_ADDRESS,
    INGRESS_NAMES,
    NODEPORT_PROXY_ADDRESS,
    SEED_DOMAIN,
    SEED_MLA_NAMES,
    is_loopback,
)

NXDOMAIN = "NXDOMAIN"


def _label() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


def _servers(lab: Lab) -> list[str]:
    assert lab.state is not None
    return [lab.state["dns"]["primary"], lab.state["dns"]["secondary"]]


def test_state_json_matches_start_and_has_the_documented_keys(healthy_lab: Lab) -> None:
    state = json.loads((healthy_lab.workdir / "state.json").read_text())
    assert state == healthy_lab.state
    for key in ("workdir", "faults", "base_domain", "dns", "ingress", "ca_bundle", "root_ca", "started"):
        assert key in state
    assert state["faults"] == []
    assert state["base_domain"] == BASE_DOMAIN
    assert state["dns"]["primary"].startswith("127.0.0.1:")
    assert state["dns"]["secondary"].startswith("127.0.0.1:")
    assert state["dns"]["primary"] != state["dns"]["secondary"]
    assert len(state["dns"]["pids"]) == 2
    assert state["ingress"]["address"] == INGRESS_ADDRESS
    assert isinstance(state["ingress"]["https_port"], int)
    assert isinstance(state["ingress"]["pid"], int)
    assert Path(state["ca_bundle"]).is_absolute()
    assert Path(state["ca_bundle"]).is_file()
    assert Path(state["root_ca"]).is_absolute()
    assert Path(state["root_ca"]).is_file()
    assert dt.datetime.fromisoformat(state["started"]).tzinfo is not None


def test_status_reports_every_part_alive(healthy_lab: Lab) -> None:
    assert healthy_lab.status() == dict.fromkeys(PARTS, True)


def test_both_dns_servers_answer_the_wildcards_for_random_labels(healthy_lab: Lab, resolve) -> None:
    for server in _servers(healthy_lab):
        assert resolve(server, BASE_DOMAIN) == [INGRESS_ADDRESS]
        assert resolve(server, f"{_label()}.{BASE_DOMAIN}") == [INGRESS_ADDRESS]
        assert resolve(server, f"{_label()}.{_label()}.{BASE_DOMAIN}") == [INGRESS_ADDRESS]
        assert resolve(server, f"{_label()}.{SEED_DOMAIN}") == [NODEPORT_PROXY_ADDRESS]
        assert resolve(server, f"{_label()}.{SEED_DOMAIN}", tcp=True) == [NODEPORT_PROXY_ADDRESS]
        for name in INGRESS_NAMES:
            assert resolve(server, name) == [INGRESS_ADDRESS]


def test_explicit_seed_mla_names_win_over_the_seed_wildcard(healthy_lab: Lab, resolve) -> None:
    for server in _servers(healthy_lab):
        for name in SEED_MLA_NAMES:
            assert resolve(server, name) == [INGRESS_ADDRESS]
            assert resolve(server, name, tcp=True) == [INGRESS_ADDRESS]


def test_names_outside_the_zone_are_nxdomain_and_never_forwarded(healthy_lab: Lab, resolve, rcode) -> None:
    for server in _servers(healthy_lab):
        assert resolve(server, f"{_label()}.example.com") == NXDOMAIN
        assert resolve(server, f"{_label()}.lab") == NXDOMAIN
        assert resolve(server, "kubermatic.com") == NXDOMAIN
        # Other record types for zone names are empty answers, not refusals.
        assert rcode(server, f"{_label()}.{BASE_DOMAIN}", "AAAA") == "NOERROR"


def test_tls_handshake_verifies_against_the_root_and_sends_leaf_plus_intermediate(
    healthy_lab: Lab, served_chain
) -> None:
    state = healthy_lab.state
    assert state is not None
    port = state["ingress"]["https_port"]
    chain = served_chain(port, f"grafana.{BASE_DOMAIN}", cafile=Path(state["root_ca"]))
    assert len(chain) == 2
    leaf, intermediate = chain
    bundle = x509.load_pem_x509_certificates(Path(state["ca_bundle"]).read_bytes())
    root = x509.load_pem_x509_certificates(Path(state["root_ca"]).read_bytes())
    assert len(bundle) == 2
    assert len(root) == 1
    assert bundle[0] == root[0]
    assert intermediate == bundle[1]
    assert intermediate.issuer == root[0].subject
    assert leaf.issuer == intermediate.subject
    # The same certificate answers every name.
    for name in (*INGRESS_NAMES, BASE_DOMAIN, f"{_label()}.{BASE_DOMAIN}"):
        assert served_chain(port, name, cafile=Path(state["root_ca"]))[0] == leaf


def test_leaf_certificate_has_the_expected_names_key_and_validity(healthy_lab: Lab, served_chain) -> None:
    assert healthy_lab.state is not None
    leaf = served_chain(healthy_lab.state["ingress"]["https_port"], BASE_DOMAIN)[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted([BASE_DOMAIN, f"*.{BASE_DOMAIN}"])
    assert leaf.public_key().key_size == 2048
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA256)
    now = dt.datetime.now(dt.UTC)
    assert now - dt.timedelta(days=2) < leaf.not_valid_before_utc < now
    assert now + dt.timedelta(days=364) < leaf.not_valid_after_utc < now + dt.timedelta(days=366)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)


def test_ingress_returns_a_small_200_page(healthy_lab: Lab) -> None:
    state = healthy_lab.state
    assert state is not None
    context = ssl.create_default_context(cafile=state["root_ca"])
    # The name only has to reach 127.0.0.10: connect by address and send SNI/Host by hand.
    context.check_hostname = False
    request = urllib.request.Request(
        f"https://{INGRESS_ADDRESS}:{state['ingress']['https_port']}/", headers={"Host": "grafana.kkp.lab"}
    )
    with urllib.request.urlopen(request, context=context, timeout=3) as response:
        assert response.status == 200
        assert b"grafana.kkp.lab" in response.read()


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _bound_addresses(inodes: set[str]) -> list[tuple[str, str]]:
    """(table, local IPv4/IPv6 address) of every socket in ``inodes``."""
    found = []
    for table in ("tcp", "udp", "tcp6", "udp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] not in inodes:
                continue
            hex_address = fields[1].split(":")[0]
            if table.endswith("6"):
                found.append((table, hex_address))
            else:
                octets = bytes.fromhex(hex_address)[::-1]
                found.append((table, ".".join(str(b) for b in octets)))
    return found


def test_every_daemon_socket_is_bound_to_loopback_only(healthy_lab: Lab) -> None:
    pids = []
    for part in healthy_lab.parts.values():
        for daemon in part.daemons:
            assert daemon.pid is not None
            pids += _group_members(daemon.pid)
    assert len(pids) >= 4  # two dnsmasq, nginx master and worker
    bound = [entry for pid in pids for entry in _bound_addresses(_socket_inodes(pid))]
    assert bound, "no sockets found"
    for table, address in bound:
        assert not table.endswith("6"), f"IPv6 socket {address} in {table}"
        assert is_loopback(address), f"{table} socket bound to {address}"
