"""The lab bastion: real sshd, verified host key, and a node that answers only through the bastion."""

from __future__ import annotations

import socket

import paramiko
import pytest

from kkp_readiness.probes import ssh


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
