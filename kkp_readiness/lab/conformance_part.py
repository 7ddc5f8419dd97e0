"""The lab's conformance results: the tarball ``sonobuoy retrieve`` would have written for the lab cluster.

A real conformance run takes hours against a real cluster; PERF-007 only reads its results, so the
lab generates them: a Sonobuoy-shaped ``<timestamp>_sonobuoy_<uuid>.tar.gz`` holding
``plugins/e2e/results/global/junit_01.xml`` (ginkgo v2's junit as the e2e binary writes it, with
[Conformance] specs and the non-conformance specs a focused run skips), ``.../e2e.log`` (with the
e2e framework's ``kube-apiserver version:`` line), ``plugins/e2e/sonobuoy_results.yaml`` and
``serverversion.json``. The version is the one the lab's API server reports, so a healthy lab passes.

No daemon runs: the part's state is the tarball's path (``${lab:conformance.results}``). Faults edit
a :class:`ConformancePlan` (which specs failed or were skipped, which version was tested).
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from kkp_readiness.lab.kubeapi.cluster import Cluster
from kkp_readiness.lab.part import LabContext, Part

#: Fixed, so that the tarball does not depend on the clock (Sonobuoy names it after the run's start).
RUN_UUID = "5e2b0c1a-7d3f-4c8e-9a61-2f0b6d4e8c17"
RUN_TIMESTAMP = "202506011200"
RUN_MTIME = 1748779200  # 2025-06-01T12:00:00Z
RESULTS_DIR = "plugins/e2e/results/global"

#: Real [Conformance] specs of the Kubernetes e2e suite (a sample of the ~400 a full run has).
CONFORMANCE_SPECS = (
    "[sig-node] Pods should be submitted and removed [NodeConformance] [Conformance]",
    "[sig-node] Pods should get a host IP [NodeConformance] [Conformance]",
    "[sig-node] Container Runtime blackbox test on terminated container should report termination message from "
    "log output if TerminationMessagePolicy FallbackToLogsOnError is set [NodeConformance] [Conformance]",
    "[sig-node] Probing container should have monotonically increasing restart count [NodeConformance] "
    "[Conformance]",
    "[sig-node] ConfigMap should be consumable via environment variable [NodeConformance] [Conformance]",
    "[sig-node] Secrets should be consumable from pods in env vars [NodeConformance] [Conformance]",
    "[sig-node] Downward API should provide pod name, namespace and IP address as env vars [NodeConformance] "
    "[Conformance]",
    "[sig-node] Kubelet when scheduling a busybox command in a pod should print the output to logs "
    "[NodeConformance] [Conformance]",
    "[sig-apps] Deployment RollingUpdateDeployment should delete old pods and create new ones [Conformance]",
    "[sig-apps] Deployment deployment should support rollover [Conformance]",
    "[sig-apps] ReplicaSet should serve a basic image on each replica with a public image [Conformance]",
    "[sig-apps] ReplicationController should serve a basic image on each replica with a public image "
    "[Conformance]",
    "[sig-apps] StatefulSet Basic StatefulSet functionality [StatefulSetBasic] should perform rolling updates "
    "and roll backs of template modifications [Conformance]",
    "[sig-apps] Daemon set [Serial] should run and stop simple daemon [Conformance]",
    "[sig-apps] Job should run a job to completion when tasks sometimes fail and are locally restarted "
    "[Conformance]",
    "[sig-network] DNS should provide DNS for the cluster [Conformance]",
    "[sig-network] DNS should provide DNS for services [Conformance]",
    "[sig-network] Services should serve a basic endpoint from pods [Conformance]",
    "[sig-network] Services should be able to create a functioning NodePort service [Conformance]",
    "[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: http "
    "[NodeConformance] [Conformance]",
    "[sig-network] Networking Granular Checks: Pods should function for node-pod communication: udp [LinuxOnly] "
    "[NodeConformance] [Conformance]",
    "[sig-network] Proxy version v1 should proxy through a service and a pod [Conformance]",
    "[sig-network] EndpointSlice should create and delete Endpoints and EndpointSlices for a Service with a "
    "selector specified [Conformance]",
    "[sig-network] Ingress API should support creating Ingress API operations [Conformance]",
    "[sig-storage] EmptyDir volumes should support (root,0644,tmpfs) [LinuxOnly] [NodeConformance] [Conformance]",
    "[sig-storage] Projected configMap should be consumable from pods in volume [NodeConformance] [Conformance]",
    "[sig-storage] Secrets should be consumable from pods in volume with mappings [NodeConformance] [Conformance]",
    "[sig-storage] Downward API volume should provide container's cpu limit [NodeConformance] [Conformance]",
    "[sig-storage] Subpath Atomic writer volumes should support subpaths with configmap pod [Conformance]",
    "[sig-api-machinery] Namespaces [Serial] should ensure that all pods are removed when a namespace is deleted "
    "[Conformance]",
    "[sig-api-machinery] Garbage collector should delete pods created by rc when not orphaning [Conformance]",
    "[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] Simple "
    "CustomResourceDefinition creating/deleting custom resource definition objects works [Conformance]",
    "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should be able to deny pod and configmap "
    "creation [Conformance]",
    "[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a pod. [Conformance]",
    "[sig-api-machinery] Watchers should observe add, update, and delete watch notifications on configmaps "
    "[Conformance]",
    "[sig-auth] ServiceAccounts should mount an API token into pods [Conformance]",
    "[sig-auth] Certificates API [Privileged:ClusterAdmin] should support CSR API operations [Conformance]",
    "[sig-cli] Kubectl client Kubectl version should check is all data is printed [Conformance]",
    "[sig-cli] Kubectl client Guestbook application should create and stop a working application [Conformance]",
    "[sig-scheduling] SchedulerPredicates [Serial] validates resource limits of pods that are allowed to run "
    "[Conformance]",
    "[sig-scheduling] SchedulerPreemption [Serial] validates basic preemption works [Conformance]",
    "[sig-instrumentation] Events should manage the lifecycle of an event [Conformance]",
    "[sig-architecture] Conformance Tests should have at least two untainted nodes [Conformance]",
)
#: Specs of the same binary that a certified-conformance run (focus on [Conformance]) skips.
OTHER_SPECS = (
    "[sig-storage] CSI Volumes [Driver: csi-hostpath] [Testpattern: Dynamic PV (default fs)] provisioning should "
    "provision storage with snapshot data source [Feature:VolumeSnapshotDataSource]",
    "[sig-network] Services should be able to up and down services",
    "[sig-node] Pods Extended Pod Container lifecycle evicted pods should be terminal",
    "[sig-apps] Deployment should not disrupt a cloud load-balancer's connectivity during rollout",
    "[sig-cli] Kubectl client Simple pod should support exec through an HTTP proxy",
    "[sig-autoscaling] [Feature:HPA] Horizontal pod autoscaling (scale resource: CPU) [Serial] [Slow] Deployment "
    "(Pod Resource) Should scale from 1 pod to 3 pods and then from 3 pods to 5 pods using Average Value for "
    "aggregation",
)
#: What the faults pick (a node-local networking failure and a disruptive [Serial] spec left out).
FAILING_SPEC = CONFORMANCE_SPECS[20]
SKIPPED_SPEC = CONFORMANCE_SPECS[13]


def previous_minor(version: str) -> str:
    """``v1.31.4`` -> ``v1.30.8``: a release of the minor before (what an outdated run tested)."""
    major, minor = version.lstrip("v").split(".")[:2]
    return f"v{major}.{int(minor) - 1}.8"


@dataclass
class ConformancePlan:
    """What the results say; faults edit it before the tarball is written."""

    #: The API server version the run tested (the lab cluster's, unless a fault changes it).
    version: str
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def junit(self) -> str:
        """ginkgo v2's junit report as the e2e binary writes it (``--report-dir``)."""
        cases = []
        for name in CONFORMANCE_SPECS:
            if name in self.failed:
                cases.append(_case(name, "failed", "482.113",
                                   '<failure message="" type="failed">[FAILED] timed out waiting for the condition\n'
                                   "In [It] at: k8s.io/kubernetes/test/e2e/common/network/networking.go:106 "
                                   "@ 06/01/25 12:41:07.215\n</failure>"))
            elif name in self.skipped:
                cases.append(_case(name, "skipped", "0", '<skipped message="skipped"></skipped>'))
            else:
                cases.append(_case(name, "passed", "12.504"))
        cases += [_case(name, "skipped", "0", '<skipped message="skipped"></skipped>') for name in OTHER_SPECS]
        skipped = len(OTHER_SPECS) + len([n for n in CONFORMANCE_SPECS if n in self.skipped and n not in self.failed])
        total = len(CONFORMANCE_SPECS) + len(OTHER_SPECS)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'  <testsuites tests="{total}" disabled="0" errors="0" failures="{len(self.failed)}" time="3412.9">\n'
            f'      <testsuite name="Kubernetes e2e suite" package="/usr/local/bin" tests="{total}" disabled="0" '
            f'skipped="{skipped}" errors="0" failures="{len(self.failed)}" time="3412.9" '
            'timestamp="2025-06-01T12:00:31">\n'
            "          <properties>\n"
            f'              <property name="SuiteSucceeded" value="{str(not self.failed).lower()}"></property>\n'
            '              <property name="FocusStrings" value="\\[Conformance\\]"></property>\n'
            '              <property name="SkipStrings" value=""></property>\n'
            "          </properties>\n"
            + "".join(f"          {case}\n" for case in cases)
            + "      </testsuite>\n  </testsuites>\n"
        )

    def e2e_log(self) -> str:
        """The start of the e2e binary's log (klog lines of its set-up), then one line per spec."""
        lines = [
            "  I0601 12:00:31.072114      21 e2e.go:117] Starting e2e run \"0b7a4f6c-2d11-4f0e-8a57-5d6f1b2c9e03\" "
            "on Ginkgo node 1",
            "Running Suite: Kubernetes e2e suite - /usr/local/bin",
            "====================================================",
            f"Will run {len(CONFORMANCE_SPECS)} of {len(CONFORMANCE_SPECS) + len(OTHER_SPECS)} specs",
            "  I0601 12:00:31.358420      21 util.go:506] >>> kubeConfig: ",
            "  I0601 12:00:31.361187      21 helper.go:48] Waiting up to 30m0s for all (but 0) nodes to be schedulable",
            "  I0601 12:00:31.402775      21 e2e.go:142] Waiting up to 10m0s for all pods (need at least 0) in "
            "namespace 'kube-system' to be running and ready",
            f"  I0601 12:00:31.506311      21 e2e.go:245] e2e test version: {self.version}",
            f"  I0601 12:00:31.512940      21 e2e.go:254] kube-apiserver version: {self.version}",
        ]
        for name in CONFORMANCE_SPECS:
            word = "FAILED" if name in self.failed else "S [SKIPPED]" if name in self.skipped else "•"
            lines.append(f"{word} {name}")
        outcome = "FAIL!" if self.failed else "SUCCESS!"
        lines.append(f"Ran {len(CONFORMANCE_SPECS) - len(self.skipped)} of "
                     f"{len(CONFORMANCE_SPECS) + len(OTHER_SPECS)} Specs in 3412.905 seconds")
        lines.append(f"{outcome} -- {len(CONFORMANCE_SPECS) - len(self.failed) - len(self.skipped)} Passed | "
                     f"{len(self.failed)} Failed | 0 Pending | {len(OTHER_SPECS) + len(self.skipped)} Skipped")
        return "\n".join(lines) + "\n"

    def files(self) -> dict[str, bytes]:
        """The tarball's members, by path, as ``sonobuoy retrieve`` lays them out."""
        major, minor = self.version.lstrip("v").split(".")[:2]
        results = {"name": "e2e", "status": "failed" if self.failed else "passed", "meta": {"type": "summary"},
                   "items": [{"name": "global", "status": "failed" if self.failed else "passed"}]}
        version = {"major": major, "minor": minor, "gitVersion": self.version, "platform": "linux/amd64"}
        return {
            f"{RESULTS_DIR}/junit_01.xml": self.junit().encode(),
            f"{RESULTS_DIR}/e2e.log": self.e2e_log().encode(),
            "plugins/e2e/sonobuoy_results.yaml": json.dumps(results, indent=2).encode(),
            "serverversion.json": json.dumps(version).encode(),
            "meta/run.log": b'time="2025-06-01T12:00:00Z" level=info msg="Starting server Expected Results: '
                            b'[{global e2e}]"\n',
        }


