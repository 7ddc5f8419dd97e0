"""How the suite reaches the bastion, from the profile and an OpenSSH client configuration (no network)."""

from __future__ import annotations

import pytest

from kkp_readiness.bastion_route import Hop, build_route, parse_jump
from kkp_readiness.profile_model import BastionSpec


def test_parse_jump_forms() -> None:
    assert parse_jump("ops@jump.example.com:2222", "root") == Hop("ops", "jump.example.com", 2222)
    assert parse_jump("192.0.2.7", "root") == Hop("root", "192.0.2.7", 22)
    assert parse_jump("ops@[2001:db8::7]:22", "root") == Hop("ops", "2001:db8::7", 22)


def test_profile_fields_and_jumps(monkeypatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    spec = BastionSpec(host="192.0.2.5", port=2222, user="kubermatic",
                       proxy_jump=["ops@198.51.100.1", "198.51.100.2:2200"])
    route = build_route(spec, "/keys/id", "/kh")
    assert route.bastion == Hop("kubermatic", "192.0.2.5", 2222)
    assert route.jumps == (Hop("ops", "198.51.100.1", 22), Hop("kubermatic", "198.51.100.2", 2200))
    assert (route.key_files, route.known_hosts) == (("/keys/id",), "/kh")


def test_agent_when_no_key_file_and_an_agent_socket(monkeypatch) -> None:
    spec = BastionSpec(host="192.0.2.5", user="kubermatic")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/run/agent.sock")
    assert build_route(spec, None, None).key_files == ()
    monkeypatch.delenv("SSH_AUTH_SOCK")
    assert build_route(spec, None, None).key_files[0].endswith("/.ssh/id_ed25519")


def test_ssh_config_fills_what_the_profile_leaves_out(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    config = tmp_path / "config"
    config.write_text("Host bastion\n  HostName 192.0.2.5\n  Port 2222\n  User ops\n  IdentityFile /keys/ops\n"
                      "  UserKnownHostsFile /kh/site\n  ProxyJump edge,ops2@198.51.100.9:2201\n"
                      "Host edge\n  HostName 198.51.100.1\n  Port 2200\n  User gate\n")
    route = build_route(BastionSpec(host="bastion", use_ssh_config=True, ssh_config=str(config)), None, None,
                        str(config))
    assert route.bastion == Hop("ops", "192.0.2.5", 2222)
    assert route.jumps == (Hop("gate", "198.51.100.1", 2200), Hop("ops2", "198.51.100.9", 2201))
    assert (route.key_files, route.known_hosts) == (("/keys/ops",), "/kh/site")
    # what the profile sets explicitly wins, as ssh's command-line options do
    explicit = build_route(BastionSpec(host="bastion", port=22, user="me", use_ssh_config=True), "/keys/me", None,
                           str(config))
    assert explicit.bastion == Hop("me", "192.0.2.5", 22)
    assert explicit.key_files == ("/keys/me",)


def test_user_is_required_unless_the_ssh_config_may_name_it() -> None:
    with pytest.raises(ValueError, match=r"bastion\.user is required"):
        BastionSpec(host="192.0.2.5")
    BastionSpec(host="bastion", use_ssh_config=True)
