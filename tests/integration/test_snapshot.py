"""Offline audits against the real lab: ``kkp-readiness collect``, then the shipped cluster checks
live and with ``--cluster-snapshot``: the same verdicts with the same messages, without one request
to the API server from the snapshot run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kkp_readiness import snapshot
from kkp_readiness.catalogue import load_catalogue
from kkp_readiness.lab import FAULTS
from kkp_readiness.lab.kubeapi.part import read_request_log
from kkp_readiness.probes.kube import ClusterReader
from kkp_readiness.profile import load_profile
from kkp_readiness.snapshot import RESOURCES, SnapshotReader, SnapshotResource
from tests.conftest import SuiteRun, run_suite

#: Every section: verdicts() keeps the requirements that have checks.
IMPLEMENTED_SECTIONS = tuple(section.id for section in load_catalogue().sections)


def collect(lab_dir: Path, out: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``kkp-readiness collect`` as an operator runs it: the installed command, from any directory."""
    command = [str(Path(sys.executable).parent / "kkp-readiness"), "collect", "--profile", "lab", "--out", str(out)]
    return subprocess.run(command, cwd=cwd, env={**os.environ, "KKP_READINESS_LAB_DIR": str(lab_dir)},
                          capture_output=True, text=True, timeout=120, check=False)


def judged(run: SuiteRun) -> dict[str, dict[str, Any]]:
    """Per requirement that ran: its verdict, its messages (test, verdict, text) and its tests."""
    assert run.results is not None, run.output[-3000:]
    return {r["id"]: {"verdict": r["verdict"], "messages": r["messages"],
                      "tests": [(t["nodeid"], t["verdict"], t["message"]) for t in r["tests"]]}
            for r in run.results["requirements"] if r["tests"]}


#: What could not be read is recorded (collect exits 3), and replayed offline as the same error.
UNREADABLE = {"kube-unreachable", "kube-forbidden-storageclasses"}
#: Faults that change what every other check sees (nothing readable, KKP absent): each gets a lab of its own.
ALONE = UNREADABLE | {"kube-kkp-not-installed"}
#: Faults per lab otherwise: the snapshot must show each one's objects as the live reader does, which holds
#: for several at once; three keeps a failure easy to attribute.
PER_LAB = 3


def _groups(names: list[str]) -> list[tuple[str, ...]]:
    groups: list[list[str]] = []
    for name in names:
        touches = set(FAULTS[name].touches)
        for group in groups:
            if len(group) < PER_LAB and not touches & {t for g in group for t in FAULTS[g].touches}:
                group.append(name)
                break
        else:
            groups.append([name])
    return [tuple(group) for group in groups]


_KUBE_FAULTS = [name for name, fault in FAULTS.items() if fault.part == "kubeapi"]
#: The healthy lab, and every fault of the lab's Kubernetes API (new faults join automatically: each must
#: look the same offline as live), several per lab.
CASES: dict[str, tuple[str, ...]] = {
    "healthy": (),
    **{name: (name,) for name in _KUBE_FAULTS if name in ALONE},
    **{"+".join(group): group for group in _groups([n for n in _KUBE_FAULTS if n not in ALONE])},
}


@pytest.mark.parametrize("case", list(CASES))
def test_snapshot_gives_the_live_verdicts_and_messages(case: str, tmp_path: Path, kkp_lab_factory) -> None:
    faults = CASES[case]
    lab = kkp_lab_factory(list(faults))
    out = tmp_path / "audit"
    collected = collect(lab.workdir, out, tmp_path)
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    unreadable = [k for k, r in manifest["seeds"]["seed"]["resources"].items() if r["status"] == "error"]
    collect_code = 3 if unreadable else 0
    if set(faults) & UNREADABLE:
        assert unreadable
    assert collected.returncode == collect_code, collected.stdout + collected.stderr

    live = run_suite(lab.workdir, tmp_path / "live", "-m", "cluster")
    log = lab.state["kubeapi"]["request_log"]
    requests_before = len(read_request_log(log)) if Path(log).exists() else 0
    offline = run_suite(lab.workdir, tmp_path / "offline", "-m", "cluster", f"--cluster-snapshot={out}")
    requests_after = len(read_request_log(log)) if Path(log).exists() else 0

    assert requests_after == requests_before, "the snapshot run talked to the API server"
    assert judged(live), live.output[-3000:]
    assert judged(offline) == judged(live), offline.output[-4000:]
    assert offline.returncode == live.returncode
    assert live.results["run"]["cluster_source"] == "live"
    assert offline.results["run"]["cluster_source"] == f"snapshot:{out.resolve()}"
    verdicts = offline.verdicts(IMPLEMENTED_SECTIONS)
    # The snapshot really judges: what a fault breaks fails offline too (active checks skip without --active).
    broken = {rid for fault in faults for rid in FAULTS[fault].breaks if verdicts.get(rid, "skip") != "skip"}
    assert {rid: verdicts[rid] for rid in broken} == dict.fromkeys(broken, "fail"), offline.output[-3000:]
    if "kube-unreachable" in faults:
        assert set(verdicts.values()) - {"skip"} == {"error"}
    if not faults:
        assert set(verdicts.values()) - {"skip"} == {"pass"}, offline.output[-3000:]


