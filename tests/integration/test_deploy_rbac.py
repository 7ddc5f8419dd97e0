"""The RBAC of deploy/kubernetes/ is exactly what the checks need: every request granted, every grant used.

The lab's Kubernetes API server logs every request. One lab serves:

* read-only runs of the cluster checks (``-m cluster``, no ``--active``) under the lab profile and two
  variants that take the read paths the lab profile does not (cert-manager ACME, Cilium L2 and BGP instead of
  MetalLB, the workers-only integration), on a lab whose Seed names a default ClusterTemplate and whose Dex
  configuration is where KKP <= 2.27 kept it (the ConfigMap oauth/dex): every read path of the checks is taken;
* an active run (``-m active --active``, the measuring checks included) and ``kkp-readiness cleanup``.

Each logged request is mapped to the RBAC (API group, resource, verb, name) a real API server authorises it
by. Then: every read-only request is granted by clusterrole.yaml and every atomic grant of it was used; every
active request is granted by clusterrole.yaml + clusterrole-active.yaml and every grant of the latter was used.
deploy/README.md's RBAC table must be exactly the one generated here from the ClusterRoles and the
per-check record of tests/integration/rbac_recorder.py (``KKP_UPDATE_RBAC_TABLE=1`` rewrites it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml

from kkp_readiness.lab import Lab
from kkp_readiness.lab.faults import Fault
from kkp_readiness.lab.kubeapi.cluster import KubePlan
from kkp_readiness.lab.kubeapi.part import LoggedRequest, read_request_log
from tests.conftest import PROJECT_ROOT, run_suite

KUBERNETES_DIR = PROJECT_ROOT / "deploy" / "kubernetes"
READER_FILE = KUBERNETES_DIR / "clusterrole.yaml"
ACTIVE_FILE = KUBERNETES_DIR / "clusterrole-active.yaml"
README = PROJECT_ROOT / "deploy" / "README.md"
TABLE_BEGIN, TABLE_END = "<!-- rbac-table:begin -->", "<!-- rbac-table:end -->"
LAB_PROFILE = PROJECT_ROOT / "profiles" / "lab.yaml"

#: Profile variants (on top of the lab profile) whose checks read what the lab profile's do not.
VARIANTS: dict[str, dict[str, Any]] = {
    "acme-cilium-l2-workers-only": {
        "certificates": {"source": "cert-manager-acme"},
        "load_balancer": {"mode": "cilium-l2", "address_pools": ["127.0.0.10-127.0.0.20"]},
        "cloud": {"integration": "workers-only"},
        "network": {"node_cidrs": ["127.0.1.0/24"], "remote_workers": True},
    },
    "cilium-bgp": {"load_balancer": {"mode": "cilium-bgp", "address_pools": ["127.0.0.10-127.0.0.20"]}},
}
#: Paths that are no API resource: a real cluster lets every client read them through the default
#: ClusterRoles system:public-info-viewer (/version, /healthz, /livez, /readyz) and system:discovery
#: (/api, /apis and below), bound to system:authenticated/unauthenticated. No rule of ours is needed.
PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz", "/api", "/apis")
#: Verbs that write: never in the read-only ClusterRole.
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate"}
CLEANUP_LABEL = "`kkp-readiness cleanup`"


@dataclass(frozen=True, order=True)
class Grant:
    """One atomic RBAC permission: verb on resource (``pods/log`` for a subresource) of a group, for one
    object name, or for every object when ``name`` is empty."""

    group: str
    resource: str
    verb: str
    name: str = ""

    def covers(self, request: Grant) -> bool:
        return (self.group, self.resource, self.verb) == (request.group, request.resource, request.verb) \
            and self.name in ("", request.name)


def required_grant(method: str, target: str) -> Grant | None:
    """The grant a Kubernetes API server checks for ``method target``; None for a non-resource path.

    GET on a collection is ``list`` (``watch`` with ``?watch=true``), on a named object ``get``; POST is
    ``create``, DELETE ``delete`` (``deletecollection`` on a collection), PUT ``update``, PATCH ``patch``.
    Namespaced paths (``namespaces/NS/<resource>``) are authorised by their resource, a ClusterRole bound
    by a ClusterRoleBinding granting it in every namespace.

    >>> required_grant("GET", "/apis/apps/v1/namespaces/dex/deployments?labelSelector=a%3Db")
    Grant(group='apps', resource='deployments', verb='list', name='')
    >>> required_grant("GET", "/api/v1/namespaces/ns/pods/p-1/log?container=fio")
    Grant(group='', resource='pods/log', verb='get', name='p-1')
    """
    url = urlsplit(target)
    parts = [unquote(p) for p in url.path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    if not rest:
        return None
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    name = rest[1] if len(rest) > 1 else ""
    if method in ("GET", "HEAD"):
        watching = parse_qs(url.query).get("watch", [""])[0] in ("true", "1")
        verb = "get" if name else "watch" if watching else "list"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}[method]
    return Grant(group, resource, verb, name)


def cluster_role(path: Path) -> dict[str, Any]:
    """The ClusterRole document of one of deploy/kubernetes' RBAC files."""
    return next(d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == "ClusterRole")


