"""SSH probe: verified connections to the bastion, jumps to nodes through it, tool versions.

Host keys are verified before anything is sent (a known_hosts entry or a pinned SHA256 fingerprint);
an unknown or changed key is refused with the offered fingerprint and how to pin it, never trusted on
first use. Nodes are reached as OpenSSH's ProxyJump does: a ``direct-tcpip`` channel of the bastion's
connection carries a second SSH connection, verified and authenticated on its own.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paramiko

from kkp_readiness.errors import ProbeError


class SshProbeError(ProbeError):
    """No verified, authenticated SSH session could be made (refused, timeout, unverified host key)."""


class SshAuthRejected(SshProbeError):
    """The server refused the key: an observation of ACCESS-001, "could not check" for the others."""


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:...`` of a public key, as ``ssh-keygen -lf`` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    """The host field OpenSSH writes to known_hosts: ``host`` on port 22, else ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


@dataclass(frozen=True)
class HostKeyCheck:
    """What a server offered and whether it matched: ``verified_by`` names the pin or file, else None."""

    host: str
    port: int
    key_type: str
    fingerprint: str
    verified_by: str | None
    problem: str = ""

    @property
    def evidence(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "key_type": self.key_type, "fingerprint": self.fingerprint,
                "verified_by": self.verified_by, "problem": self.problem or None}


class HostKeyVerifier:
    """Judges offered host keys against a known_hosts file and, for the bastion, a pinned fingerprint."""

    def __init__(self, known_hosts: str | None, pin: str | None = None) -> None:
        self.known_hosts_path = known_hosts
        self.pin = pin
        self.known = paramiko.HostKeys()
        if known_hosts:
            try:
                self.known.load(known_hosts)
            except OSError as exc:
                raise SshProbeError(f"cannot read known_hosts {known_hosts}: {exc}") from None

    def check(self, host: str, port: int, key: paramiko.PKey, pinned: bool = False) -> HostKeyCheck:
        """Compare ``key`` with the pin (if ``pinned``) and with the known_hosts entries of ``host:port``."""
        offered = fingerprint(key)
        name = known_hosts_name(host, port)
        found = dict(self.known.lookup(name) or {})
        pin = self.pin if pinned else None

        def result(verified_by: str | None, problem: str = "") -> HostKeyCheck:
            return HostKeyCheck(host, port, key.get_name(), offered, verified_by, problem)

        if pin:
            if offered == pin:
                return result(f"pinned fingerprint {pin}")
            return result(None, f"{name} offers {key.get_name()} {offered}, the profile pins {pin}")
        known = found.get(key.get_name())
        if known is not None and known.asbytes() == key.asbytes():
            return result(f"known_hosts {self.known_hosts_path}")
        how = (f"if it is the right key (check it on the host with `ssh-keygen -lf` over a trusted channel), "
               f"pin it as host_key_fingerprint: {offered} or add the line `{name} {key.get_name()} "
               f"{key.get_base64()}` to known_hosts")
        if found:
            listed = ", ".join(f"{t} {fingerprint(k)}" for t, k in sorted(found.items()))
            return result(None, f"{name} offers {key.get_name()} {offered}, which differs from known_hosts "
                                f"({listed}): the key CHANGED; {how}")
        where = self.known_hosts_path or "no known_hosts file"
        return result(None, f"{name} offers {key.get_name()} {offered}, unknown to {where}; {how}")


@dataclass
class SshLink:
    """One verified SSH transport; ``login`` is the authentication result (None: not tried yet)."""

    transport: paramiko.Transport
    host_key: HostKeyCheck


def open_transport(host: str, port: int, verifier: HostKeyVerifier, timeout: float, pinned: bool = False,
                   sock: Any = None) -> SshLink:
    """Connect (or use ``sock``, a jump channel), make the SSH handshake and judge the host key.

    The transport is returned even for an unverified key, so that the caller can report the key;
    it must not authenticate over it (``authenticate`` refuses).
    """
    where = f"{host}:{port}"
    try:
        if sock is None:
            sock = socket.create_connection((host, port), timeout=timeout)
        transport = paramiko.Transport(sock)
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise SshProbeError(f"no SSH handshake with {where}: {exc or type(exc).__name__}") from None
    return SshLink(transport, verifier.check(host, port, key, pinned=pinned))


