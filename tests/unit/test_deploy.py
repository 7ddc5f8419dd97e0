"""deploy/: the image definition, the Kubernetes manifests, the CI examples and kkp-readiness-nightly.

No container runtime, cluster or CI service is reachable here, so each artefact is checked for what would
break it there: the Containerfile is parsed (non-root numeric USER, no secret in ENV/ARG, an entry point, every
COPY source present in the build context, only allowlisted Debian 12 packages), every manifest is validated
against the Kubernetes 1.30 schema in strict mode (unknown fields are errors) and checked for the CronJob's
safety settings, the example profile is loaded with the suite's own loader, the CI files are checked for
schedule, artifacts and the suite invocation (whose pytest arguments are collected for real), and
``nightly.sh`` runs against a stand-in ``kkp-readiness``.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError

from kkp_readiness.profile import load_profile

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = PROJECT_ROOT / "deploy"
CONTAINERFILE = DEPLOY / "Containerfile"
NIGHTLY = DEPLOY / "nightly.sh"
MANIFESTS = sorted((DEPLOY / "kubernetes").rglob("*.yaml"))
CRONJOBS = [DEPLOY / "kubernetes" / "cronjob.yaml", DEPLOY / "kubernetes" / "s3" / "cronjob-s3.yaml"]
#: The oldest Kubernetes whose schema the manifests must satisfy (kubernetes-validate>=1.30 ships it).
KUBERNETES_VERSION = "1.30.0"

#: Debian 12 (bookworm) packages the image may install, and why: the tools the checks shell out to.
APT_ALLOWLIST = {
    "ca-certificates": "TLS verification of the site's endpoints and of PyPI while building",
    "fio": "PERF-001/PERF-003 on the local target (probes/fio.py)",
    "etcd-client": "etcdctl check perf, PERF-005 (probes/etcd_perf.py)",
    "git": "CONFIG checks read the configuration repository with git (probes/config_repo.py)",
    "git-crypt": "CONFIG-004 asks git-crypt which files it encrypts (probes/config_repo.py)",
    "tini": "PID 1: signal forwarding to pytest and reaping of fio/etcdctl/git children",
}
#: The lab's daemons (scripts/setup installs them for the lab only): never in the image.
LAB_ONLY = {"dnsmasq", "dnsmasq-base", "nginx", "nginx-light", "openssh-server", "tinyproxy", "docker-registry",
            "etcd-server", "sudo", "nodejs", "npm"}
SECRET_NAME = re.compile(r"pass(word)?|token|secret|credential|private|api[_-]?key|pull[_-]?secret", re.I)
DOCUMENTATION_NETWORKS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]


# --------------------------------------------------------------------------------------------- Containerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def parse_containerfile(text: str) -> list[Instruction]:
    """The instructions of a Containerfile: comments dropped, continuation lines joined."""
    instructions: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def env_names(instructions: list[Instruction]) -> list[str]:
    """The variable names ENV and ARG set (``ENV A=1 B=2``, ``ENV A 1``, ``ARG A=1``)."""
    names: list[str] = []
    for instruction in instructions:
        if instruction.keyword not in ("ENV", "ARG"):
            continue
        words = shlex.split(instruction.arguments)
        if instruction.keyword == "ENV" and words and "=" not in words[0]:
            names.append(words[0])
        else:
            names += [word.partition("=")[0] for word in words]
    return names


def apt_packages(instructions: list[Instruction]) -> set[str]:
    """Every package named after ``apt-get install`` in the RUN instructions."""
    packages: set[str] = set()
    for instruction in instructions:
        if instruction.keyword != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", instruction.arguments):
            words = shlex.split(command)
            if words[:2] == ["apt-get", "install"]:
                packages |= {w for w in words[2:] if not w.startswith("-")}
    return packages


def copy_sources(instructions: list[Instruction]) -> list[str]:
    """The build-context paths of every COPY (not those ``--from`` another stage)."""
    sources: list[str] = []
    for instruction in instructions:
        if instruction.keyword != "COPY":
            continue
        words = shlex.split(instruction.arguments)
        if any(w.startswith("--from") for w in words):
            continue
        sources += [w for w in words if not w.startswith("--")][:-1]
    return sources


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether a .dockerignore excludes ``path`` (or a parent of it); ``!pattern`` re-includes, last wins."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        if any(fnmatch(c, body) or fnmatch(c, body.removeprefix("**/")) for c in candidates):
            excluded = not negated
    return excluded


def dockerignore() -> list[str]:
    lines = (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def containerfile() -> list[Instruction]:
    return parse_containerfile(CONTAINERFILE.read_text())


def test_image_is_debian_12_python(containerfile: list[Instruction]) -> None:
    bases = [i.arguments for i in containerfile if i.keyword == "FROM"]
    assert bases
    assert all(re.fullmatch(r"(docker\.io/library/)?python:3\.1[1-9]-slim-bookworm", b) for b in bases)


def test_image_runs_as_a_numeric_non_root_user(containerfile: list[Instruction]) -> None:
    users = [i.arguments for i in containerfile if i.keyword == "USER"]
    assert users, "no USER: the image would run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit(), f"USER {users[-1]}: runAsNonRoot can only verify a numeric UID"
    assert int(user) > 0, f"USER {users[-1]}: root"
    assert not group or (group.isdigit() and int(group) > 0)


@pytest.mark.parametrize("line", ["ENV VSPHERE_PASSWORD=s3cret", "ENV KKP_TOKEN abc", "ARG PULL_SECRET",
                                  "ENV A=1 AZURE_CLIENT_SECRET=x"])
def test_secret_detection_flags_secret_variables(line: str) -> None:
    """The detector used below catches the usual ways a secret is baked in."""
    assert any(SECRET_NAME.search(name) for name in env_names(parse_containerfile(line)))


def test_no_secret_is_baked_into_the_image(containerfile: list[Instruction]) -> None:
    names = env_names(containerfile)
    assert "KKP_READINESS_REPORTS" in names  # the parser sees the ENV block at all
    assert not [n for n in names if SECRET_NAME.search(n)]
    copied = " ".join(copy_sources(containerfile))
    assert not re.search(r"kubeconfig|\.pem|\.key|id_(rsa|ed25519)|secret", copied, re.I)


def test_entrypoint_runs_the_nightly_script_under_tini(containerfile: list[Instruction]) -> None:
    entrypoints = [json.loads(i.arguments) for i in containerfile if i.keyword == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT"
    assert entrypoints[-1] == ["/usr/bin/tini", "--", "kkp-readiness-nightly"]
    copies = [shlex.split(i.arguments) for i in containerfile if i.keyword == "COPY"]
    assert any(words[-2:] == ["deploy/nightly.sh", "/usr/local/bin/kkp-readiness-nightly"] for words in copies)


def test_every_copied_path_is_in_the_build_context(containerfile: list[Instruction]) -> None:
    sources = copy_sources(containerfile)
    assert {"kkp_readiness/", "tests_infra/", "fixtures/", "conftest.py", "pyproject.toml"} <= set(sources)
    patterns = dockerignore()
    for source in sources:
        assert (PROJECT_ROOT / source).exists(), f"COPY {source}: no such path in the repository"
        assert not ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = dockerignore()
    for path in (".venv", ".git", "reports/latest", "tests/unit", "deploy/README.md", ".lab"):
        assert ignored(path, patterns), path
    assert not ignored("deploy/nightly.sh", patterns)


def test_image_installs_only_allowlisted_debian_packages(containerfile: list[Instruction]) -> None:
    packages = apt_packages(containerfile)
    assert {"fio", "etcd-client"} <= packages, packages
    assert packages <= set(APT_ALLOWLIST), packages - set(APT_ALLOWLIST)
    assert not packages & LAB_ONLY


def test_apt_parser_sees_lab_packages() -> None:
    """A Containerfile that installs a lab daemon is caught by the check above."""
    run = parse_containerfile("RUN apt-get update && apt-get install -y --no-install-recommends fio \\\n  dnsmasq")
    assert apt_packages(run) & LAB_ONLY == {"dnsmasq"}


# --------------------------------------------------------------------------------------------- manifests


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_manifests_exist() -> None:
    kinds = {d["kind"] for path in MANIFESTS for d in documents(path)}
    assert {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "PersistentVolumeClaim",
            "ConfigMap", "CronJob"} <= kinds


@pytest.mark.parametrize("path", MANIFESTS, ids=[str(p.relative_to(DEPLOY)) for p in MANIFESTS])
def test_manifest_is_valid_kubernetes(path: Path) -> None:
    for document in documents(path):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_strict_validation_rejects_unknown_fields() -> None:
    """The schema check is strict: a misspelt field (here in the pod's securityContext) fails."""
    cronjob = documents(CRONJOBS[0])[0]
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["securityContext"]["runAsNonroot"] = True
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(cronjob, KUBERNETES_VERSION, strict=True)


def pod_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("path", CRONJOBS, ids=[p.name for p in CRONJOBS])
def test_cronjob_runs_once_at_a_time_without_retries(path: Path) -> None:
    cronjob = documents(path)[0]
    spec, job = cronjob["spec"], cronjob["spec"]["jobTemplate"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["successfulJobsHistoryLimit"] >= 1
    assert spec["failedJobsHistoryLimit"] >= 1
    assert job["backoffLimit"] == 0
    assert 0 < job["activeDeadlineSeconds"] <= 4 * 3600
    assert pod_spec(cronjob)["restartPolicy"] == "Never"


@pytest.mark.parametrize("path", CRONJOBS, ids=[p.name for p in CRONJOBS])
def test_cronjob_pod_is_locked_down(path: Path) -> None:
    pod = pod_spec(documents(path)[0])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's USER
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"]["drop"] == ["ALL"], container["name"]
        assert container["resources"]["requests"], container["name"]
        assert container["resources"]["limits"]["memory"], container["name"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], f"{container['name']}: /tmp must be a writable emptyDir"


@pytest.mark.parametrize("path", CRONJOBS, ids=[p.name for p in CRONJOBS])
def test_cronjob_takes_profile_and_secrets_from_the_cluster(path: Path) -> None:
    pod = pod_spec(documents(path)[0])
    suite = next(c for c in [*pod.get("initContainers", []), *pod["containers"]] if "kkp-readiness:" in c["image"])
    env = {e["name"]: e for e in suite["env"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in suite["volumeMounts"]}
    profile_dir = env["KKP_READINESS_PROFILES"]["value"]
    assert volumes[mounts[profile_dir]["name"]]["configMap"]["name"] == "kkp-readiness-profile"
    assert mounts[profile_dir]["readOnly"] is True
    assert "secret" in volumes[mounts["/etc/kkp-readiness/secrets"]["name"]]
    assert env["MIRROR_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "kkp-readiness-secrets"
    assert not [e for e in suite["env"] if SECRET_NAME.search(e["name"]) and "value" in e], "a secret inline"
    reports = volumes[mounts[env["KKP_READINESS_REPORTS"]["value"]]["name"]]
    if path.name == "cronjob.yaml":
        assert reports["persistentVolumeClaim"]["claimName"] == documents(DEPLOY / "kubernetes" / "pvc.yaml")[0][
            "metadata"]["name"]
    else:
        assert "emptyDir" in reports


def test_service_account_is_the_one_bound() -> None:
    account = documents(DEPLOY / "kubernetes" / "serviceaccount.yaml")[0]["metadata"]
    for name in ("clusterrole.yaml", "clusterrole-active.yaml"):
        role, binding = documents(DEPLOY / "kubernetes" / name)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                      "name": role["metadata"]["name"]}
        assert binding["subjects"] == [{"kind": "ServiceAccount", **account}] or binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}]
    for path in CRONJOBS:
        assert pod_spec(documents(path)[0])["serviceAccountName"] == account["name"]


def test_example_profile_loads_with_the_suites_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ConfigMap's profile is valid as the suite reads it (secret references resolvable from the Secret)."""
    config_map = documents(DEPLOY / "kubernetes" / "configmap-profile.yaml")[0]
    (tmp_path / "site.yaml").write_text(config_map["data"]["site.yaml"])
    monkeypatch.setenv("KKP_READINESS_PROFILES", str(tmp_path))
    monkeypatch.setenv("MIRROR_PASSWORD", "example-only-value")
    loaded = load_profile("site")
    assert loaded.profile.seeds[0].kubeconfig is None  # read with the pod's service account


def test_secret_keys_the_cronjob_uses_are_the_ones_the_readme_creates() -> None:
    readme = (DEPLOY / "README.md").read_text()
    created = set(re.findall(r"--from-(?:literal|file)=([\w.-]+)=", readme))
    for path in CRONJOBS:
        pod = pod_spec(documents(path)[0])
        keys = {e["valueFrom"]["secretKeyRef"]["key"] for c in [*pod.get("initContainers", []), *pod["containers"]]
                for e in c.get("env", []) if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name")
                == "kkp-readiness-secrets"}
        keys |= {item["key"] for v in pod["volumes"] if "secret" in v
                 and v["secret"]["secretName"] == "kkp-readiness-secrets" for item in v["secret"]["items"]}
        assert keys <= created, keys - created


def test_deploy_names_only_documentation_addresses() -> None:
    """Examples must never point anyone's run at a real host: IPv4 addresses only from the documentation ranges."""
    found = []
    for path in [p for p in DEPLOY.rglob("*") if p.is_file()] + [PROJECT_ROOT / ".dockerignore"]:
        for text in re.findall(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w.])", path.read_text()):
            address = ipaddress.ip_address(text)
            if not any(address in network for network in DOCUMENTATION_NETWORKS):
                found.append(f"{path.relative_to(PROJECT_ROOT)}: {address}")
    assert not found


