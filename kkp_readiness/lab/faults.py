"""Named faults the lab can be started with, and which requirements each one must break.

Every fault is one realistic mistake of a site (a missing wildcard record, a certificate without
one name, a server that sends no intermediate, ...). The integration tests start the lab with
each fault and assert that exactly the requirements in ``breaks`` fail, which proves that the
checks notice the mistake and blame the right requirement.

A fault edits the plan of its part (``DnsPlan``, ``TlsPlan`` or ``KubePlan``) before the part writes its
configuration. ``touches`` names what it edits; two faults that edit the same thing cannot be
combined (the second would silently undo the first), everything else can.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from kkp_readiness.errors import LabError
from kkp_readiness.kkp_facts import KKP_NAMESPACE
from kkp_readiness.lab.bastion_part import BastionPlan
from kkp_readiness.lab.config_repo_part import SEED_FILE, VALUES_FILE, ConfigRepoPlan
from kkp_readiness.lab.conformance_part import FAILING_SPEC, SKIPPED_SPEC, ConformancePlan, previous_minor
from kkp_readiness.lab.dns_part import DnsPlan
from kkp_readiness.lab.egress_part import EgressPlan
from kkp_readiness.lab.ingress_part import LeafSpec, ServerBlock, TlsPlan
from kkp_readiness.lab.kubeapi.cluster import INSTALLATION_FIXTURE, RESTRICTED, Cluster, KubePlan
from kkp_readiness.lab.perf_part import PerfPlan
from kkp_readiness.lab.topology import (
    BASE_DOMAIN,
    INGRESS_ADDRESS,
    INGRESS_NAMES,
    OIDC_PROVIDER_NAME,
    OIDC_REALM_PATH,
    SEED_DOMAIN,
    SEED_NAME,
    WRONG_ADDRESS,
)


def _no_change(plan: Any) -> None:
    """Placeholder for faults built without an ``apply`` (never in ``FAULTS``)."""


@dataclass(frozen=True)
class Fault:
    """A named, documented way to break one part of the lab."""

    name: str
    #: The part whose plan the fault edits: "dns", "ingress" or "kubeapi".
    part: str
    #: One sentence, shown by ``lab up --help`` and in the docs.
    description: str
    #: Requirement ids that must FAIL when the lab runs with this fault.
    breaks: tuple[str, ...] = ()
    #: Requirement ids that must WARN (not fail) with this fault.
    warns: tuple[str, ...] = ()
    #: What the fault changes; faults touching the same thing cannot be combined.
    touches: tuple[str, ...] = ()
    #: Profile overrides (on top of the lab profile) under which the broken requirements apply at all,
    #: e.g. the ACME issuer faults with ``certificates.source: cert-manager-acme``; empty: the lab profile.
    shown_with: dict[str, Any] = field(default_factory=dict, compare=False)
    apply: Callable[[Any], None] = field(default=_no_change, repr=False, compare=False)


# --- DNS ------------------------------------------------------------------------------------------


def _missing_wildcard(plan: DnsPlan) -> None:
    # Explicit records replace the wildcard for the names a site would typically have created
    # by hand; setdefault keeps an explicit record another fault set (dns-servers-disagree).
    for data in plan.servers():
        data.wildcards[BASE_DOMAIN] = None
        for name in (BASE_DOMAIN, *INGRESS_NAMES):
            data.hosts.setdefault(name, INGRESS_ADDRESS)


def _missing_seed_wildcard(plan: DnsPlan) -> None:
    for data in plan.servers():
        data.wildcards[SEED_DOMAIN] = None


def _wrong_address(plan: DnsPlan) -> None:
    for data in plan.servers():
        data.wildcards[SEED_DOMAIN] = WRONG_ADDRESS


def _servers_disagree(plan: DnsPlan) -> None:
    plan.secondary.hosts[f"prometheus.{BASE_DOMAIN}"] = WRONG_ADDRESS


def _no_soa(plan: DnsPlan) -> None:
    # Every address record stays: only the zone (SOA, NS) is missing, as on a forwarder with overrides.
    plan.secondary.zone = False


# --- certificates ---------------------------------------------------------------------------------


def _missing_name(plan: TlsPlan) -> None:
    plan.default.leaf.names = (BASE_DOMAIN, f"grafana.{BASE_DOMAIN}", f"prometheus.{BASE_DOMAIN}")


def _expired(plan: TlsPlan) -> None:
    plan.default.leaf.valid_from = dt.timedelta(days=-400)
    plan.default.leaf.valid_until = dt.timedelta(days=-10)


def _expiring_soon(plan: TlsPlan) -> None:
    plan.default.leaf.valid_until = dt.timedelta(days=10)


def _untrusted_ca(plan: TlsPlan) -> None:
    plan.default.leaf.issuer = "unrelated"


def _incomplete_chain(plan: TlsPlan) -> None:
    plan.default.full_chain = False


def _split(plan: TlsPlan) -> None:
    name = f"grafana.{BASE_DOMAIN}"
    plan.extra.append(ServerBlock(server_name=name, leaf=LeafSpec(names=(name,))))


def _weak_key(plan: TlsPlan) -> None:
    plan.default.leaf.key_size = 1024
    plan.allow_weak_keys = True


# --- identity providers (the OpenID Connect documents the ingress serves) ------------------------

#: The profile overrides under which the own-provider faults show: the lab profile logs in through Dex, where
#: AUTH-004 and AUTH-005 do not apply; this variant uses the lab's own provider sso.kkp.lab instead.
OIDC_PROFILE: dict[str, Any] = {
    "auth": {"provider": "oidc", "oidc_issuer": f"https://{OIDC_PROVIDER_NAME}:${{lab:ingress.https_port}}{OIDC_REALM_PATH}"}
}


def _dex_issuer_mismatch(plan: TlsPlan) -> None:
    plan.identity.dex_issuer += "/"


def _oidc_issuer_mismatch(plan: TlsPlan) -> None:
    plan.identity.provider_issuer = plan.identity.provider_issuer.replace("https://", "http://", 1)


def _oidc_no_signing_keys(plan: TlsPlan) -> None:
    plan.identity.provider_key_uses = tuple(use for use in plan.identity.provider_key_uses if use != "sig")


# --- Kubernetes API -------------------------------------------------------------------------------

OLD_KUBERNETES_VERSION = "v1.27.16"
#: kubeadm's default hard eviction threshold: allocatable memory is capacity minus 100Mi.
EVICTION_RESERVE_KI = 100 * 1024


def _node_labels(node: dict[str, Any]) -> dict[str, str]:
    return node.setdefault("metadata", {}).setdefault("labels", {})


def _node_not_ready(plan: KubePlan) -> None:
    node = plan.cluster.find("Node", "worker-2")
    for condition in node["status"]["conditions"]:
        if condition["type"] == "Ready":
            condition.update(
                status="False",
                reason="KubeletNotReady",
                message="container runtime network not ready: NetworkReady=false "
                "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
            )
    node["spec"]["taints"] = [
        {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute", "timeAdded": "2025-06-09T07:55:00Z"},
    ]


def _cni_not_ready(plan: KubePlan) -> None:
    """Cilium's agent on worker-3 crash-loops: the DaemonSet has 5 of 6 pods ready (the node stays Ready)."""
    cilium = plan.cluster.find("DaemonSet", "cilium", "kube-system")
    cilium["status"]["numberReady"] -= 1
    cilium["status"]["numberAvailable"] = cilium["status"].get("numberAvailable", 1) - 1
    cilium["status"]["numberUnavailable"] = 1
    for pod in plan.cluster.of_kind("Pod"):
        if pod.get("metadata", {}).get("labels", {}).get("k8s-app") == "cilium" \
                and pod.get("spec", {}).get("nodeName") == "worker-3":
            for status in pod.get("status", {}).get("containerStatuses") or []:
                status.update(ready=False, restartCount=17,
                              state={"waiting": {"reason": "CrashLoopBackOff"}})


