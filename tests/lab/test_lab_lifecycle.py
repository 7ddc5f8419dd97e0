"""Starting, stopping, re-attaching: no daemon is ever left behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kkp_readiness.lab.ingress_part as ingress_part
from kkp_readiness.errors import LabError
from kkp_readiness.lab import PARTS, Daemon, Lab
from kkp_readiness.lab.process import DaemonError, _group_members, pid_alive

REPO = Path(__file__).resolve().parents[2]


def _all_pids(lab: Lab) -> list[int]:
    """Every process of the lab, including NGINX workers (members of the daemons' groups)."""
    pids = []
    for part in lab.parts.values():
        for daemon in part.daemons:
            assert daemon.pid is not None
            pids += _group_members(daemon.pid) or [daemon.pid]
    return pids


def _assert_gone(pids: list[int]) -> None:
    alive = [pid for pid in pids if pid_alive(pid)]
    assert not alive, f"processes left behind: {alive}"


def test_stop_kills_every_process_and_removes_the_temporary_workdir() -> None:
    lab = Lab()
    try:
        state = lab.start()
        pids = _all_pids(lab)
        assert set(state["dns"]["pids"]) | {state["ingress"]["pid"]} <= set(pids)
        assert len(pids) >= 4
    finally:
        lab.stop()
    _assert_gone(pids)
    assert not lab.workdir.exists()
    lab.stop()  # idempotent
    assert lab.status() == dict.fromkeys(PARTS, False)


def test_given_workdir_is_kept_but_state_file_removed(tmp_path: Path) -> None:
    workdir = tmp_path / "lab"
    lab = Lab(workdir=workdir)
    try:
        state = lab.start()
        assert state["workdir"] == str(workdir)
        assert (workdir / "state.json").is_file()
        pids = _all_pids(lab)
    finally:
        lab.stop()
    _assert_gone(pids)
    assert workdir.is_dir()
    assert not (workdir / "state.json").exists()
    assert (workdir / "nginx" / "logs" / "error.log").is_file()


def test_context_manager_stops_even_when_the_body_fails() -> None:
    seen: dict = {}

    def failing_test_body() -> None:
        with Lab() as lab:
            seen["lab"], seen["pids"] = lab, _all_pids(lab)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_test_body()
    _assert_gone(seen["pids"])
    assert not seen["lab"].workdir.exists()


def test_attach_then_stop_from_the_state_file(tmp_path: Path) -> None:
    lab = Lab(workdir=tmp_path, faults=["cert-expired"])
    try:
        lab.start()
        pids = _all_pids(lab)
        other = Lab.attach(tmp_path)
        assert [f.name for f in other.faults] == ["cert-expired"]
        assert other.state == lab.state
        assert other.status() == dict.fromkeys(PARTS, True)
        other.stop()
        _assert_gone(pids)
        assert other.status() == dict.fromkeys(PARTS, False)
        assert not (tmp_path / "state.json").exists()
    finally:
        lab.stop()


def test_daemons_outlive_the_starting_process_and_stop_after_attach(tmp_path: Path) -> None:
    workdir = tmp_path / "cli"
    code = f"from kkp_readiness.lab import Lab; Lab(workdir={str(workdir)!r}).start()"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=30)
    lab = Lab.attach(workdir)
    pids = [d.pid for part in lab.parts.values() for d in part.daemons]
    try:
        assert lab.status() == dict.fromkeys(PARTS, True)
        # A second lab in the same workdir would clobber the running one's state.
        second = Lab(workdir=workdir)
        with pytest.raises(LabError, match="already running"):
            second.start()
        second.stop()  # must not touch the running lab's state
        assert (workdir / "state.json").is_file()
        assert Lab.attach(workdir).status() == dict.fromkeys(PARTS, True)
    finally:
        lab.stop()
    _assert_gone([pid for pid in pids if pid is not None])


