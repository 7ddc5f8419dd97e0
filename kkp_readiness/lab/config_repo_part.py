"""The lab's configuration repository: a real git repository with git-crypt, as a KKP site keeps one.

An installation's configuration (KubermaticConfiguration, the Helm values of the installer, the Seed
manifests) is versioned in git and shared through a remote; its secrets are encrypted with git-crypt.
The CONFIG checks read such a repository, so the lab generates one at start: real ``git`` and real
``git-crypt`` (Debian packages), each called with a timeout, a HOME inside the lab directory and no
user or system git configuration, so that the result does not depend on the machine.

No daemon runs: the part's state is the path of the work tree (``${lab:config_repo.path}``). Faults
edit a :class:`ConfigRepoPlan` (files, which of them git-crypt encrypts, whether a remote exists)
before anything is written.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kkp_readiness.errors import LabError
from kkp_readiness.lab.part import LabContext, Part
from kkp_readiness.lab.topology import BASE_DOMAIN, SEED_NAME
from kkp_readiness.probes.config_repo import ConfigRepoError, git_environment, run_git

GIT_CRYPT = "/usr/bin/git-crypt"
#: Every secret value in the lab's repository starts with this, so tests can prove none reaches a report.
LAB_SECRET_MARKER = "lab-secret-7c1e9b"
KUBERMATIC_FILE = "kubermatic.yaml"
VALUES_FILE = "values.yaml"
SEED_FILE = "seed.yaml"
#: What the lab profile lists in config_repo.files.
CONFIG_FILES = (KUBERMATIC_FILE, VALUES_FILE, SEED_FILE)
#: Committed as in any repository; timestamps fixed so that the commit does not depend on the clock.
COMMIT_ENV = {f"GIT_{role}_{key}": value for role in ("AUTHOR", "COMMITTER")
              for key, value in (("NAME", "KKP lab"), ("EMAIL", "lab@kkp.lab"), ("DATE", "2025-06-01T12:00:00Z"))}


def _secret(purpose: str) -> str:
    return f"{LAB_SECRET_MARKER}-{purpose}"


def healthy_files() -> dict[str, str]:
    """The files of a healthy installation repository (shapes as in KKP's example configuration)."""
    kubermatic = f"""\
        apiVersion: kubermatic.k8c.io/v1
        kind: KubermaticConfiguration
        metadata:
          name: kubermatic
          namespace: kubermatic
        spec:
          ingress:
            domain: {BASE_DOMAIN}
            certificateIssuer:
              apiGroup: null
              kind: ClusterIssuer
              name: letsencrypt-prod
            className: nginx
          auth:
            issuerClientSecret: {_secret("issuer-client")}
            issuerCookieKey: {_secret("issuer-cookie")}
            serviceAccountKey: {_secret("service-account")}
        """
    values = f"""\
        dex:
          ingress:
            host: {BASE_DOMAIN}
          clients:
            - id: kubermaticIssuer
              name: KubermaticIssuer
              secret: {_secret("issuer-client")}
              RedirectURIs: [https://{BASE_DOMAIN}/api/v1/kubeconfig]
            - id: kubermatic
              name: Kubermatic
              secret: {_secret("dex-client")}
              RedirectURIs: [https://{BASE_DOMAIN}]
          staticPasswords:
            - email: admin@{BASE_DOMAIN}
              hash: "{_secret("bcrypt-hash")}"
              username: admin
              userID: 08a8684b-db88-4b73-90a9-3cd1661f5466
        minio:
          storeSize: 100Gi
          storageClass: kubermatic-backup
          credentials:
            accessKey: {_secret("minio-access")}
            secretKey: {_secret("minio-secret")}
        telemetry:
          uuid: 559a1b90-b5d0-40aa-a74d-bd9e808ec10f
        """
    seed = f"""\
        apiVersion: kubermatic.k8c.io/v1
        kind: Seed
        metadata:
          name: {SEED_NAME}
          namespace: kubermatic
        spec:
          country: DE
          location: Lab
          kubeconfig:
            name: kubeconfig-{SEED_NAME}
            namespace: kubermatic
            fieldPath: kubeconfig
          datacenters:
            lab-a:
              country: DE
              location: Lab A
              spec:
                vsphere:
                  endpoint: https://vcenter.{BASE_DOMAIN}
                  datacenter: lab
                  cluster: lab
        """
    return {name: textwrap.dedent(text) for name, text in
            ((KUBERMATIC_FILE, kubermatic), (VALUES_FILE, values), (SEED_FILE, seed))}


@dataclass
class ConfigRepoPlan:
    """What the repository holds; faults edit it before anything is written."""

    files: dict[str, str] = field(default_factory=healthy_files)
    #: Files .gitattributes marks for git-crypt (the ones that hold secrets).
    encrypted: list[str] = field(default_factory=lambda: [KUBERMATIC_FILE, VALUES_FILE])
    remote: bool = True

    def gitattributes(self) -> str:
        return "".join(f"{name} filter=git-crypt diff=git-crypt\n" for name in self.encrypted)


class ConfigRepoPart(Part):
    """A git work tree (``kkp-config``) with git-crypt and a bare ``origin`` next to it, pushed."""

    name = "config_repo"

    def start(self, ctx: LabContext) -> dict[str, Any]:
        if not Path(GIT_CRYPT).is_file() or shutil.which("git") is None:
            raise LabError(f"git and {GIT_CRYPT} are needed (apt-get install git git-crypt; see scripts/setup)")
        plan = ConfigRepoPlan()
        for fault in ctx.faults_for(self.name):
            fault.apply(plan)
        base = ctx.directory(self.name)
        work, origin, home = base / "kkp-config", base / "origin.git", base / "home"
        for directory in (work, origin, home):
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
        env = {**git_environment(home), **COMMIT_ENV}
        try:
            self._build(plan, work, origin, env)
        except (ConfigRepoError, subprocess.SubprocessError, OSError) as exc:
            raise LabError(f"cannot build the lab's configuration repository in {work}: {exc}") from exc
        self.state = {"path": str(work), "origin": str(origin) if plan.remote else None,
                      "files": list(CONFIG_FILES)}
        return self.state

    @staticmethod
    def _build(plan: ConfigRepoPlan, work: Path, origin: Path, env: dict[str, str]) -> None:
        """init, git-crypt init, write, commit, push: the order a site engineer follows."""
        run_git(work, "init", "-q", "-b", "main", env=env)
        subprocess.run([GIT_CRYPT, "init"], cwd=work, env=env, capture_output=True, timeout=30, check=True)
        (work / ".gitattributes").write_text(plan.gitattributes())
        for name, text in plan.files.items():
            (work / name).write_text(text)
        run_git(work, "add", "-A", env=env)
        run_git(work, "commit", "-q", "-m", "KKP installation configuration", env=env)
        if plan.remote:
            run_git(origin, "init", "-q", "--bare", "-b", "main", env=env)
            run_git(work, "remote", "add", "origin", str(origin), env=env)
            run_git(work, "push", "-q", "origin", "main", env=env)

    def answering(self) -> bool:
        """The work tree is a git repository with a commit (there is no daemon to ask)."""
        path = self.state.get("path")
        if not path or not Path(path).is_dir():
            return False
        return run_git(Path(path), "rev-parse", "--verify", "-q", "HEAD", check=False).returncode == 0

    def healthy(self) -> bool:
        """No daemon: healthy while the lab has not been stopped and the repository answers git."""
        try:
            return self.answering()
        except Exception:
            return False

    def stop(self) -> None:
        """Nothing runs; forget the state so that ``status`` reports a stopped lab as down."""
        self.state = {}