def test_unreachable_cluster_collect_exits_3_naming_the_seed(tmp_path: Path, kkp_lab_factory) -> None:
    lab = kkp_lab_factory(["kube-unreachable"])
    collected = collect(lab.workdir, tmp_path / "audit", tmp_path)
    assert collected.returncode == 3, collected.stdout + collected.stderr
    assert "seed seed could not be read" in collected.stderr
    assert "unreachable" in collected.stderr
    manifest = yaml.safe_load((tmp_path / "audit" / "manifest.yaml").read_text())
    assert manifest["seeds"]["seed"]["complete"] is False
    assert {r["status"] for r in manifest["seeds"]["seed"]["resources"].values()} == {"error"}


def test_a_snapshot_holds_no_secret(tmp_path: Path, kkp_lab_factory) -> None:
    lab = kkp_lab_factory([])
    out = tmp_path / "audit"
    assert collect(lab.workdir, out, tmp_path).returncode == 0
    files = sorted(out.rglob("*.yaml"))
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    statuses = [r["status"] for r in manifest["seeds"]["seed"]["resources"].values()]
    assert len(statuses) == len(RESOURCES)
    assert len(files) == 1 + statuses.count("collected")  # the manifest and one file per collected resource
    assert "secrets" not in {r.get("plural") for r in manifest["seeds"]["seed"]["resources"].values()}
    assert not [f for f in files if "secret" in f.name.lower()]

    def secrets_in(value: Any) -> list[dict[str, Any]]:
        if isinstance(value, list):
            return [s for v in value for s in secrets_in(v)]
        if isinstance(value, dict):
            own = [value] if value.get("kind") in ("Secret", "SecretList") else []
            return own + [s for v in value.values() for s in secrets_in(v)]
        return []

    for path in files:
        text = path.read_text()
        assert "kind: Secret" not in text, path
        assert not secrets_in(yaml.safe_load(text)), path
    # Dex's configuration is summarised from its Secret: types and ids only, never its credentials.
    dex = yaml.safe_load((out / "seed" / "document.dex-configuration.yaml").read_text())
    assert dex["connectors"] == [{"type": "ldap", "id": "lab-ldap", "name": "Lab directory"}]
    everything = "".join(path.read_text() for path in files)
    assert "lab-dex-bind-password" not in everything
    assert "lab-dex-client-secret" not in everything


def test_files_hold_exactly_what_the_live_reader_returns(tmp_path: Path, kkp_lab_factory,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    lab = kkp_lab_factory([])
    out = tmp_path / "audit"
    assert collect(lab.workdir, out, tmp_path).returncode == 0
    monkeypatch.setenv("KKP_READINESS_LAB_DIR", str(lab.workdir))
    loaded = load_profile("lab")
    seed = loaded.profile.seeds[0]
    live = ClusterReader(snapshot.seed_access(loaded, seed))
    offline = SnapshotReader(out / seed.name)

    assert offline.server == live.server
    assert offline.version() == live.version()
    for resource in RESOURCES:
        if resource.how == "list" and resource.namespace:
            assert offline.list(resource.plural, namespace=resource.namespace) == \
                live.list(resource.plural, namespace=resource.namespace), resource.key
        elif resource.how == "list":
            assert offline.list(resource.plural) == live.list(resource.plural), resource.key
            assert offline.list(resource.plural, namespace="kube-system") == \
                live.list(resource.plural, namespace="kube-system"), resource.key
        elif resource.how == "document":
            assert offline.document(resource.plural) == live.document(resource.plural), resource.key
        elif resource.how == "custom" and hasattr(live, "list_custom"):
            args = (resource.group, resource.version, resource.plural)
            assert offline.list_custom(*args) == live.list_custom(*args), resource.key
            assert offline.list_custom(*args, namespace="metallb-system") == \
                live.list_custom(*args, namespace="metallb-system"), resource.key
    for selector in ("component=etcd", "component in (etcd,kube-apiserver)", "tier!=control-plane",
                     "!k8s-app", "k8s-app", "component notin (etcd)", "component=etcd,tier=control-plane"):
        assert offline.list("pods", label_selector=selector) == live.list("pods", label_selector=selector), selector
        assert offline.list("pods", namespace="kube-system", label_selector=selector) == \
            live.list("pods", namespace="kube-system", label_selector=selector), selector
    # A CRD the cluster does not serve is "absent" (discovery's 404), not an error.
    assert snapshot._served(live, SnapshotResource("custom", "widgets", "nothere.example.com", "v1")) is None
    assert snapshot._served(live, SnapshotResource("custom", "nothings", "metallb.io", "v1beta1")) is None
    assert snapshot._served(live, SnapshotResource("custom", "ipaddresspools", "metallb.io", "v1beta1")) is True
