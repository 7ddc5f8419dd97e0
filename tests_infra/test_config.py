"""CONFIG: the installation's configuration repository (a local git checkout; read-only, no network).

The probe (kkp_readiness.probes.config_repo) returns what git and the files say; the judgement is
made here. No finding and no evidence ever holds a secret value: only file names and YAML paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from kkp_readiness.evidence import Evidence
from kkp_readiness.probes import config_repo as repo_probe
from kkp_readiness.probes.config_repo import ConfigRepoError, RepoFacts
from kkp_readiness.profile import LoadedProfile
from kkp_readiness.profile_model import ConfigRepoSpec
from kkp_readiness.verdict import expect

KKP_API_VERSION = "kubermatic.k8c.io/v1"
#: Which kind a file must hold, from a word in its name (KKP's example layout: kubermatic.yaml, values.yaml,
#: seed-*.yaml, kubeone.yaml); (apiVersion or None, kind). A file matching no word need only be valid YAML.
EXPECTED_KINDS: tuple[tuple[str, str | None, str], ...] = (
    ("kubermatic", KKP_API_VERSION, "KubermaticConfiguration"),
    ("seed", KKP_API_VERSION, "Seed"),
    ("values", None, repo_probe.HELM_VALUES),
    ("kubeone", "kubeone.k8c.io/v1beta2", "KubeOneCluster"),
)


@dataclass(frozen=True)
class ConfigRepo:
    """The profile's configuration repository: where it is, what the profile expects, what git says."""

    path: Path
    spec: ConfigRepoSpec
    facts: RepoFacts

    @property
    def present(self) -> list[str]:
        """Listed files that exist in the work tree (a missing one is CONFIG-002's finding)."""
        return [name for name in self.spec.files if (self.path / name).is_file()]

    def tracked(self, name: str) -> bool:
        return name in self.facts.tracked


@pytest.fixture(scope="module")
def config_repo(loaded_profile: LoadedProfile) -> ConfigRepo:
    """The repository of ``config_repo.path`` (relative to the profile that sets it), read once per module."""
    spec = loaded_profile.profile.config_repo
    path = loaded_profile.resolve_path(("config_repo", "path"), spec.path)
    if path is None:
        pytest.skip("the profile names no configuration repository (config_repo.path)")
    return ConfigRepo(Path(path), spec, repo_probe.read_repo(Path(path)))


def _listed_files(repo: ConfigRepo) -> list[str]:
    if not repo.spec.files:
        pytest.skip("the profile lists no configuration files (config_repo.files)")
    return repo.spec.files


