"""The configuration repository probe: secret-path matching and git-crypt detection on small real repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kkp_readiness.lab.config_repo_part import COMMIT_ENV, GIT_CRYPT
from kkp_readiness.probes import config_repo as probe

VALUES = {
    "dex": {
        "clients": [{"id": "kkp", "secret": "s3cr3t"}, {"id": "vaulted", "secret": "ref+vault://kkp/dex#/secret"}],
        "staticPasswords": [{"email": "a@b", "hash": ""}],
    },
    "minio": {"credentials": {"accessKey": "vault:secret/data/minio#accessKey", "secretKey": "plain"}},
}


def test_values_at_expands_wildcards_over_lists_and_mappings() -> None:
    ids = [("dex.clients[0].id", "kkp"), ("dex.clients[1].id", "vaulted")]
    assert probe.values_at(VALUES, "dex.clients.*.id") == ids
    assert probe.values_at({"iap": {"deployments": {"grafana": {"client_secret": "x"}}}},
                           "iap.deployments.*.client_secret") == [("iap.deployments.grafana.client_secret", "x")]
    assert probe.values_at(VALUES, "dex.connectors.*.config.clientSecret") == []
    assert probe.values_at(["not", "a", "mapping"], "dex.clients") == []


def test_secret_values_name_paths_and_vault_references_never_values() -> None:
    found = {value.path: value.vault for value in probe.secret_values("values.yaml", [VALUES])}
    assert found == {
        "dex.clients[0].secret": None,
        "dex.clients[1].secret": "vals (helmfile)",
        "minio.credentials.accessKey": "Bank-Vaults mutating webhook",
        "minio.credentials.secretKey": None,
    }  # the empty hash is no secret
    assert all("s3cr3t" not in str(v.to_dict()) for v in probe.secret_values("values.yaml", [VALUES]))


def test_secret_paths_depend_on_the_kind_of_document() -> None:
    config = {"apiVersion": "kubermatic.k8c.io/v1", "kind": "KubermaticConfiguration",
              "spec": {"auth": {"issuerCookieKey": "k", "serviceAccountKey": "<path:kv/data/kkp#sa>"}}}
    seed = {"apiVersion": "kubermatic.k8c.io/v1", "kind": "Seed", "spec": {"auth": {"issuerCookieKey": "k"}}}
    found = probe.secret_values("all.yaml", [config, seed])
    assert [(v.path, v.kind, v.vault) for v in found] == [
        ("[document 0] spec.auth.issuerCookieKey", "KubermaticConfiguration", None),
        ("[document 0] spec.auth.serviceAccountKey", "KubermaticConfiguration", "Argo CD Vault Plugin"),
    ]


def test_every_secret_path_and_reference_form_cites_its_documentation() -> None:
    paths, references = probe.secret_catalogue()
    assert paths
    assert references
    assert all(entry.docs.startswith("https://") for entry in (*paths, *references))
    assert {entry.applies_to for entry in paths} == {"KubermaticConfiguration", probe.HELM_VALUES}


def _git(repo: Path, *args: str) -> None:
    probe.run_git(repo, *args, env={**probe.git_environment(repo.parent / "home"), **COMMIT_ENV})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git-crypt repository: secret.yaml marked for git-crypt, plain.yaml not; both committed."""
    if not Path(GIT_CRYPT).is_file():
        pytest.skip("git-crypt is not installed (scripts/setup installs it)")
    work = tmp_path / "repo"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    subprocess.run([GIT_CRYPT, "init"], cwd=work, env=probe.git_environment(tmp_path / "home"), check=True,
                   capture_output=True, timeout=30)
    (work / ".gitattributes").write_text("secret.yaml filter=git-crypt diff=git-crypt\n")
    (work / "secret.yaml").write_text("a: 1\n")
    (work / "plain.yaml").write_text("b: 2\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "init")
    return work


def test_git_crypt_detection_reads_the_committed_blob(repo: Path) -> None:
    assert probe.git_crypt_state(repo, "secret.yaml") == probe.Encryption("secret.yaml", True, True)
    assert probe.git_crypt_state(repo, "plain.yaml") == probe.Encryption("plain.yaml", False, False)
    assert not probe.work_tree_locked(repo / "secret.yaml")  # the clone that ran git-crypt init is unlocked


def test_marking_a_file_after_committing_it_does_not_encrypt_the_commit(repo: Path) -> None:
    (repo / ".gitattributes").write_text("secret.yaml filter=git-crypt diff=git-crypt\n"
                                         "plain.yaml filter=git-crypt diff=git-crypt\n")
    _git(repo, "add", ".gitattributes")  # plain.yaml itself is unchanged: its committed blob stays plain text
    _git(repo, "commit", "-q", "-m", "mark plain.yaml too late")
    state = probe.git_crypt_state(repo, "plain.yaml")
    assert (state.marked, state.encrypted_in_head, state.protected) == (True, False, False)


def test_read_repo_lists_tracked_files_and_hides_remote_credentials(repo: Path, tmp_path: Path) -> None:
    _git(repo, "remote", "add", "origin", "https://user:t0ken@git.example.com/kkp.git")
    facts = probe.read_repo(repo)
    assert facts.work_tree
    assert facts.head
    assert facts.tracked == {".gitattributes", "secret.yaml", "plain.yaml"}
    assert facts.remotes == {"origin": "https://***@git.example.com/kkp.git"}
    plain_dir = tmp_path / "not-a-repo"
    plain_dir.mkdir()
    assert not probe.read_repo(plain_dir).work_tree
    with pytest.raises(probe.ConfigRepoError, match="not a directory"):
        probe.read_repo(tmp_path / "missing")
