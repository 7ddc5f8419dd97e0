"""The lab bastion: real sshd, verified host key, and a node that answers only through the bastion."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path
from types import SimpleNamespace

import paramiko
import pytest

from fixtures.bastion import Bastion
from kkp_readiness import bastion_route
from kkp_readiness.probes import ssh
from kkp_readiness.profile_model import BastionSpec, TimeoutsSpec


def test_bastion_login_and_jump(healthy_lab) -> None:
    state = healthy_lab.state["bastion"]
    verifier = ssh.HostKeyVerifier(state["known_hosts"], state["host_key_fingerprint"])
    link = ssh.open_transport(state["host"], state["port"], verifier, 5, pinned=True)
    assert link.host_key.fingerprint == state["host_key_fingerprint"]
    key = ssh.load_private_key(state["key_file"])
    ssh.authenticate(link, state["user"], key)
    assert ssh.run_command(link.transport, "uname -s", 5).stdout.strip() == "Linux"
    host, port = state["node"].split(":")
    channel = ssh.jump_channel(link.transport, host, int(port), 5)
    node = ssh.open_transport(host, int(port), ssh.HostKeyVerifier(state["known_hosts"]), 5, sock=channel)
    assert node.host_key.fingerprint == state["node_host_key_fingerprint"]
    ssh.authenticate(node, state["user"], key)
    node.transport.close()
    link.transport.close()


def test_node_refuses_direct_connections(healthy_lab) -> None:
    """The mechanism: the node's sshd has AllowUsers <user>@127.0.0.1; from another source it refuses."""
    state = healthy_lab.state["bastion"]
    host, port = state["node"].split(":")
    sock = socket.socket()
    sock.bind(("127.0.0.2", 0))
    sock.settimeout(5)
    sock.connect((host, int(port)))
    link = ssh.open_transport(host, int(port), ssh.HostKeyVerifier(state["known_hosts"]), 5, sock=sock)
    with pytest.raises(ssh.SshAuthRejected):
        ssh.authenticate(link, state["user"], ssh.load_private_key(state["key_file"]))
    link.transport.close()


def test_unknown_host_key_is_refused_with_the_fingerprint(healthy_lab, tmp_path) -> None:
    state = healthy_lab.state["bastion"]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    link = ssh.open_transport(state["host"], state["port"], ssh.HostKeyVerifier(str(empty)), 5)
    assert link.host_key.verified_by is None
    assert state["host_key_fingerprint"] in link.host_key.problem
    assert "host_key_fingerprint" in link.host_key.problem
    with pytest.raises(ssh.SshProbeError, match="not verified"):
        ssh.authenticate(link, state["user"], paramiko.Ed25519Key.from_private_key_file(state["key_file"]))


# --- ways to reach the bastion (fixtures/bastion.py with kkp_readiness/bastion_route.py) -------------


def _bastion(spec: dict, timeout: float = 5) -> Bastion:
    """The suite's ``Bastion`` for a bastion section alone (paths already absolute)."""
    loaded = SimpleNamespace(profile=SimpleNamespace(bastion=BastionSpec(**spec), timeouts=TimeoutsSpec(ssh=timeout)),
                             resolve_path=lambda _field, value: value)
    return Bastion(loaded)  # type: ignore[arg-type]


def test_proxy_jump_chain_reaches_a_host_only_the_jump_host_can(healthy_lab) -> None:
    """The node accepts only connections from the bastion: logging in to it as "the bastion" through
    two jump hosts (the lab bastion twice) proves each hop is dialled from the one before, every hop
    host key verified against known_hosts and the final one against the pin."""
    state = healthy_lab.state["bastion"]
    node_host, node_port = state["node"].split(":")
    jump = f"{state['user']}@{state['host']}:{state['port']}"
    access = _bastion({"host": node_host, "port": int(node_port), "user": state["user"], "key_file": state["key_file"],
                       "known_hosts": state["known_hosts"], "proxy_jump": [jump, jump],
                       "host_key_fingerprint": state["node_host_key_fingerprint"]})
    try:
        assert access.host_key().verified_by == f"pinned fingerprint {state['node_host_key_fingerprint']}"
        assert access.run("uname -s").stdout.strip() == "Linux"
        assert len(access._jumps) == 2
    finally:
        access.close()