def authenticate(link: SshLink, user: str, key: paramiko.PKey) -> None:
    """Log in with ``key``; refuses an unverified host, raises ``SshAuthRejected`` on a refused key."""
    where = f"{link.host_key.host}:{link.host_key.port}"
    if link.host_key.verified_by is None:
        link.transport.close()
        raise SshProbeError(f"did not log in to {where}: its host key is not verified ({link.host_key.problem})")
    try:
        link.transport.auth_publickey(user, key)
    except paramiko.AuthenticationException as exc:
        raise SshAuthRejected(f"{where} refused user {user} with key {fingerprint(key)}: {exc}") from None
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise SshProbeError(f"login to {where} as {user} failed: {exc or type(exc).__name__}") from None


def load_private_key(path: str, passphrase: str | None = None) -> paramiko.PKey:
    """The operator's private key from ``path`` (any type paramiko reads); never echoed anywhere."""
    secret = passphrase.encode() if passphrase is not None else None  # OpenSSH-format keys need bytes
    try:
        return paramiko.PKey.from_path(path, secret)  # positional: paramiko 3 calls it passphrase, 5 password
    except (OSError, paramiko.SSHException, ValueError, TypeError) as exc:
        raise SshProbeError(f"cannot load the SSH key {path}: {type(exc).__name__}") from None


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int
    stdout: str
    stderr: str


def run_command(transport: paramiko.Transport, command: str, timeout: float) -> CommandResult:
    """Run ``command`` in a new session channel; ``SshProbeError`` when it does not finish in ``timeout``."""
    try:
        channel = transport.open_session(timeout=timeout)
        channel.settimeout(timeout)
        channel.exec_command(command)
        stdout = channel.makefile("rb").read().decode(errors="replace")
        stderr = channel.makefile_stderr("rb").read().decode(errors="replace")
        status = channel.recv_exit_status()
        channel.close()
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise SshProbeError(f"`{command}` on the bastion did not finish within {timeout:g} s: "
                            f"{exc or type(exc).__name__}") from None
    return CommandResult(command, status, stdout, stderr)


class TargetUnreachable(SshProbeError, ConnectionError):
    """The bastion is fine but could not connect to the target: an observation about the target's path.

    Also a ``ConnectionError``, so that clients reading from a tunnel (egress, DNS over TCP) treat it as
    the failed connect it is; a dead bastion stays a plain ``SshProbeError`` (could not check).
    """


def jump_channel(transport: paramiko.Transport, host: str, port: int, timeout: float) -> paramiko.Channel:
    """A ``direct-tcpip`` channel from the bastion to ``host:port`` (what ProxyJump uses).

    The channel opens once the bastion's TCP connection is established. ``TargetUnreachable`` when the
    bastion's connect failed or timed out; ``SshProbeError`` when the bastion connection itself is gone.
    """
    if not transport.is_active():
        raise SshProbeError("the SSH connection to the bastion is closed")
    try:
        return transport.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=timeout)
    except paramiko.ChannelException as exc:
        # sshd says only that its connect failed (refused, unreachable or timed out on the bastion's side).
        raise TargetUnreachable(f"the bastion's TCP connection to {host}:{port} failed: {exc.text} (SSH channel "
                                f"open failure {exc.code}: refused, unreachable or filtered)") from None
    except (OSError, paramiko.SSHException, EOFError) as exc:
        if not transport.is_active():
            raise SshProbeError(f"the SSH connection to the bastion broke: {exc or type(exc).__name__}") from None
        raise TargetUnreachable(f"no TCP connection from the bastion to {host}:{port} within {timeout:g} s "
                                f"({exc or type(exc).__name__})") from None


@dataclass(frozen=True)
class Reach:
    """Whether the bastion could open a TCP connection to ``host:port``, and what it answered."""

    host: str
    port: int
    connected: bool
    detail: str

    @property
    def evidence(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "connected": self.connected, "detail": self.detail}