def _two_control_planes(plan: KubePlan) -> None:
    cluster = plan.cluster
    cluster.remove("Node", "cp-3")
    # Its static pods (etcd, kube-apiserver, ...) and DaemonSet pods went with it.
    cluster.remove_where(lambda o: o["kind"] == "Pod" and o.get("spec", {}).get("nodeName") == "cp-3")
    endpoints = cluster.find("Endpoints", "kubernetes", "default")
    for subset in endpoints["subsets"]:
        subset["addresses"] = [a for a in subset["addresses"] if a["ip"] != "127.0.1.3"]
    for daemonset in cluster.of_kind("DaemonSet"):
        status = daemonset["status"]
        for key in (
            "currentNumberScheduled",
            "desiredNumberScheduled",
            "numberAvailable",
            "numberReady",
            "updatedNumberScheduled",
        ):
            status[key] -= 1


def _single_zone(plan: KubePlan) -> None:
    for node in plan.cluster.of_kind("Node"):
        _node_labels(node)["topology.kubernetes.io/zone"] = "lab-a"


def _old_version(plan: KubePlan) -> None:
    healthy = plan.cluster.version
    plan.cluster.version = OLD_KUBERNETES_VERSION
    for node in plan.cluster.of_kind("Node"):
        info = node["status"]["nodeInfo"]
        info["kubeletVersion"] = info["kubeProxyVersion"] = OLD_KUBERNETES_VERSION
    for pod in plan.cluster.of_kind("Pod"):
        for container in pod["spec"]["containers"] + pod["status"].get("containerStatuses", []):
            if container.get("image", "").endswith(f":{healthy}"):
                container["image"] = container["image"].replace(f":{healthy}", f":{OLD_KUBERNETES_VERSION}")


def _small_nodes(plan: KubePlan) -> None:
    # Below KKP's documented minimum for master/seed nodes (2 CPUs, 4 GB), not just at it: a node
    # of exactly 2 CPUs and 4 GiB meets the minimum and must pass.
    memory_ki = 2 * 1024 * 1024  # 2Gi
    for node in plan.cluster.of_kind("Node"):
        status = node["status"]
        status["capacity"].update(cpu="1", memory=f"{memory_ki}Ki")
        status["allocatable"].update(cpu="1", memory=f"{memory_ki - EVICTION_RESERVE_KI}Ki")
        _node_labels(node)["node.kubernetes.io/instance-type"] = "lab-1c2g"


def _no_fast_class(plan: KubePlan) -> None:
    plan.cluster.remove("StorageClass", "kubermatic-fast")


def _hdd_fast_class(plan: KubePlan) -> None:
    plan.cluster.find("StorageClass", "kubermatic-fast")["parameters"] = {"storagepolicyname": "kkp-hdd"}


def _immediate_binding(plan: KubePlan) -> None:
    plan.cluster.find("StorageClass", "kubermatic-fast")["volumeBindingMode"] = "Immediate"


def _no_expansion(plan: KubePlan) -> None:
    plan.cluster.find("StorageClass", "kubermatic-fast")["allowVolumeExpansion"] = False


def _no_default_class(plan: KubePlan) -> None:
    for sc in plan.cluster.of_kind("StorageClass"):
        sc.get("metadata", {}).get("annotations", {}).pop("storageclass.kubernetes.io/is-default-class", None)


def _no_backup_class(plan: KubePlan) -> None:
    plan.cluster.remove("StorageClass", "kubermatic-backup")


def _unreachable(plan: KubePlan) -> None:
    plan.serve = False


def _forbidden_storageclasses(plan: KubePlan) -> None:
    plan.kubeconfig_token = RESTRICTED


def _lb_controller_off(plan: KubePlan) -> None:
    plan.cluster.controllers["load_balancer"] = False


def _binder_off(plan: KubePlan) -> None:
    plan.cluster.controllers["volume_binder"] = False


# --- load balancing and expose strategy (the MetalLB objects of healthy.yaml) ----------------------

METALLB_NAMESPACE = "metallb-system"
#: The healthy pool (IPAddressPool kkp and the simulated controller's pool): ingress .10, nodeport-proxy .11.
HEALTHY_POOL = "127.0.0.10-127.0.0.20"
#: A second range that reaches into the node network 127.0.1.0/24 (worker-2 is 127.0.1.5, worker-3 127.0.1.6).
NODE_RANGE_POOL = "127.0.1.5-127.0.1.20"
#: What the NGINX ingress Service shows in kube-ingress-ip-mismatch: in the pool, not in DNS or the profile.
MISMATCHED_INGRESS_ADDRESS = "127.0.0.12"


def _metallb_pool(plan: KubePlan) -> dict[str, Any]:
    return plan.cluster.find("IPAddressPool", "kkp", METALLB_NAMESPACE)


def _small_lb_pool(plan: KubePlan) -> None:
    # One address, already the ingress's: KKP's two Services and no workload fit, a new Service stays pending.
    _metallb_pool(plan)["spec"]["addresses"] = ["127.0.0.10/32"]
    plan.cluster.lb_pool = ["127.0.0.10/32"]


def _pool_overlaps_nodes(plan: KubePlan) -> None:
    # The ingress and nodeport-proxy addresses stay in the pool; the extra range takes node addresses.
    _metallb_pool(plan)["spec"]["addresses"] = [HEALTHY_POOL, NODE_RANGE_POOL]
    plan.cluster.lb_pool = [HEALTHY_POOL, NODE_RANGE_POOL]


def _l2_announcement(plan: KubePlan) -> None:
    plan.cluster.objects.append({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "L2Advertisement",
        "metadata": {"name": "kkp-l2", "namespace": METALLB_NAMESPACE},
        "spec": {"ipAddressPools": ["kkp"]},
    })


def _no_bgp_peer(plan: KubePlan) -> None:
    plan.cluster.remove("BGPPeer", "router", METALLB_NAMESPACE)


