"""The lab's bastion: a real OpenSSH server on 127.0.0.1, and a second one standing for a seed node.

The ACCESS checks log in to a bastion with a key, verify its host key, run the installation's
helper tools there and jump on to the cluster nodes. A real ``sshd`` (started as the current user,
root in CI) makes all of that real: the host key the checks verify is the one sshd presents, the
key it accepts is the one in the lab's ``authorized_keys``, and the tools are found on the PATH of
its sessions.

How the node is reachable only through the bastion: the node's sshd listens on ``NODE_ADDRESS``
(127.0.1.1, cp-1's InternalIP in the lab cluster) and accepts only ``AllowUsers <user>@127.0.0.1``.
A connection the bastion's sshd opens for a ``direct-tcpip`` channel comes from 127.0.0.1 (the
kernel's source address for loopback routes, and the bastion's address); a direct connection bound
to any other loopback source (the lab tests use 127.0.0.2, "the operator's machine") is refused.

Helper tools: the bastion's sessions get ``SetEnv PATH=<lab>/bastion/bin:/usr/local/bin:/usr/bin:/bin``.
The lab's directory holds small stand-ins for kubeone, helm, terraform and fubectl that print their
real version formats, and links to this machine's git, kubectl, jq and yq (a stand-in where one is
absent). A fault removes a tool by a stand-in that answers "not found" (exit 127), which shadows a
real one further down the PATH, or ages it by a stand-in printing an old version.

The node's sessions get their own first PATH entry, ``<lab>/bastion/node-bin`` (empty when healthy, so
the machine's real ``sudo`` answers SEED-003's ``sudo -n true``; the lab runs as root). A fault puts a
``sudo`` there that asks for a password, on the node only.

The bastion's firewall (``dns_tcp_blocked``): sshd's ``PermitOpen`` allows the node and every port the
other lab parts publish except the DNS servers' ports, so the bastion cannot open TCP connections to the
DNS servers while its own UDP datagrams still reach them, the classic "UDP 53 opened, TCP 53 forgotten".
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import re
import shlex
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kkp_readiness.errors import LabError
from kkp_readiness.lab.egress_part import in_site_namespace
from kkp_readiness.lab.part import LabContext, Part
from kkp_readiness.lab.process import Daemon, free_port
from kkp_readiness.lab.topology import (
    BASTION_ADDRESS,
    NODE_ADDRESS,
    WORKER_ADDRESS,
    require_loopback,
)

SSHD = "/usr/sbin/sshd"
#: What follows the lab's tool directory on the PATH of bastion sessions (tools need sh, env, ...).
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
#: The privilege separation directory sshd requires when started as root (normally made by systemd).
PRIVSEP_DIR = Path("/run/sshd")

#: Stand-ins printing what the real tools print (recorded from kubeone 1.9.2, helm 3.16.3, terraform
#: 1.9.8, kubectl 1.31.3); fubectl is a set of shell functions without a version command.
STAND_INS: dict[str, str] = {
    "kubeone": '{"kubeone":{"major":"1","minor":"9","gitVersion":"1.9.2","gitCommit":"3b4c1a5",'
               '"gitTreeState":"","buildDate":"2025-01-28T10:08:15Z","goVersion":"go1.23.5","compiler":"gc",'
               '"platform":"linux/amd64"},"machine_controller":{"major":"1","minor":"61",'
               '"gitVersion":"v1.61.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"",'
               '"compiler":"","platform":"linux/amd64"}}',
    "helm": "v3.16.3+gcfd0749",
    "terraform": "Terraform v1.9.8\non linux_amd64",
    "fubectl": "usage: source fubectl.source, then use the k* functions (kw, kex, klog, kcns, ...)",
    "kubectl": '{\n  "clientVersion": {\n    "major": "1",\n    "minor": "31",\n    "gitVersion": "v1.31.3",\n'
               '    "gitCommit": "c83cbee114ec00897c0c3e0f2e5d7e4b0c4a8b5a",\n    "gitTreeState": "clean",\n'
               '    "buildDate": "2024-11-19T13:20:38Z",\n    "goVersion": "go1.22.8",\n    "compiler": "gc",\n'
               '    "platform": "linux/amd64"\n  },\n  "kustomizeVersion": "v5.4.2"\n}',
    "jq": "jq-1.6",
    "yq": "yq (https://github.com/mikefarah/yq/) version v4.44.3",
}
#: Tools taken from this machine when it has them (a stand-in from ``STAND_INS`` otherwise).
REAL_TOOLS = ("git", "kubectl", "jq", "yq")


def generate_key(path: Path, passphrase: str | None = None) -> str:
    """Write a new ed25519 private key (OpenSSH format, 0600, encrypted with ``passphrase`` if given) to
    ``path``; return its public line."""
    key = ed25519.Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption))
    path.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode()


def public_fingerprint(public_line: str) -> str:
    """``SHA256:...`` of an OpenSSH public key line, as ``ssh-keygen -lf`` prints it."""
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    """The host field of a known_hosts line: ``host`` on port 22, else ``[host]:port`` (OpenSSH's form)."""
    return host if port == 22 else f"[{host}]:{port}"


def stand_in_script(output: str | None, tool: str) -> str:
    """A shell script that prints ``output`` whatever its arguments (a tool's version output).

    ``None``: the script answers as a shell does for a command that is not installed (exit 127).
    It shadows a real tool of this machine further down the PATH, so "missing" does not depend on
    what the machine running the lab has installed.
    """
    if output is None:
        return f"#!/bin/sh\necho 'sh: 1: {tool}: not found' >&2\nexit 127\n"
    return f"#!/bin/sh\nprintf '%s\\n' {shlex.quote(output)}\n"


@dataclass
class BastionPlan:
    """What the bastion looks like; faults edit it before anything is written or started."""

    #: sshd presents a host key other than the one published in known_hosts and the state's fingerprint.
    present_other_host_key: bool = False
    #: authorized_keys holds another key than the one the lab hands to the suite.
    authorize_other_key: bool = False
    #: Whether the node's sshd is started at all (its address and host key are published either way).
    start_node: bool = True
    #: Tool name -> stand-in output; ``None``: the tool is not installed (see ``stand_in_script``).
    stand_ins: dict[str, str | None] = field(default_factory=lambda: dict(STAND_INS))
    real_tools: tuple[str, ...] = REAL_TOOLS
    #: Commands put first on the PATH of the NODE's sessions only: name -> script (``sudo`` for SEED-003).
    node_commands: dict[str, str] = field(default_factory=dict)
    #: The bastion's firewall: sshd's ``PermitOpen`` allows every lab destination but the DNS servers'
    #: ports, so that it cannot open TCP connections to them (UDP still works).
    dns_tcp_blocked: bool = False
    #: The bastion's firewall for other parts: it cannot open connections to these parts' ports.
    bastion_blocked: tuple[str, ...] = ()
    #: The worker network's firewall: the worker host (sshd) cannot open connections to these parts' ports.
    worker_blocked: tuple[str, ...] = ()
    #: Encrypt the operator key handed to the suite with this passphrase (the profile's key_passphrase
    #: canary); never written to the state.
    key_passphrase: str | None = None

    def remove_tool(self, tool: str) -> None:
        self.stand_ins[tool] = None
        self.real_tools = tuple(t for t in self.real_tools if t != tool)


_PORT_IN_TEXT = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?[^/\s]*:(\d{1,5})(?:/.*)?$")


def _ports(state: Any) -> Iterator[int]:
    """Every port a part's state publishes: ints under keys naming a port, ``host:port`` and URL ports."""
    if isinstance(state, dict):
        for key, value in state.items():
            if isinstance(value, int) and not isinstance(value, bool) and "port" in str(key):
                yield value
            else:
                yield from _ports(value)
    elif isinstance(state, list):
        for item in state:
            yield from _ports(item)
    elif isinstance(state, str) and (match := _PORT_IN_TEXT.match(state)):
        yield int(match.group(1))


def ssh_banner(address: str, port: int, timeout: float = 1.0) -> bool:
    """True if an SSH server answers on ``address:port`` with its identification string."""
    with socket.create_connection((require_loopback(address), port), timeout=timeout) as sock:
        return sock.recv(64).startswith(b"SSH-2.0-")


def render_sshd_config(directory: Path, role: str, address: str, port: int, host_key: Path, user: str,
                       bin_dir: Path, allow_from: str | None = None, permit_open: list[str] | None = None) -> str:
    """An sshd configuration for one lab server, entirely inside ``directory`` (no system file is read)."""
    lines = [
        f"# kkp_readiness lab: {role} sshd (generated, do not edit)",
        f"ListenAddress {require_loopback(address)}",
        f"Port {port}",
        f"HostKey {host_key}",
        f"PidFile {directory / f'{role}.pid'}",
        f"AuthorizedKeysFile {directory / 'authorized_keys'}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "StrictModes no",
        "PrintMotd no",
        "AllowTcpForwarding yes",
        "LogLevel VERBOSE",
        f"SetEnv PATH={bin_dir}:{SYSTEM_PATH}",
        f"AllowUsers {user}@{require_loopback(allow_from)}" if allow_from else f"AllowUsers {user}",
    ]
    if permit_open:
        lines.append(f"PermitOpen {' '.join(permit_open)}")
    return "\n".join(lines) + "\n"


class BastionPart(Part):
    """Bastion sshd on ``BASTION_ADDRESS`` and seed-node sshd on ``NODE_ADDRESS``, each on a free port."""

    name = "bastion"

    def start(self, ctx: LabContext) -> dict[str, Any]:
        plan = BastionPlan()
        for fault in ctx.faults_for(self.name):
            fault.apply(plan)
        directory = ctx.directory(self.name)
        if ctx.as_root:
            PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        user = pwd.getpwuid(os.geteuid()).pw_name
        bin_dir = self._install_tools(directory / "bin", plan)
        node_bin = self._install_node_commands(directory / "node-bin", plan)
        blocked = (("dns",) if plan.dns_tcp_blocked else ()) + plan.bastion_blocked
        permit_open = self._permit_open(ctx, blocked) if blocked else None
        key_file = directory / "id_ed25519"
        authorized = generate_key(key_file, plan.key_passphrase)
        if plan.authorize_other_key:
            authorized = generate_key(directory / "other_id_ed25519")
        (directory / "authorized_keys").write_text(authorized + "\n")
        bastion_public = generate_key(directory / "bastion_host_ed25519")
        node_public = generate_key(directory / "node_host_ed25519")
        bastion_key = directory / "bastion_host_ed25519"
        if plan.present_other_host_key:
            generate_key(directory / "other_host_ed25519")
            bastion_key = directory / "other_host_ed25519"

        def server(role: str, address: str, host_key: Path, allow_from: str | None, path_dir: Path,
                   permit: list[str] | None = None) -> Callable[[], tuple[Daemon, Callable[[], bool]]]:
            def make() -> tuple[Daemon, Callable[[], bool]]:
                port = free_port(address, udp=False)
                conf = directory / f"{role}_sshd_config"
                conf.write_text(render_sshd_config(directory, role, address, port, host_key, user, path_dir,
                                                   allow_from, permit))
                argv = [SSHD, "-D", "-e", "-f", str(conf)]
                if "egress" in ctx.states:  # the site's resolver: names the bastion dials resolve in the lab
                    argv = in_site_namespace(argv, Path(ctx.states["egress"]["resolv_conf"]))
                daemon = Daemon(f"sshd-{role}", argv, directory / f"{role}.log", marker=str(conf), port=port)
                return daemon, lambda: ssh_banner(address, port)
            return make

        bastion_port = self.launch(server("bastion", BASTION_ADDRESS, bastion_key, None, bin_dir, permit_open)).port
        if plan.start_node:
            node_port = self.launch(server("node", NODE_ADDRESS, directory / "node_host_ed25519",
                                           BASTION_ADDRESS, node_bin)).port
        else:
            node_port = free_port(NODE_ADDRESS, udp=False)
        worker_public = generate_key(directory / "worker_host_ed25519")
        worker_permit = self._permit_open(ctx, blocked=plan.worker_blocked) if plan.worker_blocked else None
        worker_port = self.launch(server("worker", WORKER_ADDRESS, directory / "worker_host_ed25519",
                                         BASTION_ADDRESS, node_bin, worker_permit)).port
        assert bastion_port is not None
        assert node_port is not None
        assert worker_port is not None
        known_hosts = directory / "known_hosts"
        known_hosts.write_text(f"{known_hosts_name(BASTION_ADDRESS, bastion_port)} {bastion_public}\n"
                               f"{known_hosts_name(NODE_ADDRESS, node_port)} {node_public}\n"
                               f"{known_hosts_name(WORKER_ADDRESS, worker_port)} {worker_public}\n")
        self.state = {
            "host": BASTION_ADDRESS,
            "port": bastion_port,
            "user": user,
            "key_file": str(key_file),
            "known_hosts": str(known_hosts),
            "host_key_fingerprint": public_fingerprint(bastion_public),
            "node": f"{NODE_ADDRESS}:{node_port}",
            "node_host_key_fingerprint": public_fingerprint(node_public),
            "worker": f"{WORKER_ADDRESS}:{worker_port}",
            "bin": str(bin_dir),
        }
        return self.state

    @staticmethod
    def _install_node_commands(node_bin: Path, plan: BastionPlan) -> Path:
        """The node sessions' first PATH entry (empty when healthy: the node's own sudo, git... apply)."""
        shutil.rmtree(node_bin, ignore_errors=True)
        node_bin.mkdir(parents=True)
        for name, script in plan.node_commands.items():
            (node_bin / name).write_text(script)
            (node_bin / name).chmod(0o755)
        return node_bin

    @staticmethod
    def _permit_open(ctx: LabContext, blocked: tuple[str, ...] = ("dns",)) -> list[str]:
        """A firewall in sshd's terms: every lab destination except the ports of the ``blocked`` parts.

        The bastion's (``dns_tcp_blocked``) blocks the DNS servers; the worker host's (``worker_blocked``)
        blocks e.g. the cloud APIs or the ingress. sshd's ``PermitOpen`` can only allow, and it matches
        the host as the client names it (an address or a name such as ``proxy.kkp.lab``). So every port
        the parts started before the bastion publish is allowed for any host (``*:port``), except the
        blocked parts' ports, and the node on any port; what a later part adds is covered without
        editing this list.
        """
        missing = [name for name in blocked if name not in ctx.states]
        if missing:
            raise LabError(f"the PermitOpen firewall needs the state of {', '.join(missing)}: start it first")
        closed = {port for name in blocked for port in _ports(ctx.states[name])}
        others = {port for name, state in ctx.states.items() if name not in blocked for port in _ports(state)}
        return [f"{NODE_ADDRESS}:*", f"{WORKER_ADDRESS}:*", *(f"*:{port}" for port in sorted(others - closed))]

    @staticmethod
    def _install_tools(bin_dir: Path, plan: BastionPlan) -> Path:
        """The bastion sessions' only PATH entry: links to real tools, stand-ins for the others."""
        shutil.rmtree(bin_dir, ignore_errors=True)
        bin_dir.mkdir(parents=True)
        for tool in sorted({*plan.stand_ins, *plan.real_tools}):
            real = shutil.which(tool) if tool in plan.real_tools else None
            if real:
                (bin_dir / tool).symlink_to(real)
            elif plan.stand_ins.get(tool) is None and shutil.which(tool) is None:
                continue  # missing, and nothing further down the PATH to shadow (``command -v`` finds nothing)
            else:
                (bin_dir / tool).write_text(stand_in_script(plan.stand_ins.get(tool), tool))
                (bin_dir / tool).chmod(0o755)
        return bin_dir

    def answering(self) -> bool:
        return ssh_banner(self.state["host"], int(self.state["port"]))