def _case(name: str, status: str, time: str, body: str = "") -> str:
    return (f"<testcase name={quoteattr('[It] ' + name)} classname=\"Kubernetes e2e suite\" "
            f"status=\"{status}\" time=\"{time}\">{body}</testcase>")


def write_tarball(path: Path, files: dict[str, bytes]) -> Path:
    """A gzip'd tar of ``files`` with fixed owners and times, as Sonobuoy's aggregator writes it."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), RUN_MTIME, 0o644
            archive.addfile(info, io.BytesIO(data))
    return path


class ConformancePart(Part):
    """A Sonobuoy results tarball for the lab cluster's Kubernetes version (no daemon)."""

    name = "conformance"

    def start(self, ctx: LabContext) -> dict[str, Any]:
        version = ctx.states.get("kubeapi", {}).get("version") or Cluster.load().version
        plan = ConformancePlan(version=version)
        for fault in ctx.faults_for(self.name):
            fault.apply(plan)
        path = ctx.directory(self.name) / f"{RUN_TIMESTAMP}_sonobuoy_{RUN_UUID}.tar.gz"
        write_tarball(path, plan.files())
        self.state = {"results": str(path), "version": plan.version}
        return self.state

    def answering(self) -> bool:
        """The tarball is there (there is no daemon to ask)."""
        path = self.state.get("results")
        return bool(path) and Path(path).is_file()

    def healthy(self) -> bool:
        """No daemon: healthy while the lab has not been stopped and the tarball exists."""
        return self.answering()

    def stop(self) -> None:
        """Nothing runs; forget the state so that ``status`` reports a stopped lab as down."""
        self.state = {}