def atomic_grants(role: dict[str, Any]) -> set[Grant]:
    """Every (group, resource, verb, name) a ClusterRole's rules grant."""
    return {Grant(group, resource, verb, name)
            for rule in role["rules"] for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"] for name in rule.get("resourceNames") or [""]}


@dataclass
class Phase:
    """The requests of one part of the test run and the grants they need."""

    requests: list[LoggedRequest]

    def grants(self) -> set[Grant]:
        return {g for r in self.requests if r.method != "TLS" and (g := required_grant(r.method, r.path))}

    def public_paths(self) -> set[str]:
        return {urlsplit(r.path).path.rstrip("/") for r in self.requests
                if r.method != "TLS" and required_grant(r.method, r.path) is None}


@dataclass
class Observed:
    reader: Phase
    active: Phase
    cleanup: Phase
    needed_by: dict[tuple[str, str, str], set[str]]
    outputs: str


def _rare_read_paths(plan: KubePlan) -> None:
    """Not a registered fault: the read paths the healthy lab never takes. The Seed names a default
    ClusterTemplate (NET-005 then lists ClusterTemplates) and Dex's configuration is not in the Secret dex/dex
    (the checks then look for KKP <= 2.27's ConfigMap oauth/dex)."""
    plan.cluster.find("Seed", "seed", "kubermatic")["spec"]["defaultClusterTemplate"] = "default"
    plan.cluster.remove("Secret", "dex", "dex")


def _merge_record(path: Path, into: dict[tuple[str, str, str], set[str]]) -> None:
    for key, ids in json.loads(path.read_text()).items():
        group, resource, verb = key.split("|")
        into.setdefault((group, resource, verb), set()).update(ids)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Observed:
    """Run the checks against one lab and split its request log by phase."""
    tmp = tmp_path_factory.mktemp("rbac")
    lab = Lab()
    lab.faults = (Fault("rbac-rare-read-paths", "kubeapi", "The read paths the healthy lab does not take.",
                        apply=_rare_read_paths),)
    needed_by: dict[tuple[str, str, str], set[str]] = {}
    outputs: list[str] = []
    with lab:
        log = Path(lab.state["kubeapi"]["request_log"])
        profiles = [("lab", "lab")]
        for name, overrides in VARIANTS.items():
            path = tmp / f"{name}.yaml"
            path.write_text(yaml.safe_dump({"extends": str(LAB_PROFILE), "name": f"lab-{name}", **overrides}))
            profiles.append((name, str(path)))

        def recorded_run(name: str, *args: str, profile: str = "lab", benchmarks: bool = False) -> None:
            record = tmp / f"record-{name}.json"
            run = run_suite(lab.workdir, tmp / f"reports-{name}", "-p", "tests.integration.rbac_recorder", *args,
                            env={"KKP_RBAC_RECORD": str(record)}, profile=profile, benchmarks=benchmarks)
            outputs.append(f"--- {name}: exit {run.returncode}\n{run.output[-2000:]}")
            assert record.exists(), run.output[-3000:]
            _merge_record(record, needed_by)

        for name, profile in profiles:
            recorded_run(name, "-m", "cluster", profile=profile)
        reader_end = len(read_request_log(log))
        recorded_run("active", "-m", "active", "--active", benchmarks=True)
        active_end = len(read_request_log(log))
        cleanup = subprocess.run([sys.executable, "-m", "kkp_readiness", "cleanup", "--profile=lab"],
                                 cwd=PROJECT_ROOT, env={**os.environ, "KKP_READINESS_LAB_DIR": str(lab.workdir)},
                                 capture_output=True, text=True, timeout=120, check=False)
        outputs.append(f"--- cleanup: exit {cleanup.returncode}\n{cleanup.stdout}{cleanup.stderr}")
        assert cleanup.returncode == 0, outputs[-1]
        requests = read_request_log(log)
    return Observed(Phase(requests[:reader_end]), Phase(requests[reader_end:active_end]),
                    Phase(requests[active_end:]), needed_by, "\n".join(outputs))


def _show(grants: Iterable[Grant]) -> str:
    return "\n".join(f"  {g.group or '(core)'} {g.resource} {g.verb} {g.name}".rstrip() for g in sorted(grants))


def unused(granted: set[Grant], requested: set[Grant]) -> set[Grant]:
    return {g for g in granted if not any(g.covers(r) for r in requested)}


def ungranted(requested: set[Grant], granted: set[Grant]) -> set[Grant]:
    return {r for r in requested if not any(g.covers(r) for g in granted)}


def test_read_only_checks_need_exactly_the_reader_cluster_role(observed: Observed) -> None:
    granted = atomic_grants(cluster_role(READER_FILE))
    requested = observed.reader.grants()
    assert requested, observed.outputs
    assert not {g for g in granted if g.verb in WRITE_VERBS}, "the read-only ClusterRole grants a write verb"
    missing = ungranted(requested, granted)
    assert not missing, f"requests the ClusterRole does not grant:\n{_show(missing)}\n{observed.outputs[-3000:]}"
    spare = unused(granted, requested)
    assert not spare, f"grants no read-only check used:\n{_show(spare)}"
    assert observed.reader.public_paths() <= set(PUBLIC_PATHS), observed.reader.public_paths()


def test_active_checks_need_exactly_the_active_cluster_role(observed: Observed) -> None:
    reader, active = atomic_grants(cluster_role(READER_FILE)), atomic_grants(cluster_role(ACTIVE_FILE))
    requested = observed.active.grants() | observed.cleanup.grants()
    assert {g.verb for g in requested} >= {"create", "delete"}, observed.outputs[-3000:]
    missing = ungranted(requested, reader | active)
    assert not missing, f"requests neither ClusterRole grants:\n{_show(missing)}\n{observed.outputs[-3000:]}"
    spare = unused(active, requested)
    assert not spare, f"grants of clusterrole-active.yaml no active check used:\n{_show(spare)}"
    assert not active & reader, "clusterrole-active.yaml repeats grants of the read-only ClusterRole"


def _requirement_key(requirement: str) -> tuple[str, int]:
    section, _, number = requirement.rpartition("-")
    return (section, int(number)) if number.isdigit() else (requirement, 0)


def rbac_table(observed: Observed) -> str:
    """deploy/README.md's table: one row per ClusterRole, group, resource and names, with the checks needing it."""
    needed_by = {key: set(ids) for key, ids in observed.needed_by.items()}
    for grant in observed.cleanup.grants():
        needed_by.setdefault((grant.group, grant.resource, grant.verb), set()).add(CLEANUP_LABEL)
    rows = ["| ClusterRole | API group | Resource | Verbs | Names | Needed by |", "|---|---|---|---|---|---|"]
    for path in (READER_FILE, ACTIVE_FILE):
        role = cluster_role(path)
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    users: set[str] = set()
                    for verb in rule["verbs"]:
                        users |= needed_by.get((group, resource, verb), set())
                    checks = sorted(users - {CLEANUP_LABEL}, key=_requirement_key)
                    checks += [CLEANUP_LABEL] if CLEANUP_LABEL in users else []
                    rows.append(f"| `{role['metadata']['name']}` | {f'`{group}`' if group else '(core)'} | "
                                f"`{resource}` | {', '.join(rule['verbs'])} | "
                                f"{', '.join(rule.get('resourceNames') or []) or 'all'} | "
                                f"{', '.join(checks) or '-'} |")
    return "\n".join(rows)


def test_readme_table_matches_the_cluster_roles(observed: Observed) -> None:
    recorded = {k for k, ids in observed.needed_by.items() if k[1] != "version"}
    logged = {(g.group, g.resource, g.verb) for g in observed.reader.grants() | observed.active.grants()}
    assert recorded == logged, "the per-check record and the API server's log disagree"
    table = rbac_table(observed)
    text = README.read_text()
    head, _, rest = text.partition(TABLE_BEGIN)
    current, _, tail = rest.partition(TABLE_END)
    if os.environ.get("KKP_UPDATE_RBAC_TABLE") == "1":
        README.write_text(f"{head}{TABLE_BEGIN}\n{table}\n{TABLE_END}{tail}")
        current = f"\n{table}\n"
    assert TABLE_BEGIN in text, f"{README} lacks the table markers"
    assert TABLE_END in text, f"{README} lacks the table markers"
    assert current.strip() == table, (f"deploy/README.md's RBAC table differs from the ClusterRoles; expected:\n"
                                      f"{table}\n(KKP_UPDATE_RBAC_TABLE=1 rewrites it)")