def test_attach_without_state_is_a_lab_error(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no lab state"):
        Lab.attach(tmp_path)
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(LabError, match="cannot read"):
        Lab.attach(tmp_path)


def test_stop_never_kills_a_recycled_pid(tmp_path: Path) -> None:
    """A PID in state.json that now runs another command is left alone."""
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        daemon = Daemon.adopt(
            {
                "name": "dns-primary",
                "pid": stranger.pid,
                "argv": ["/usr/sbin/dnsmasq", f"--conf-file={tmp_path}/dns/primary.conf"],
                "marker": f"{tmp_path}/dns/primary.conf",
                "log": str(tmp_path / "primary.out"),
            }
        )
        assert not daemon.is_running()
        daemon.stop()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_failing_part_stops_the_parts_already_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingress_part, "NGINX", "/bin/false")
    lab = Lab()
    try:
        with pytest.raises(LabError) as excinfo:
            lab.start()
        message = str(excinfo.value)
        assert "'ingress'" in message
        assert "/bin/false -p" in message  # the command line
        dns_pids = [d.pid for d in lab.parts["dns"].daemons]
        assert len(dns_pids) == 2
        _assert_gone([pid for pid in dns_pids if pid is not None])
    finally:
        lab.stop()
    assert not lab.workdir.exists()


def test_wait_ready_times_out_with_command_and_log(tmp_path: Path) -> None:
    log = tmp_path / "sleeper.out"
    daemon = Daemon("sleeper", ["sh", "-c", "echo starting up; exec sleep 30"], log, marker="sleep 30")
    daemon.start()
    try:
        with pytest.raises(DaemonError) as excinfo:
            daemon.wait_ready(lambda: False, timeout=0.3)
        assert not excinfo.value.exited
        assert "did not answer within 0.3 s" in str(excinfo.value)
        assert "sh -c" in str(excinfo.value)
        assert "starting up" in str(excinfo.value)
    finally:
        daemon.stop()
    assert daemon.pid is not None
    assert not pid_alive(daemon.pid)


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    script = "trap '' TERM; echo ready; while :; do sleep 0.05; done"
    daemon = Daemon("stubborn", ["sh", "-c", script], tmp_path / "stubborn.out", marker="trap")
    daemon.start()
    deadline = time.monotonic() + 5
    while "ready" not in (tmp_path / "stubborn.out").read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = daemon.pid
    assert pid is not None
    started = time.monotonic()
    daemon.stop(timeout=0.3)
    assert time.monotonic() - started < 3
    assert not pid_alive(pid)
    assert _group_members(pid) == []


def test_state_file_is_json_with_processes(tmp_path: Path) -> None:
    with Lab(workdir=tmp_path) as lab:
        state = json.loads((tmp_path / "state.json").read_text())
        assert state["temporary_workdir"] is False
        names = [p["name"] for part in state["processes"].values() for p in part]
        assert names == ["dns-primary", "dns-secondary", "ingress-nginx", "kubeapi", "egress-resolver",
                         "egress-token-server", "egress-registry-ee", "egress-registry-mirror", "egress-internet-nginx",
                         "egress-proxy", "etcd", "cloudapi", "sshd-bastion", "sshd-node", "sshd-worker"]
        assert lab.state == state


def test_attach_tolerates_a_state_written_before_a_part_existed(tmp_path: Path) -> None:
    """``lab down`` after an upgrade: the old state.json has no section for a newer part (here the
    bastion); that part has nothing to stop, every other part is stopped as usual."""
    lab = Lab(workdir=tmp_path)
    try:
        lab.start()
        old = json.loads((tmp_path / "state.json").read_text())
        del old["bastion"]
        old["processes"].pop("bastion")
        (tmp_path / "state.json").write_text(json.dumps(old))
        pids = [pid for name, part in lab.parts.items() if name != "bastion" for pid in _pids_of(part)]
        other = Lab.attach(tmp_path)
        status = other.status()
        assert status["bastion"] is False
        assert {name: up for name, up in status.items() if name != "bastion"} == dict.fromkeys(
            [n for n in PARTS if n != "bastion"], True)
        other.stop()
        _assert_gone(pids)
        assert not (tmp_path / "state.json").exists()
    finally:
        lab.stop()


def _pids_of(part: object) -> list[int]:
    pids = []
    for daemon in part.daemons:  # type: ignore[attr-defined]
        assert daemon.pid is not None
        pids += _group_members(daemon.pid) or [daemon.pid]
    return pids