def _documents(repo: ConfigRepo, name: str) -> list:
    """The YAML documents of a work-tree file; a git-crypt-locked file cannot be looked at (error)."""
    path = repo.path / name
    if repo_probe.work_tree_locked(path):
        raise ConfigRepoError(f"{name} is git-crypt ciphertext in the work tree of {repo.path}: run git-crypt unlock")
    return repo_probe.load_documents(path)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what, without the snippet of the offending line (it might hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{getattr(exc, 'problem', None) or 'invalid YAML'}{where}"


# Ensures the configuration has a shared, versioned history: a git work tree with a commit and a remote.
@pytest.mark.requirement("CONFIG-001")
def test_config_repo_is_versioned_with_a_remote(config_repo: ConfigRepo, evidence: Evidence) -> None:
    facts = config_repo.facts
    evidence.attach("git repository", facts.to_dict())
    subject = f"configuration directory {config_repo.path}"
    expect(facts.work_tree, subject, expected="a git work tree", found="not inside a git repository")
    expect(facts.head is not None, subject, expected="at least one commit", found="no commit yet")
    expect(bool(facts.remotes), subject, expected="at least one remote (git remote add origin URL; git push)",
           found="no remote configured")


# Ensures every configuration file the profile lists exists and is committed.
@pytest.mark.requirement("CONFIG-002")
def test_config_files_present(config_repo: ConfigRepo, evidence: Evidence) -> None:
    listed = _listed_files(config_repo)
    status = {name: "missing" if not (config_repo.path / name).is_file()
              else "tracked" if config_repo.tracked(name) else "not tracked by git" for name in listed}
    evidence.attach("configuration files (config_repo.files)", status)
    wrong = {name: state for name, state in status.items() if state != "tracked"}
    expect(not wrong, f"configuration repository {config_repo.path}",
           expected=f"{', '.join(listed)} present and committed",
           found=", ".join(f"{name}: {state}" for name, state in wrong.items()))


def _kind_problems(name: str, documents: list) -> list[str]:
    """What is wrong with the kinds in ``name``, judged by the word its name contains (EXPECTED_KINDS)."""
    rule = next((rule for rule in EXPECTED_KINDS if rule[0] in Path(name).name.lower()), None)
    if rule is None:
        return []
    _, api_version, kind = rule
    if kind == repo_probe.HELM_VALUES:
        ok = len(documents) == 1 and repo_probe.document_kind(documents[0]) == kind
        return [] if ok else [f"{name}: expected one mapping of Helm values"]
    found = [(d.get("apiVersion"), d.get("kind")) for d in documents if isinstance(d, dict)]
    if (api_version, kind) in found:
        return []
    shown = ", ".join(f"{v}/{k}" for v, k in found) or "no Kubernetes object"
    return [f"{name}: expected {api_version} {kind}, holds {shown}"]


# Ensures each configuration file parses and holds what its name promises (KubermaticConfiguration, Seed, values).
@pytest.mark.requirement("CONFIG-003")
def test_config_files_parse_with_expected_kinds(config_repo: ConfigRepo, evidence: Evidence) -> None:
    present = config_repo.present or pytest.skip("none of the listed configuration files exists (see CONFIG-002)")
    problems, kinds = [], {}
    for name in present:
        try:
            documents = _documents(config_repo, name)
        except yaml.YAMLError as exc:
            problems.append(f"{name}: not valid YAML ({_yaml_problem(exc)})")
            continue
        kinds[name] = [repo_probe.document_kind(d) for d in documents]
        problems += _kind_problems(name, documents)
    evidence.attach("kinds per file", kinds)
    expect(not problems, f"configuration files in {config_repo.path}",
           expected="valid YAML with the expected apiVersion/kind", found="; ".join(problems))


def _protection(repo: ConfigRepo, name: str) -> repo_probe.Encryption:
    return repo_probe.git_crypt_state(repo.path, name)


# Ensures no secret of the installation is readable by whoever can read the repository (or its remote).
@pytest.mark.requirement("CONFIG-004")
def test_no_plain_text_secret(config_repo: ConfigRepo, evidence: Evidence) -> None:
    present = [name for name in config_repo.present if config_repo.tracked(name)]
    if not present:
        pytest.skip("no listed configuration file is committed (see CONFIG-002)")
    seen: dict[str, object] = {}
    findings = []
    for name in present:
        protection = _protection(config_repo, name)
        if protection.protected:
            seen[name] = "encrypted by git-crypt in HEAD"
            continue
        try:
            documents = _documents(config_repo, name)
        except yaml.YAMLError:
            seen[name] = "not parsed (invalid YAML, see CONFIG-003)"
            continue
        values = repo_probe.secret_values(name, documents)
        seen[name] = [value.to_dict() for value in values]
        reason = ("marked for git-crypt, but committed unencrypted" if protection.marked
                  else "not marked for git-crypt in .gitattributes")
        findings += [f"{value.file}: {value.path} ({reason})" for value in values if value.vault is None]
    evidence.attach("secret paths per file (values never shown)", seen)
    expect(not findings, f"secrets in configuration repository {config_repo.path}",
           expected="each value at a known secret path encrypted by git-crypt or a Vault reference",
           found="plain text at " + "; ".join(findings))


# Recommends a dedicated secret store, as the profile records it: git-crypt in use, or Vault references.
@pytest.mark.requirement("CONFIG-005")
def test_secrets_in_dedicated_store(config_repo: ConfigRepo, evidence: Evidence) -> None:
    store = config_repo.spec.secret_store
    subject = f"configuration repository {config_repo.path} (config_repo.secret_store: {store})"
    if store == "none":
        expect(False, subject, expected="secrets in git-crypt or Vault", found="the profile records no secret store")
    present = [name for name in config_repo.present if config_repo.tracked(name)]
    if store == "git-crypt":
        protected = [name for name in present if _protection(config_repo, name).protected]
        evidence.attach("files encrypted by git-crypt in HEAD", protected)
        expect(bool(protected), subject, expected="git-crypt set up: listed files encrypted in the committed blobs",
               found="no listed file is encrypted by git-crypt")
        return
    references = []
    for name in present:
        try:
            values = repo_probe.secret_values(name, _documents(config_repo, name))
        except yaml.YAMLError:
            continue
        references += [f"{value.file}: {value.path} ({value.vault})" for value in values if value.vault]
    evidence.attach("Vault references", references)
    expect(bool(references), subject, expected="secret values that are Vault references",
           found="no Vault reference at a known secret path")