def tcp_reach(transport: paramiko.Transport, host: str, port: int, timeout: float) -> Reach:
    """Ask the bastion to connect to ``host:port`` (``direct-tcpip``); the channel opens once its TCP
    connection is established, so an opened channel is a successful connect from the bastion.

    A refused or unroutable connection, or none within ``timeout``, is an observation (``connected``
    False); a dead bastion connection is not, and raises ``SshProbeError`` (could not check).
    """
    try:
        channel = jump_channel(transport, host, port, timeout)
    except TargetUnreachable as exc:
        return Reach(host, port, False, str(exc))
    channel.close()
    return Reach(host, port, True, f"the bastion connected to {host}:{port}")


# --- helper tools -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolProbe:
    """How a tool reports its version: the command, and a regex whose group 1 is the version (None: presence)."""

    command: str
    pattern: str | None


#: Each tool's own version command and the format it prints (see tests/unit/test_probe_ssh.py for recordings).
TOOL_PROBES: dict[str, ToolProbe] = {
    "kubeone": ToolProbe("kubeone version", r'"kubeone"\s*:\s*\{[^}]*"gitVersion"\s*:\s*"v?(\d+\.\d+\.\d+)'),
    "git": ToolProbe("git version", r"^git version (\d+\.\d+(?:\.\d+)?)"),
    "kubectl": ToolProbe("kubectl version --client -o json",
                         r'"clientVersion"\s*:\s*\{[^}]*"gitVersion"\s*:\s*"v(\d+\.\d+\.\d+)'),
    "helm": ToolProbe("helm version --short", r"^v(\d+\.\d+\.\d+)"),
    "terraform": ToolProbe("terraform version", r"^Terraform v(\d+\.\d+\.\d+)"),
    "yq": ToolProbe("yq --version", r"^yq\b.*?\bv?(\d+\.\d+(?:\.\d+)?)"),
    "jq": ToolProbe("jq --version", r"^jq-(\d+\.\d+(?:\.\d+)?)"),
    "fubectl": ToolProbe("command -v fubectl", None),
}
#: The tools the installation needs (ACCESS-003) and their default minimum versions (the profile's
#: ``bastion.tools`` overrides them); KubeOne 1.9 and the Kubernetes 1.30/1.31 clients of KKP 2.27/2.28.
REQUIRED_TOOLS: dict[str, str] = {"kubeone": "1.9.0", "git": "2.25", "kubectl": "1.30.0", "helm": "3.14.0",
                                  "terraform": "1.5.0"}
#: Optional helpers (ACCESS-004); no minimum unless the profile sets one.
OPTIONAL_TOOLS: tuple[str, ...] = ("yq", "jq", "fubectl")
#: What a shell's exit status says when a command does not exist.
NOT_FOUND = 127


def parse_version(tool: str, output: str) -> str | None:
    """The version ``tool`` printed in ``output`` (its real format, see ``TOOL_PROBES``), or None."""
    probe = TOOL_PROBES.get(tool)
    pattern = probe.pattern if probe else r"(\d+\.\d+(?:\.\d+)?)"
    if pattern is None:
        return None
    match = re.search(pattern, output, re.MULTILINE | re.DOTALL)
    return match.group(1) if match else None


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def at_least(version: str, minimum: str) -> bool:
    """Numeric comparison, missing parts count as 0 ("2.25" == "2.25.0")."""
    found, wanted = version_tuple(version), version_tuple(minimum)
    width = max(len(found), len(wanted))
    return found + (0,) * (width - len(found)) >= wanted + (0,) * (width - len(wanted))


@dataclass(frozen=True)
class ToolFinding:
    """One tool on the bastion: installed or not, its version, and the judgement against ``minimum``."""

    tool: str
    minimum: str | None
    installed: bool
    version: str | None
    output: str

    @property
    def problem(self) -> str | None:
        if not self.installed:
            return f"{self.tool} is not installed"
        if self.minimum is None:
            return None
        if self.version is None:
            return f"{self.tool} reports no version we can read ({self.output.strip()[:120]!r})"
        if not at_least(self.version, self.minimum):
            return f"{self.tool} {self.version} is older than {self.minimum}"
        return None