def _ingress_ip_mismatch(plan: KubePlan) -> None:
    service = plan.cluster.find("Service", "nginx-ingress-controller", "nginx-ingress-controller")
    service["status"]["loadBalancer"]["ingress"] = [{"ip": MISMATCHED_INGRESS_ADDRESS, "ipMode": "VIP"}]


def _nodeport_proxy_pending(plan: KubePlan) -> None:
    plan.cluster.find("Service", "nodeport-proxy", "kubermatic")["status"] = {"loadBalancer": {}}


def _no_metallb(plan: KubePlan) -> None:
    """MetalLB was never installed: no namespace, workloads, CRDs or objects, and nothing assigns addresses."""
    cluster = plan.cluster

    def metallb(obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata", {})
        return (meta.get("namespace") == METALLB_NAMESPACE
                or (obj.get("kind") == "Namespace" and meta.get("name") == METALLB_NAMESPACE)
                or str(obj.get("apiVersion", "")).startswith("metallb.io/"))

    cluster.remove_where(metallb)
    cluster.resources = [r for r in cluster.resources if not r.api_version.startswith("metallb.io/")]
    cluster.controllers["load_balancer"] = False


def _seed_tunneling(plan: KubePlan) -> None:
    plan.cluster.find("Seed", SEED_NAME, KKP_NAMESPACE)["spec"]["exposeStrategy"] = "Tunneling"


# --- what the KKP installer deployed (kkp-installation.yaml) --------------------------------------

#: The profile overrides under which the ACME issuer faults show (the lab profile uses its own CA).
ACME_PROFILE: dict[str, Any] = {"certificates": {"source": "cert-manager-acme"}}
USER_CLUSTER_NAMESPACE = "cluster-lab7x2kq9"


def _not_ready(workload: dict[str, Any], ready: int = 0) -> None:
    status = workload["status"]
    status.update(readyReplicas=ready, availableReplicas=ready)
    status["unavailableReplicas"] = int(status.get("replicas", 1)) - ready


def _csi_driver_missing(plan: KubePlan) -> None:
    """The vSphere CSI driver was never deployed: no CSIDriver, no node registrations, no controller."""
    cluster = plan.cluster
    cluster.remove("CSIDriver", "csi.vsphere.vmware.com")
    for csi_node in cluster.of_kind("CSINode"):
        csi_node["spec"]["drivers"] = []
    cluster.remove_where(lambda o: o.get("kind") in ("Deployment", "ReplicaSet", "Pod")
                         and o["metadata"]["name"].startswith("vsphere-csi-controller"))
    cluster.controllers["volume_binder"] = False


def _no_backup_destination(plan: KubePlan) -> None:
    del plan.cluster.find("Seed", SEED_NAME, KKP_NAMESPACE)["spec"]["etcdBackupRestore"]


def _backup_store_down(plan: KubePlan) -> None:
    _not_ready(plan.cluster.find("Deployment", "minio", "minio"))
    claim = plan.cluster.find("PersistentVolumeClaim", "minio-data", "minio")
    claim["status"] = {"phase": "Pending"}


def _etcd_on_default_class(plan: KubePlan) -> None:
    claim = plan.cluster.find("PersistentVolumeClaim", "data-etcd-1", USER_CLUSTER_NAMESPACE)
    claim["spec"]["storageClassName"] = "standard"


def _prometheus_without_class(plan: KubePlan) -> None:
    del plan.cluster.find("PersistentVolumeClaim", "db-prometheus-0", "monitoring")["spec"]["storageClassName"]


def _issuer_not_ready(plan: KubePlan) -> None:
    issuer = plan.cluster.find("ClusterIssuer", "letsencrypt-prod")
    issuer["status"] = {"conditions": [{
        "type": "Ready", "status": "False", "reason": "ErrRegisterACMEAccount",
        "message": "Failed to register ACME account: Get \"https://acme-v02.api.letsencrypt.org/directory\": "
                   "dial tcp: lookup acme-v02.api.letsencrypt.org: i/o timeout",
        "lastTransitionTime": "2025-06-02T08:05:00Z", "observedGeneration": 1}]}


def _acme_http01(plan: KubePlan) -> None:
    acme = plan.cluster.find("ClusterIssuer", "letsencrypt-prod")["spec"]["acme"]
    acme["solvers"] = [{"http01": {"ingress": {"ingressClassName": "nginx"}}}]


def _ca_bundle_unrelated(plan: KubePlan) -> None:
    plan.kkp_ca_bundle = "unrelated"


def _dex_not_ready(plan: KubePlan) -> None:
    _not_ready(plan.cluster.find("Deployment", "dex", "dex"))


def _dex_without_connector(plan: KubePlan) -> None:
    secret = plan.cluster.find("Secret", "dex", "dex")
    config = yaml.safe_load(base64.b64decode(secret["data"]["config.yaml"]))
    config["connectors"] = []
    config["enablePasswordDB"] = False
    secret["data"]["config.yaml"] = base64.b64encode(yaml.safe_dump(config).encode()).decode()


def _not_kubeone(plan: KubePlan) -> None:
    for node in plan.cluster.of_kind("Node"):
        _node_labels(node).pop("v1.kubeone.io/operating-system", None)


def _unsupported_os(plan: KubePlan) -> None:
    plan.cluster.find("Node", "worker-1")["status"]["nodeInfo"]["osImage"] = "CentOS Linux 7 (Core)"


def _kkp_not_installed(plan: KubePlan) -> None:
    """The cluster as handed over for the installation: nothing of kkp-installation.yaml in it."""
    installed = Cluster.read_fixture(INSTALLATION_FIXTURE)
    ours = {_identity(o) for o in installed.get("objects") or ()}
    plan.cluster.remove_where(lambda o: _identity(o) in ours)
    kinds = {(r["apiVersion"], r["kind"]) for r in installed.get("resources") or ()}
    plan.cluster.resources = [r for r in plan.cluster.resources if (r.api_version, r.kind) not in kinds]


def _identity(obj: dict[str, Any]) -> tuple[str, str | None, str]:
    meta = obj.get("metadata") or {}
    return obj.get("kind", ""), meta.get("namespace"), meta.get("name", "")


def _mla_node_untainted(plan: KubePlan) -> None:
    plan.cluster.find("Node", "worker-3")["spec"].pop("taints", None)


# --- the configuration repository (a git repository with git-crypt) --------------------------------


def _config_plaintext_secret(plan: ConfigRepoPlan) -> None:
    """values.yaml is not marked for git-crypt, so its secrets are committed (and pushed) in plain text."""
    plan.encrypted.remove(VALUES_FILE)


def _config_missing_file(plan: ConfigRepoPlan) -> None:
    del plan.files[SEED_FILE]


def _config_no_remote(plan: ConfigRepoPlan) -> None:
    plan.remote = False


def _config_invalid_yaml(plan: ConfigRepoPlan) -> None:
    """A merge conflict committed unresolved: the markers make the Seed manifest invalid YAML."""
    plan.files[SEED_FILE] = plan.files[SEED_FILE].replace(
        "  location: Lab\n", "<<<<<<< HEAD\n  location: Lab\n=======\n  location: Lab 2\n>>>>>>> update-location\n", 1)


# --- bastion (the lab's sshd, see bastion_part.py) ------------------------------------------------


def _bastion_unknown_host_key(plan: BastionPlan) -> None:
    plan.present_other_host_key = True


def _bastion_wrong_user_key(plan: BastionPlan) -> None:
    plan.authorize_other_key = True


def _bastion_helm_missing(plan: BastionPlan) -> None:
    plan.remove_tool("helm")


def _bastion_terraform_too_old(plan: BastionPlan) -> None:
    plan.stand_ins["terraform"] = "Terraform v0.12.31\non linux_amd64"


def _bastion_fubectl_missing(plan: BastionPlan) -> None:
    plan.remove_tool("fubectl")


def _node_ssh_closed(plan: BastionPlan) -> None:
    plan.start_node = False


def _bastion_dns_tcp_blocked(plan: BastionPlan) -> None:
    plan.dns_tcp_blocked = True


#: What ``sudo -n`` prints when the user's sudoers entry lacks NOPASSWD (sudo 1.9).
SUDO_NEEDS_PASSWORD = "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n"


def _node_sudo_password(plan: BastionPlan) -> None:
    plan.node_commands["sudo"] = SUDO_NEEDS_PASSWORD


def _ingress_http_closed(plan: TlsPlan) -> None:
    """NGINX serves HTTPS only: the published HTTP port of the ingress address is closed (ACCESS-007)."""
    plan.http_listener = False


_ALL = (
    Fault(
        "dns-missing-wildcard",
        "dns",
        "Both DNS servers lack the *.kkp.lab wildcard; only kkp.lab and the grafana, prometheus and "
        "alertmanager names have explicit records.",
        breaks=("DNS-003",),
        touches=("dns:*.kkp.lab",),
        apply=_missing_wildcard,
    ),
    Fault(
        "dns-missing-seed-wildcard",
        "dns",
        "Both DNS servers lack the *.seed.kkp.lab wildcard, so seed names other than the explicit "
        "MLA ones are NXDOMAIN.",
        breaks=("DNS-004",),
        touches=("dns:*.seed.kkp.lab",),
        apply=_missing_seed_wildcard,
    ),
    Fault(
        "dns-wrong-address",
        "dns",
        "The *.seed.kkp.lab wildcard points at 127.0.0.99 instead of the nodeport proxy 127.0.0.11.",
        breaks=("DNS-004",),
        touches=("dns:*.seed.kkp.lab",),
        apply=_wrong_address,
    ),
    Fault(
        "dns-servers-disagree",
        "dns",
        "The secondary DNS server answers 127.0.0.99 for prometheus.kkp.lab while the primary is healthy.",
        breaks=("DNS-002", "DNS-006"),
        touches=("dns:secondary:prometheus.kkp.lab",),
        apply=_servers_disagree,
    ),
    Fault(
        "dns-no-soa",
        "dns",
        "The secondary DNS server answers every kkp.lab name but serves no SOA or NS record for the zone.",
        breaks=("INFRA-008",),
        touches=("dns:secondary:zone",),
        apply=_no_soa,
    ),
    Fault(
        "cert-missing-name",
        "ingress",
        "The ingress certificate names only kkp.lab, grafana.kkp.lab and prometheus.kkp.lab "
        "(no wildcard, no alertmanager).",
        breaks=("CERT-002",),
        touches=("cert:names",),
        apply=_missing_name,
    ),
    Fault(
        "cert-expired",
        "ingress",
        "The ingress certificate expired 10 days ago.",
        breaks=("CERT-004", "AUTH-003"),  # Dex under kkp.lab/dex is served with it: no verified HTTPS
        warns=("CERT-005",),  # no validity left is also below the renewal window
        touches=("cert:validity",),
        apply=_expired,
    ),
    Fault(
        "cert-expiring-soon",
        "ingress",
        "The ingress certificate expires in 10 days (a warning for CERT-005, not a failure).",
        breaks=(),
        warns=("CERT-005",),
        touches=("cert:validity",),
        apply=_expiring_soon,
    ),
    Fault(
        "cert-untrusted-ca",
        "ingress",
        "The ingress certificate and its intermediate come from an unrelated root CA that is not "
        "in the CA bundle.",
        # Dex under kkp.lab/dex is served with it (no verified HTTPS), and KKP's CA bundle does not anchor it.
        breaks=("CERT-001", "CERT-103", "AUTH-003"),
        touches=("cert:issuer",),
        apply=_untrusted_ca,
    ),
    Fault(
        "cert-incomplete-chain",
        "ingress",
        "The ingress sends its certificate without the intermediate CA.",
        breaks=("CERT-006",),
        touches=("cert:chain",),
        apply=_incomplete_chain,
    ),
    Fault(
        "cert-split",
        "ingress",
        "grafana.kkp.lab gets its own valid certificate (SAN grafana.kkp.lab only) while every other "
        "name gets the shared one.",
        breaks=("CERT-003",),
        touches=("cert:grafana-server",),
        apply=_split,
    ),
    Fault(
        "cert-weak-key",
        "ingress",
        "The ingress certificate has a 1024-bit RSA key.",
        breaks=("CERT-007", "AUTH-003"),  # a client's default security level rejects it, for Dex too
        touches=("cert:key",),
        apply=_weak_key,
    ),
    Fault(
        "dex-issuer-mismatch",
        "ingress",
        "Dex's discovery document under kkp.lab/dex declares its issuer with a trailing slash "
        "(https://kkp.lab:<port>/dex/), unlike the issuer KKP uses.",
        breaks=("AUTH-003",),
        touches=("oidc:dex-issuer",),
        apply=_dex_issuer_mismatch,
    ),
    Fault(
        "oidc-issuer-mismatch",
        "ingress",
        "The own OIDC provider sso.kkp.lab declares the issuer http://sso.kkp.lab:<port>/realms/kkp (a "
        "proxy that hides https) while its endpoints and KKP use https.",
        breaks=("AUTH-004",),
        touches=("oidc:provider-issuer",),
        shown_with=OIDC_PROFILE,
        apply=_oidc_issuer_mismatch,
    ),
    Fault(
        "oidc-no-signing-keys",
        "ingress",
        "The own OIDC provider's JWK set holds only its encryption key (use enc): no key to verify ID "
        "tokens with.",
        breaks=("AUTH-005",),
        touches=("oidc:provider-keys",),
        shown_with=OIDC_PROFILE,
        apply=_oidc_no_signing_keys,
    ),
    Fault(
        "kube-node-not-ready",
        "kubeapi",
        "Node worker-2 reports Ready=False (KubeletNotReady) and carries the not-ready taints.",
        breaks=("INFRA-003",),
        touches=("kube:node-ready:worker-2",),
        apply=_node_not_ready,
    ),
    Fault(
        "kube-cni-not-ready",
        "kubeapi",
        "Cilium's agent on worker-3 crash-loops: the cilium DaemonSet has 5 of 6 pods ready.",
        breaks=("INFRA-004",),
        touches=("kube:cni-ready",),
        apply=_cni_not_ready,
    ),
    Fault(
        "kube-two-control-planes",
        "kubeapi",
        "Control-plane node cp-3 is gone, with its etcd and other pods: two control-plane nodes and "
        "two etcd members remain.",
        breaks=("INFRA-002",),
        warns=(),
        touches=("kube:control-plane-nodes",),
        apply=_two_control_planes,
    ),
    Fault(
        "kube-single-zone",
        "kubeapi",
        "Every node, control plane and workers, is labelled with the same zone lab-a.",
        breaks=(),
        warns=("INFRA-001",),
        touches=("kube:node-zones",),
        apply=_single_zone,
    ),
    Fault(
        "kube-old-version",
        "kubeapi",
        "The API server (/version) and every kubelet run Kubernetes v1.27.16.",
        breaks=("INFRA-005",),
        touches=("kube:version",),
        apply=_old_version,
    ),
    Fault(
        "kube-small-nodes",
        "kubeapi",
        "Every node has a capacity of 1 CPU and 2 GiB of memory, below KKP's documented minimum of 2 CPUs "
        "and 4 GB (and below the medium etcd class's 4 CPUs and 15 GiB for the control plane).",
        breaks=("INFRA-006", "PERF-006"),
        touches=("kube:node-capacity",),
        apply=_small_nodes,
    ),
    Fault(
        "kube-no-fast-class",
        "kubeapi",
        "The StorageClass kubermatic-fast does not exist.",
        breaks=("STORAGE-001",),
        touches=("kube:kubermatic-fast", "kube:kubermatic-fast:binding", "kube:kubermatic-fast:expansion",
                 "kube:kubermatic-fast:parameters"),
        apply=_no_fast_class,
    ),
    Fault(
        "kube-hdd-fast-class",
        "kubeapi",
        "kubermatic-fast uses the vSphere storage policy kkp-hdd (spinning disks).",
        warns=("STORAGE-002",),
        touches=("kube:kubermatic-fast:parameters",),
        apply=_hdd_fast_class,
    ),
    Fault(
        "kube-immediate-binding",
        "kubeapi",
        "kubermatic-fast uses volumeBindingMode Immediate in a cluster whose nodes span three zones.",
        breaks=(),
        warns=("STORAGE-003",),
        touches=("kube:kubermatic-fast:binding",),
        apply=_immediate_binding,
    ),
    Fault(
        "kube-no-expansion",
        "kubeapi",
        "kubermatic-fast sets allowVolumeExpansion false.",
        breaks=(),
        warns=("STORAGE-004",),
        touches=("kube:kubermatic-fast:expansion",),
        apply=_no_expansion,
    ),
    Fault(
        "kube-no-default-class",
        "kubeapi",
        "No StorageClass is annotated storageclass.kubernetes.io/is-default-class.",
        breaks=("STORAGE-005",),
        touches=("kube:default-class",),
        apply=_no_default_class,
    ),
    Fault(
        "kube-no-backup-class",
        "kubeapi",
        "The StorageClass kubermatic-backup does not exist.",
        breaks=(),
        warns=("STORAGE-006",),
        touches=("kube:kubermatic-backup",),
        apply=_no_backup_class,
    ),
    Fault(
        "kube-unreachable",
        "kubeapi",
        "No API server runs: the kubeconfigs point at a closed port on 127.0.0.1.",
        breaks=(),
        touches=("kube:server",),
        apply=_unreachable,
    ),
    Fault(
        "kube-forbidden-storageclasses",
        "kubeapi",
        "The lab kubeconfig carries a token that is forbidden to read storage classes (403).",
        breaks=(),
        touches=("kube:kubeconfig-token",),
        apply=_forbidden_storageclasses,
    ),
    Fault(
        "kube-lb-controller-off",
        "kubeapi",
        "No load-balancer controller runs: new LoadBalancer Services never get an external address.",
        breaks=("LB-010",),
        touches=("kube:lb-controller",),
        apply=_lb_controller_off,
    ),
    Fault(
        "kube-binder-off",
        "kubeapi",
        "No volume provisioner runs: new PersistentVolumeClaims stay Pending.",
        breaks=("STORAGE-010",),
        touches=("kube:volume-binder",),
        apply=_binder_off,
    ),
    Fault(
        "kube-small-lb-pool",
        "kubeapi",
        "The MetalLB IPAddressPool kkp holds one address (127.0.0.10/32, the ingress's): too few for KKP's "
        "two Services, and a new LoadBalancer Service stays pending.",
        breaks=("LB-002", "LB-010"),
        touches=("kube:metallb-pool", "kube:lb-pool"),
        apply=_small_lb_pool,
    ),
    Fault(
        "kube-pool-overlaps-nodes",
        "kubeapi",
        "The MetalLB IPAddressPool kkp also holds 127.0.1.5-127.0.1.20, inside the node network 127.0.1.0/24 "
        "and with the addresses of worker-2 and worker-3.",
        breaks=("LB-003",),
        touches=("kube:metallb-pool", "kube:lb-pool"),
        apply=_pool_overlaps_nodes,
    ),
    Fault(
        "kube-l2-announcement",
        "kubeapi",
        "An L2Advertisement announces the pool kkp by Layer 2 (ARP) next to the BGPAdvertisement.",
        breaks=(),
        warns=("LB-004",),
        touches=("kube:metallb-l2advertisement",),
        apply=_l2_announcement,
    ),
    Fault(
        "kube-no-bgp-peer",
        "kubeapi",
        "MetalLB runs in BGP mode without a BGPPeer: the addresses are announced to no router.",
        breaks=("LB-005",),
        touches=("kube:metallb-bgp-peer",),
        apply=_no_bgp_peer,
    ),
    Fault(
        "kube-ingress-ip-mismatch",
        "kubeapi",
        "The NGINX ingress Service got 127.0.0.12 while DNS and the profile say 127.0.0.10.",
        breaks=("LB-006",),
        touches=("kube:ingress-service",),
        apply=_ingress_ip_mismatch,
    ),
    Fault(
        "kube-nodeport-proxy-pending",
        "kubeapi",
        "The Service kubermatic/nodeport-proxy has no external address (pending).",
        breaks=("LB-007",),
        touches=("kube:nodeport-proxy-service",),
        apply=_nodeport_proxy_pending,
    ),
    Fault(
        "kube-no-metallb",
        "kubeapi",
        "MetalLB is not installed (no controller, speaker, CRDs or pools) and nothing assigns load-balancer "
        "addresses to new Services.",
        breaks=("LB-001", "LB-010"),
        touches=("kube:metallb", "kube:lb-controller", "kube:metallb-pool", "kube:lb-pool",
                 "kube:metallb-l2advertisement", "kube:metallb-bgp-peer"),
        apply=_no_metallb,
    ),
    Fault(
        "kube-seed-tunneling",
        "kubeapi",
        "KKP's Seed object seed sets spec.exposeStrategy Tunneling while the profile plans NodePort.",
        breaks=("NET-004",),
        touches=("kube:kkp-seed:expose-strategy",),
        apply=_seed_tunneling,
    ),
    Fault(
        "kube-csi-driver-missing",
        "kubeapi",
        "The vSphere CSI driver is not deployed (no CSIDriver, no node registration, no controller) although "
        "every storage class names it: new PersistentVolumeClaims stay Pending.",
        breaks=("INFRA-007", "STORAGE-010"),
        touches=("kube:csi-driver", "kube:volume-binder"),
        apply=_csi_driver_missing,
    ),
    Fault(
        "kube-no-backup-destination",
        "kubeapi",
        "KKP's Seed object seed has no spec.etcdBackupRestore: user-cluster etcd snapshots go nowhere.",
        breaks=("STORAGE-007",),
        touches=("kube:kkp-seed:backup",),
        apply=_no_backup_destination,
    ),
    Fault(
        "kube-backup-store-down",
        "kubeapi",
        "The in-cluster MinIO the Seed's backup destination points at is 0/1 ready and its volume minio-data "
        "is Pending.",
        breaks=("STORAGE-007",),
        touches=("kube:minio",),
        apply=_backup_store_down,
    ),
    Fault(
        "kube-etcd-on-default-class",
        "kubeapi",
        "The etcd volume data-etcd-1 of user cluster lab7x2kq9 was created with the class standard.",
        breaks=("STORAGE-008",),
        touches=("kube:user-cluster-etcd",),
        apply=_etcd_on_default_class,
    ),
    Fault(
        "kube-prometheus-without-class",
        "kubeapi",
        "Prometheus' volume monitoring/db-prometheus-0 was created while no class was default: bound, without a "
        "storage class.",
        breaks=("STORAGE-009",),
        touches=("kube:monitoring-volumes",),
        apply=_prometheus_without_class,
    ),
    Fault(
        "kube-issuer-not-ready",
        "kubeapi",
        "The ClusterIssuer letsencrypt-prod is Ready=False (ErrRegisterACMEAccount: the ACME server is unreachable).",
        breaks=("CERT-101",),
        touches=("kube:cluster-issuer:status",),
        shown_with=ACME_PROFILE,
        apply=_issuer_not_ready,
    ),
    Fault(
        "kube-acme-http01",
        "kubeapi",
        "The ClusterIssuer letsencrypt-prod solves challenges by HTTP01 only, which cannot reach a private ingress.",
        breaks=("CERT-102",),
        touches=("kube:cluster-issuer:solvers",),
        shown_with=ACME_PROFILE,
        apply=_acme_http01,
    ),
    Fault(
        "kube-ca-bundle-unrelated",
        "kubeapi",
        "KKP's CA bundle (ConfigMap kubermatic/ca-bundle) holds another CA than the one that issued the ingress "
        "certificate.",
        breaks=("CERT-103",),
        touches=("kube:kkp-ca-bundle",),
        apply=_ca_bundle_unrelated,
    ),
    Fault(
        "kube-dex-not-ready",
        "kubeapi",
        "The Dex Deployment dex/dex has 0 of 2 replicas ready.",
        breaks=("AUTH-001",),
        touches=("kube:dex-deployment",),
        apply=_dex_not_ready,
    ),
    Fault(
        "kube-dex-no-connector",
        "kubeapi",
        "Dex's configuration (Secret dex/dex) has no connector and no static passwords: nobody can log in.",
        breaks=("AUTH-002",),
        touches=("kube:dex-configuration",),
        apply=_dex_without_connector,
    ),
    Fault(
        "kube-not-kubeone",
        "kubeapi",
        "No node carries KubeOne's label v1.kubeone.io/operating-system (the seed was set up by other means).",
        warns=("SEED-001",),
        touches=("kube:node-kubeone-label",),
        apply=_not_kubeone,
    ),
    Fault(
        "kube-unsupported-os",
        "kubeapi",
        "worker-1 runs CentOS Linux 7, which KubeOne 1.9 no longer supports.",
        breaks=("SEED-002",),
        touches=("kube:node-os:worker-1",),
        apply=_unsupported_os,
    ),
    Fault(
        "kube-kkp-not-installed",
        "kubeapi",
        "The cluster before the KKP installer ran: no KKP objects, Dex, ClusterIssuer, MinIO, monitoring or user "
        "clusters (checks of what the installer deploys are not applicable yet).",
        touches=("kube:kkp-installation", "kube:kkp-seed:expose-strategy", "kube:kkp-seed:backup", "kube:minio",
                 "kube:user-cluster-etcd", "kube:monitoring-volumes", "kube:cluster-issuer:status",
                 "kube:cluster-issuer:solvers", "kube:kkp-ca-bundle", "kube:dex-deployment", "kube:dex-configuration"),
        apply=_kkp_not_installed,
    ),
    Fault(
        "kube-mla-node-untainted",
        "kubeapi",
        "The MLA node worker-3 is labelled for MLA but not tainted: any workload may land on it.",
        warns=("PERF-009",),
        touches=("kube:mla-node-taint",),
        apply=_mla_node_untainted,
    ),
    Fault(
        "config-plaintext-secret",
        "config_repo",
        "values.yaml (dex client secrets, static password hashes, MinIO credentials) is not marked for git-crypt in "
        ".gitattributes: its secrets are committed and pushed in plain text.",
        breaks=("CONFIG-004",),
        touches=("config:encryption:values",),
        apply=_config_plaintext_secret,
    ),
    Fault(
        "config-missing-file",
        "config_repo",
        "The Seed manifest seed.yaml the profile lists was never committed.",
        breaks=("CONFIG-002",),
        touches=("config:seed-file",),
        apply=_config_missing_file,
    ),
    Fault(
        "config-no-remote",
        "config_repo",
        "The configuration repository has no remote: its history exists only on one machine.",
        warns=("CONFIG-001",),
        touches=("config:remote",),
        apply=_config_no_remote,
    ),
    Fault(
        "config-invalid-yaml",
        "config_repo",
        "seed.yaml was committed with unresolved merge-conflict markers and is no longer valid YAML.",
        breaks=("CONFIG-003",),
        touches=("config:seed-file",),
        apply=_config_invalid_yaml,
    ),
    Fault(
        "bastion-unknown-host-key",
        "bastion",
        "The bastion presents a host key that is neither pinned nor in known_hosts (a re-installed or "
        "impostor host): the suite refuses to log in, so the checks needing a session end as error.",
        breaks=("ACCESS-002",),
        touches=("bastion:host-key",),
        apply=_bastion_unknown_host_key,
    ),
    Fault(
        "bastion-wrong-user-key",
        "bastion",
        "The bastion's authorized_keys holds another key than the operator's: the login is refused.",
        breaks=("ACCESS-001",),
        touches=("bastion:authorized-keys",),
        apply=_bastion_wrong_user_key,
    ),
    Fault(
        "bastion-tool-missing",
        "bastion",
        "helm is not installed on the bastion.",
        breaks=("ACCESS-003",),
        touches=("bastion:tool:helm",),
        apply=_bastion_helm_missing,
    ),
    Fault(
        "bastion-tool-too-old",
        "bastion",
        "terraform on the bastion is 0.12.31, older than the minimum.",
        breaks=("ACCESS-003",),
        touches=("bastion:tool:terraform",),
        apply=_bastion_terraform_too_old,
    ),
    Fault(
        "bastion-optional-tool-missing",
        "bastion",
        "fubectl is not installed on the bastion (an optional helper).",
        warns=("ACCESS-004",),
        touches=("bastion:tool:fubectl",),
        apply=_bastion_fubectl_missing,
    ),
    Fault(
        "node-ssh-closed",
        "bastion",
        "The seed node cp-1 (127.0.1.1) runs no SSH server: it cannot be reached through the bastion "
        "(nor administered by KubeOne, SEED-003).",
        breaks=("ACCESS-006", "SEED-003"),
        touches=("bastion:node-sshd",),
        apply=_node_ssh_closed,
    ),
    Fault(
        "bastion-dns-tcp-blocked",
        "bastion",
        "The bastion's firewall lets it open TCP connections everywhere in the lab but to the DNS servers "
        "(UDP 53 opened, TCP 53 forgotten).",
        breaks=("ACCESS-008",),
        touches=("bastion:permit-open",),
        apply=_bastion_dns_tcp_blocked,
    ),
    Fault(
        "node-sudo-password",
        "bastion",
        "On the seed node cp-1 the KubeOne user's sudo asks for a password (no NOPASSWD sudoers entry).",
        breaks=("SEED-003",),
        touches=("bastion:node-sudo",),
        apply=_node_sudo_password,
    ),
    Fault(
        "ingress-http-closed",
        "ingress",
        "The ingress address 127.0.0.10 does not listen on its HTTP port (a firewall or a Service without "
        "port 80): the bastion's connection is refused.",
        breaks=("ACCESS-007",),
        touches=("ingress:http-listener",),
        apply=_ingress_http_closed,
    ),
)

# --- egress: the site's way out (proxy, internet stand-ins, registries) -----------------------------

#: The offline variant of the lab profile: the mirror checks apply, the allowlist checks do not.
OFFLINE_PROFILE: dict[str, Any] = {"proxy": {"offline": True}}


def _deny(host: str) -> Callable[[EgressPlan], None]:
    def apply(plan: EgressPlan) -> None:
        plan.denied_hosts.add(host)
    return apply


def _mirror_without(image: str) -> Callable[[EgressPlan], None]:
    def apply(plan: EgressPlan) -> None:
        plan.mirror_images.remove(image)
    return apply


def _release_unpublished(plan: EgressPlan) -> None:
    plan.release_published = False


def _pull_secret_revoked(plan: EgressPlan) -> None:
    plan.pull_secret_valid = False


def _no_ee_read_access(plan: EgressPlan) -> None:
    plan.ee_grants = []


def _proxy_credentials_wrong(plan: EgressPlan) -> None:
    plan.proxy_credentials_valid = False


_EGRESS = (
    Fault("proxy-denies-registry", "egress", "The proxy's allowlist lacks ghcr.io: CONNECT answers 403.",
          breaks=("PROXY-001",), touches=("egress:filter:ghcr.io",), apply=_deny("ghcr.io")),
    Fault("proxy-denies-acme", "egress", "The proxy's allowlist lacks Let's Encrypt's ACME endpoint.",
          breaks=("PROXY-004",), touches=("egress:filter:acme",), shown_with=ACME_PROFILE,
          apply=_deny("acme-v02.api.letsencrypt.org")),
    Fault("proxy-credentials-wrong", "egress",
          "The proxy credentials handed to the suite are not the proxy's: every CONNECT answers 407.",
          breaks=("PROXY-001", "PROXY-002", "PROXY-003", "PROXY-005", "INSTALLER-001", "INSTALLER-003",
                  "INSTALLER-004"),
          touches=("egress:proxy-credentials",), apply=_proxy_credentials_wrong),
    Fault("github-release-missing", "egress", "github.com has no installer archive for the pinned KKP release.",
          breaks=("INSTALLER-001",), touches=("egress:release",), apply=_release_unpublished),
    Fault("ee-pull-secret-revoked", "egress", "The EE pull secret holds a revoked password: the token service "
          "answers 401.", breaks=("INSTALLER-003", "INSTALLER-004"), touches=("egress:pull-secret",),
          apply=_pull_secret_revoked),
    Fault("ee-no-read-access", "egress", "The EE robot account logs in but may not pull kubermatic-ee.",
          breaks=("INSTALLER-004",), touches=("egress:ee-grants",), apply=_no_ee_read_access),
    Fault("mirror-image-missing", "egress", "The offline mirror lacks machine-controller (offline profile).",
          breaks=("PROXY-008",), touches=("egress:mirror-images",), shown_with=OFFLINE_PROFILE,
          apply=_mirror_without("quay.io/kubermatic/machine-controller:v1.61.0")),
)
def _cloud_api_blocked_at_bastion(plan: BastionPlan) -> None:
    plan.bastion_blocked = ("cloud",)


_EGRESS = (*_EGRESS, Fault(
    "cloud-api-unreachable-from-bastion", "bastion", "The bastion's firewall drops connections to the cloud "
    "provider's API (the lab's OpenStack stand-in); the seed nodes and workers still reach it.",
    breaks=("ACCESS-005",), touches=("bastion:permit-open",), shown_with={"extends": "lab-openstack"},
    apply=_cloud_api_blocked_at_bastion))
_ALL = (*_ALL, *_EGRESS)


# --- conformance results (PERF-007; recommended, so a finding warns) ---------------------------------


def _conformance_failed(plan: ConformancePlan) -> None:
    plan.failed.append(FAILING_SPEC)


def _conformance_old_version(plan: ConformancePlan) -> None:
    plan.version = previous_minor(plan.version)


def _conformance_skipped(plan: ConformancePlan) -> None:
    plan.skipped.append(SKIPPED_SPEC)


_ALL = (*_ALL, *(
    Fault("conformance-test-failed", "conformance", "One [Conformance] test (node-pod UDP networking) failed in the "
          "Sonobuoy results.", warns=("PERF-007",), touches=("conformance:failed",), apply=_conformance_failed),
    Fault("conformance-old-version", "conformance", "The Sonobuoy results are of a run against the previous "
          "Kubernetes minor, not the cluster's.", warns=("PERF-007",), touches=("conformance:version",),
          apply=_conformance_old_version),
    Fault("conformance-skipped", "conformance", "One [Conformance] test (a [Serial] one) was skipped in the "
          "Sonobuoy results.", warns=("PERF-007",), touches=("conformance:skipped",), apply=_conformance_skipped),
))

#: PERF-008's load for kube-mla-node-small: 200,000 active series (x replication factor 3 x 15 KB: 8.4 GiB of
#: Cortex ingester memory), which the healthy MLA node worker-3 (16 GiB) holds and a 6 GiB one does not.
MLA_LOAD_PROFILE: dict[str, Any] = {"mla": {"capacity": {"active_series": 200000}}}


def _mla_node_small(plan: KubePlan) -> None:
    # 6 GiB: still above KKP's 4 GB node minimum (INFRA-006), below the ingesters' estimate.
    memory_ki = 6 * 1024 * 1024
    node = plan.cluster.find("Node", "worker-3")
    node["status"]["capacity"]["memory"] = f"{memory_ki}Ki"
    node["status"]["allocatable"]["memory"] = f"{memory_ki - EVICTION_RESERVE_KI}Ki"
    _node_labels(node)["node.kubernetes.io/instance-type"] = "lab-4c6g"


_ALL = (*_ALL, Fault(
    "kube-mla-node-small", "kubeapi",
    "The MLA node worker-3 has 6 GiB of memory, less than Cortex's ingesters need for 200,000 active series "
    "(8.4 GiB).",
    warns=("PERF-008",), touches=("kube:mla-node-memory", "kube:node-capacity"), shown_with=MLA_LOAD_PROFILE,
    apply=_mla_node_small))

# --- performance: the etcd disks and etcd itself (kkp_readiness/lab/perf_part.py) -------------------------

#: What a node without fio answers (the fio check's script asks `command -v fio` first, then runs it).
FIO_NOT_INSTALLED = "#!/bin/sh\necho 'sh: 1: fio: not found' >&2\nexit 127\n"


def _disk_slow(plan: PerfPlan) -> None:
    plan.slow_disk = True


def _etcd_cpu_starved(plan: PerfPlan) -> None:
    plan.etcd_cpu_quota = 5


def _etcd_unreachable(plan: PerfPlan) -> None:
    plan.start_etcd = False


def _node_fio_missing(plan: BastionPlan) -> None:
    plan.node_commands["fio"] = FIO_NOT_INSTALLED


_ALL = (*_ALL, *(
    Fault("disk-slow", "perf", "The seed node's etcd data directory is on a volume provisioned with 40 IOPS and "
          "10 MB/s (a throttled block device): each fdatasync waits tens of milliseconds.",
          breaks=("PERF-001", "PERF-003"), touches=("perf:node-disk",), apply=_disk_slow),
    Fault("etcd-cpu-starved", "perf", "The etcd the profile names gets 5 % of one CPU (a CFS quota, as on an "
          "oversubscribed host): check perf's requests queue behind it.",
          breaks=("PERF-005",), touches=("perf:etcd",), apply=_etcd_cpu_starved),
    Fault("etcd-unreachable", "perf", "Nothing listens on the etcd endpoint the profile names: check perf cannot "
          "run (an error, not a finding).", touches=("perf:etcd",), apply=_etcd_unreachable),
    Fault("node-fio-missing", "bastion", "fio is not installed on the seed node cp-1: the disk measurements there "
          "cannot run (an error naming how to install it).", touches=("bastion:node-fio",), apply=_node_fio_missing),
))

# --- performance: the volumes of the etcd storage class (the kubeapi part's Job pods, measured with fio) ------


def _fast_volumes_slow(plan: KubePlan) -> None:
    plan.slow_volume_classes.add("kubermatic-fast")


_ALL = (*_ALL, Fault(
    "kube-fast-volumes-slow", "kubeapi", "The volumes of the storage class kubermatic-fast are provisioned on a "
    "disk with 40 IOPS and 10 MB/s (a throttled block device): fio in a pod on such a volume measures slow syncs.",
    breaks=("PERF-002", "PERF-004"), touches=("kube:fast-volumes",), apply=_fast_volumes_slow))

# --- the cloud's worker network (the bastion part's worker host, a firewall in sshd's PermitOpen terms) ---------


def _workers_blocked(*parts: str) -> Callable[[BastionPlan], None]:
    def apply(plan: BastionPlan) -> None:
        plan.worker_blocked = parts
    return apply


#: Per lab cloud profile: the requirement a worker network cut off from the provider's API breaks, and the one a
#: worker network cut off from the seed's node-port load balancer breaks (option I: 009-type, II: 012-type).
_WORKER_FAULTS = (("openstack", "OPENSTACK-009", "OPENSTACK-015"), ("azure", "AZURE-006", "AZURE-012"),
                  ("vsphere", "VSPHERE-010", "VSPHERE-013"))

_ALL = (*_ALL, *(fault for provider, api_id, seed_id in _WORKER_FAULTS for fault in (
    Fault(f"{provider}-api-unreachable-from-workers", "bastion", "The worker network's firewall drops HTTPS to the "
          f"{provider} API (the worker host cannot connect to the lab's cloud stand-ins).", breaks=(api_id,),
          touches=("bastion:worker-firewall",), shown_with={"extends": f"lab-{provider}"},
          apply=_workers_blocked("cloud")),
    Fault(f"{provider}-workers-cut-off-from-seed", "bastion", "The worker network's firewall drops connections to "
          "the seed's node-port load balancer (the lab's ingress and node-port proxy addresses).", breaks=(seed_id,),
          touches=("bastion:worker-firewall",), shown_with={"extends": f"lab-{provider}"},
          apply=_workers_blocked("ingress")),
)))

# --- cloud providers: each provider module of kkp_readiness.lab.cloudapi lists its own (``faults()``) ----------
# Imported here, at the end: the provider modules import ``Fault`` from this module.
from kkp_readiness.lab.cloud_part import cloud_faults  # noqa: E402

_ALL = (*_ALL, *cloud_faults())

#: Every fault by name, in the order they are documented and applied.
FAULTS: dict[str, Fault] = {fault.name: fault for fault in _ALL}


def resolve_faults(names: Iterable[str]) -> tuple[Fault, ...]:
    """Turn fault names into ``Fault`` objects, in ``FAULTS`` order, refusing bad input.

    Raises ``LabError`` for an unknown name (listing the known ones) and for two faults that
    change the same record or certificate property. Duplicates are ignored.
    """
    requested = list(dict.fromkeys(names))
    unknown = [name for name in requested if name not in FAULTS]
    if unknown:
        raise LabError(f"unknown lab fault(s) {', '.join(unknown)}; known faults: {', '.join(FAULTS)}")
    chosen = [fault for fault in FAULTS.values() if fault.name in requested]
    owner: dict[str, str] = {}
    for fault in chosen:
        for thing in fault.touches:
            if thing in owner:
                raise LabError(
                    f"lab faults {owner[thing]} and {fault.name} cannot be combined: both change {thing}"
                )
            owner[thing] = fault.name
    return tuple(chosen)