def test_a_jump_host_with_an_unknown_host_key_is_not_used(healthy_lab, tmp_path) -> None:
    state = healthy_lab.state["bastion"]
    node_host, node_port = state["node"].split(":")
    only_node = tmp_path / "known_hosts"
    only_node.write_text("".join(line + "\n" for line in Path(state["known_hosts"]).read_text().splitlines()
                                 if line.startswith(f"[{node_host}]")))
    access = _bastion({"host": node_host, "port": int(node_port), "user": state["user"], "key_file": state["key_file"],
                       "known_hosts": str(only_node), "proxy_jump": [f"{state['host']}:{state['port']}"]})
    with pytest.raises(ssh.SshProbeError, match="jump host .*" + re.escape(state["host_key_fingerprint"])):
        access.session()
    access.close()


@pytest.fixture
def ssh_agent(tmp_path):
    """A real ``ssh-agent`` on a socket of its own; stopped by its pid afterwards."""
    sock = tmp_path / "agent.sock"
    started = subprocess.run(["ssh-agent", "-a", str(sock), "-s"], capture_output=True, text=True, timeout=10,
                             check=True)
    pid = int(re.search(r"SSH_AGENT_PID=(\d+)", started.stdout).group(1))  # type: ignore[union-attr]
    try:
        yield str(sock)
    finally:
        os.kill(pid, signal.SIGTERM)


def test_without_key_file_the_agents_keys_log_in(healthy_lab, ssh_agent, monkeypatch) -> None:
    state = healthy_lab.state["bastion"]
    subprocess.run(["ssh-add", state["key_file"]], env={**os.environ, "SSH_AUTH_SOCK": ssh_agent},
                   capture_output=True, timeout=10, check=True)
    monkeypatch.setenv("SSH_AUTH_SOCK", ssh_agent)
    access = _bastion({"host": state["host"], "port": state["port"], "user": state["user"],
                       "known_hosts": state["known_hosts"]})
    try:
        assert access.key_file == "the keys of ssh-agent ($SSH_AUTH_SOCK)"
        assert access.run("uname -s").stdout.strip() == "Linux"
    finally:
        access.close()


def test_ssh_config_gives_hostname_port_user_key_known_hosts_and_proxy_jump(healthy_lab, tmp_path,
                                                                            monkeypatch) -> None:
    state = healthy_lab.state["bastion"]
    node_host, node_port = state["node"].split(":")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host seed-node\n  HostName {node_host}\n  Port {node_port}\n  User {state['user']}\n"
                      f"  IdentityFile {state['key_file']}\n  UserKnownHostsFile {state['known_hosts']}\n"
                      f"  ProxyJump lab-bastion\n"
                      f"Host lab-bastion\n  HostName {state['host']}\n  Port {state['port']}\n")
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    access = _bastion({"host": "seed-node", "use_ssh_config": True, "ssh_config": str(config)})
    try:
        assert (access.host, access.port, access.user) == (node_host, int(node_port), state["user"])
        assert access.route.jumps == (bastion_route.Hop(state["user"], state["host"], state["port"]),)
        assert access.key_file == state["key_file"]
        assert access.run("uname -s").stdout.strip() == "Linux"  # the node: only reachable through the jump
    finally:
        access.close()


def test_tcp_reach_from_the_bastion_open_and_closed_port(healthy_lab) -> None:
    """ACCESS-007's probe: an opened direct-tcpip channel is a connect made by the bastion; a closed
    port is an observation with sshd's reason, not an error."""
    state = healthy_lab.state
    access = _bastion({"host": state["bastion"]["host"], "port": state["bastion"]["port"],
                       "user": state["bastion"]["user"], "key_file": state["bastion"]["key_file"],
                       "known_hosts": state["bastion"]["known_hosts"]})
    try:
        assert access.reach(state["ingress"]["address"], state["ingress"]["http_port"]).connected
        closed = access.reach(state["ingress"]["address"], 9)
        assert not closed.connected
        assert "Connect failed" in closed.detail
        assert access.session().is_active()
    finally:
        access.close()