def judge_tool(tool: str, minimum: str | None, result: CommandResult) -> ToolFinding:
    """Turn the version command's result into a finding (exit 127 or "not found": not installed)."""
    probe = TOOL_PROBES.get(tool, ToolProbe(f"{tool} --version", r"(\d+\.\d+(?:\.\d+)?)"))
    installed = result.exit_status != NOT_FOUND and not (probe.pattern is None and result.exit_status != 0)
    output = result.stdout + result.stderr
    return ToolFinding(tool, minimum, installed, parse_version(tool, output) if installed else None, output)


def tool_command(tool: str) -> str:
    return TOOL_PROBES.get(tool, ToolProbe(f"{tool} --version", None)).command


#: Starts each tool's section in the output of ``tools_script``; a per-run token follows it, so that a
#: tool's own output cannot forge a section.
TOOL_MARK = "@@kkp-readiness-tool"


def tools_script(tools: list[str], token: str) -> str:
    """One POSIX ``sh`` command that runs every tool's version command (one SSH session, not one per tool).

    Why: a session costs a round trip and a process on the bastion each; a check of eight tools waited
    for eight. Per tool it prints ``<mark> <token> <tool> <exit status>`` and then the command's
    output (stdout and stderr merged, as ``judge_tool`` reads them); ``parse_tools_output`` splits it.
    """
    parts = []
    for tool in tools:
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", tool):
            raise ValueError(f"not a tool name: {tool!r}")
        parts.append(f"out=$( {tool_command(tool)} 2>&1 ); st=$?; "
                     f"printf '%s\\n%s\\n' \"{TOOL_MARK} {token} {tool} $st\" \"$out\"")
    return "; ".join(parts)


def parse_tools_output(output: str, token: str) -> dict[str, CommandResult]:
    """The per-tool results of ``tools_script``'s output (tools without a section are left out)."""
    results: dict[str, CommandResult] = {}
    current: tuple[str, int] | None = None
    lines: list[str] = []

    def close() -> None:
        if current is not None:
            tool, status = current
            text = "\n".join(lines).rstrip("\n")
            results[tool] = CommandResult(tool_command(tool), status, text + "\n" if text else "", "")

    for line in output.splitlines():
        fields = line.split(" ")
        if len(fields) == 4 and fields[0] == TOOL_MARK and fields[1] == token and fields[3].isdigit():
            close()
            current, lines = (fields[2], int(fields[3])), []
        elif current is not None:
            lines.append(line)
    close()
    return results


# --- tunnels: sockets that open on the bastion ------------------------------------------------


def _copy(read: Callable[[int], bytes], write: Callable[[bytes], Any], done: Callable[[], None]) -> None:
    """Copy from ``read`` to ``write`` until EOF or an error, then ``done`` (closes both ends)."""
    try:
        while data := read(65536):
            write(data)
    except (OSError, EOFError, paramiko.SSHException):
        pass
    finally:
        done()


def open_tunnel(transport: paramiko.Transport, host: str, port: int, timeout: float) -> socket.socket:
    """A local socket whose traffic flows to ``host:port`` as a TCP connection made by the bastion.

    Why: TLS, HTTP and DNS-over-TCP clients (``ssl``, urllib3, dnspython) need a real socket, and a
    paramiko channel is not one. This is ``ssh -L`` without a listening port: a socket pair whose
    far end a daemon thread joins to a ``direct-tcpip`` channel. The bastion resolves ``host`` (its
    own DNS, as the tools run there would) and makes the connection, so what is tested is the
    bastion's path. Closing the returned socket closes the channel.
    """
    channel = jump_channel(transport, host, port, timeout)
    local, far = socket.socketpair()
    local.settimeout(timeout)

    def done() -> None:
        channel.close()
        far.close()

    # Two blocking copiers rather than one select loop: select on a channel makes paramiko create a
    # pipe per channel, whose descriptors it closes behind the caller's back.
    for name, read, write in (("in", channel.recv, far.sendall), ("out", far.recv, channel.sendall)):
        threading.Thread(target=_copy, args=(read, write, done), name=f"ssh-tunnel-{name}-{host}:{port}",
                         daemon=True).start()
    return local