# --------------------------------------------------------------------------------------------- CI


def ci(name: str) -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "ci" / name).read_text())


def nightly_arguments(lines: list[str]) -> list[list[str]]:
    """The pytest arguments of every ``nightly.sh`` call in a CI script."""
    calls = []
    for line in lines:
        words = shlex.split(line)
        for index, word in enumerate(words):
            if word.endswith("deploy/nightly.sh"):
                calls.append(words[index + 1:])
    return calls


@functools.cache
def registered_markers() -> frozenset[str]:
    output = subprocess.run([sys.executable, "-m", "pytest", "--markers", "-p", "no:cacheprovider"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120, check=True).stdout
    return frozenset(re.findall(r"^@pytest\.mark\.(\w+)", output, re.M))


@functools.cache
def collect(arguments: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """``pytest --collect-only`` of the shipped checks with these arguments, against a template profile."""
    env = {**os.environ, "MIRROR_PASSWORD": "example-only-value"}
    return subprocess.run([sys.executable, "-m", "pytest", "tests_infra", "--collect-only", "-q", "-p",
                           "no:cacheprovider", "--profile=onprem-metallb", *arguments], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def assert_valid_suite_arguments(arguments: list[str]) -> None:
    """The arguments select shipped checks (pytest and the plugin accept them) and name only known markers."""
    if "-m" in arguments:
        expression = arguments[arguments.index("-m") + 1]
        names = set(re.findall(r"[A-Za-z_]\w*", expression)) - {"and", "or", "not"}
        assert names <= registered_markers(), names - registered_markers()
    completed = collect(tuple(arguments))
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert re.search(r"^\d+(/\d+)? tests? (collected|selected)", completed.stdout, re.M), completed.stdout[-500:]


def test_suite_argument_check_rejects_unknown_markers_and_options() -> None:
    with pytest.raises(AssertionError):
        assert_valid_suite_arguments(["-m", "not actve"])
    with pytest.raises(AssertionError):
        assert_valid_suite_arguments(["--reports-directory=/tmp/x"])


def test_github_workflow_runs_nightly_and_keeps_reports() -> None:
    workflow = ci("github-actions.yml")
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["schedule"][0]["cron"]
    assert "workflow_dispatch" in triggers
    steps = workflow["jobs"]["readiness"]["steps"]
    uses = {step.get("uses", "").partition("@")[0]: step for step in steps}
    assert uses["actions/upload-artifact"]["if"] == "always()"
    assert "reports/" in uses["actions/upload-artifact"]["with"]["path"]
    assert uses["actions/cache/save"]["if"] == "always()"
    restore = uses["actions/cache/restore"]["with"]
    assert restore["restore-keys"].strip()
    assert restore["key"].startswith(restore["restore-keys"].strip())
    scripts = [line for step in steps for line in str(step.get("run", "")).splitlines()]
    calls = nightly_arguments(scripts)
    assert calls, "the workflow never runs deploy/nightly.sh"
    for arguments in calls:
        assert_valid_suite_arguments(arguments)


def test_gitlab_job_runs_on_schedule_and_keeps_reports() -> None:
    job = ci("gitlab-ci.yml")["kkp-readiness-nightly"]
    assert {"if": '$CI_PIPELINE_SOURCE == "schedule"'} in job["rules"]
    assert job["artifacts"]["when"] == "always"
    assert "reports/" in job["artifacts"]["paths"]
    reports_cache = next(c for c in job["cache"] if "reports/" in c["paths"])
    assert reports_cache["when"] == "always"
    calls = nightly_arguments(job["script"])
    assert calls, "the job never runs deploy/nightly.sh"
    for arguments in calls:
        assert_valid_suite_arguments(arguments)


def test_image_default_arguments_are_valid_suite_arguments(containerfile: list[Instruction]) -> None:
    commands = [json.loads(i.arguments) for i in containerfile if i.keyword == "CMD"]
    assert commands
    assert_valid_suite_arguments(commands[-1])


# --------------------------------------------------------------------------------------------- nightly.sh

FAKE_SUITE = r"""#!/bin/sh
# A stand-in for kkp-readiness: `run` writes a run directory and points latest at it, `diff` logs its arguments.
case "$1" in
run)
    echo "run $*" >> "$FAKE_LOG"
    id="run-$(date +%s%N)"
    mkdir -p "$KKP_READINESS_REPORTS/$id"
    [ "${FAKE_NO_RESULTS:-0}" = 1 ] || echo '{}' > "$KKP_READINESS_REPORTS/$id/results.json"
    ln -sfn "$id" "$KKP_READINESS_REPORTS/latest"
    exit "$FAKE_SUITE_EXIT" ;;
diff)
    echo "diff $2 $3" >> "$FAKE_LOG"
    exit "$FAKE_DIFF_EXIT" ;;
esac
exit 99
"""


@dataclass
class Nightly:
    code: int
    output: str
    log: list[str]


def run_nightly(tmp_path: Path, suite_exit: int, diff_exit: int = 0, previous: bool = False,
                **env: str) -> Nightly:
    """Run deploy/nightly.sh with the stand-in suite; ``previous`` leaves an earlier run in the reports."""
    fake = tmp_path / "kkp-readiness"
    fake.write_text(FAKE_SUITE)
    fake.chmod(0o755)
    reports = tmp_path / "reports"
    if previous:
        (reports / "run-previous").mkdir(parents=True)
        (reports / "run-previous" / "results.json").write_text("{}")
        (reports / "latest").symlink_to("run-previous")
    log = tmp_path / "calls.log"
    environment = {**os.environ, "KKP_READINESS_COMMAND": str(fake), "KKP_READINESS_REPORTS": str(reports),
                   "FAKE_LOG": str(log), "FAKE_SUITE_EXIT": str(suite_exit), "FAKE_DIFF_EXIT": str(diff_exit), **env}
    completed = subprocess.run(["sh", str(NIGHTLY), "-m", "dns"], env=environment, capture_output=True, text=True,
                               timeout=60, check=False)
    return Nightly(completed.returncode, completed.stdout + completed.stderr,
                   log.read_text().splitlines() if log.exists() else [])


@pytest.mark.parametrize(("suite", "env", "expected"), [
    (0, {}, 0),
    (1, {}, 1),
    (2, {}, 2),
    (3, {}, 3),
    (4, {}, 0),
    (4, {"KKP_READINESS_FAIL_ON_WARNINGS": "1"}, 4),
    (5, {}, 5),
])
def test_nightly_exit_code_policy(suite: int, env: dict[str, str], expected: int, tmp_path: Path) -> None:
    run = run_nightly(tmp_path, suite, **env)
    assert run.code == expected, run.output
    assert run.log[0].split()[:4] == ["run", "run", "--project-dir", "--"]  # pytest arguments passed through
    assert run.log[0].endswith("-m dns")
    assert not [line for line in run.log if line.startswith("diff")], "compared without a previous run"


@pytest.mark.parametrize(("suite", "diff", "env", "expected"), [
    (0, 0, {}, 0),
    (0, 1, {}, 1),                                          # a regression fails a passing run
    (0, 1, {"KKP_READINESS_FAIL_ON_REGRESSION": "0"}, 0),
    (4, 1, {}, 1),                                          # warnings only, but something regressed
    (1, 1, {}, 1),
    (0, 2, {}, 0),                                          # the comparison could not run: not judged
    (0, 127, {}, 0),                                        # an older kkp-readiness without `diff`
])
def test_nightly_compares_with_the_previous_run(suite: int, diff: int, env: dict[str, str], expected: int,
                                                 tmp_path: Path) -> None:
    run = run_nightly(tmp_path, suite, diff_exit=diff, previous=True, **env)
    assert run.code == expected, run.output
    compared = [line.split() for line in run.log if line.startswith("diff")]
    assert len(compared) == 1, run.log
    assert compared[0][1] == str((tmp_path / "reports" / "run-previous").resolve())
    assert compared[0][2] != compared[0][1]
    assert Path(compared[0][2], "results.json").exists()


def test_nightly_does_not_compare_a_run_without_results(tmp_path: Path) -> None:
    run = run_nightly(tmp_path, 2, previous=True, FAKE_NO_RESULTS="1")
    assert run.code == 2
    assert not [line for line in run.log if line.startswith("diff")]


def test_nightly_keeps_only_the_latest_run_when_asked(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "notes.txt").write_text("not a run")
    run = run_nightly(tmp_path, 0, previous=True, KKP_READINESS_KEEP_ONLY_LATEST="1")
    assert run.code == 0, run.output
    left = sorted(p.name for p in (tmp_path / "reports").iterdir())
    latest = (tmp_path / "reports" / "latest").resolve().name
    assert left == sorted(["latest", latest, "notes.txt"]), left


def test_nightly_keeps_every_run_by_default(tmp_path: Path) -> None:
    run_nightly(tmp_path, 0, previous=True)
    assert (tmp_path / "reports" / "run-previous" / "results.json").exists()
