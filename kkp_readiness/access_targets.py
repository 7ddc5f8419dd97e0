"""What ACCESS-007 dials from the bastion: every load-balancer address and port the profile implies.

Why a module of its own: the list is derived from the profile and the seeds' kubeconfigs alone (no
network), so it is unit-tested without a lab and the check only dials and judges. Each target says
where its address came from, so that a failure names the profile field or kubeconfig to correct.

- the Kubernetes API load balancer of each seed: host and port of its kubeconfig's ``server`` URL
  (the kubeconfig the cluster checks use, :func:`kkp_readiness.snapshot.seed_access`);
- each ingress address on the HTTPS port (``certificates.port``) and the HTTP port (``ingress.http_port``);
- for NodePort and Tunneling seeds, each nodeport-proxy address on ``nodeport_proxy_ports``. Their
  default follows the expose strategy: Tunneling's proxy listens on 6443 (API servers, by SNI) and
  8088 (the agents' HTTP/2 tunnel); NodePort's ports are the node ports of the user clusters, which
  exist only once user clusters run, so there is no default to dial and the profile lists them.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import yaml

from kkp_readiness.profile import LoadedProfile
from kkp_readiness.profile_model import SeedSpec

#: Tunneling's nodeport-proxy ports: 6443 (user cluster API servers, routed by SNI) and 8088 (tunnel).
TUNNELING_PORTS = (6443, 8088)


@dataclass(frozen=True)
class Target:
    """One address and port the bastion must reach; ``problem``: why it could not even be determined."""

    what: str
    host: str
    port: int
    source: str
    problem: str | None = None

    @property
    def id(self) -> str:
        return f"{self.what.replace(' ', '-')}-{self.host}:{self.port}" if not self.problem else self.what


def kubeconfig_server(path: str, context: str | None) -> str:
    """The ``server`` URL of ``context`` (default: the current context) in the kubeconfig at ``path``."""
    document = yaml.safe_load(Path(path).expanduser().read_text()) or {}
    name = context or document.get("current-context")
    contexts = {c.get("name"): c.get("context") or {} for c in document.get("contexts") or []}
    if name not in contexts:
        raise ValueError(f"it has no context {name!r}")
    cluster_name = contexts[name].get("cluster")
    clusters = {c.get("name"): c.get("cluster") or {} for c in document.get("clusters") or []}
    server = clusters.get(cluster_name, {}).get("server")
    if not server:
        raise ValueError(f"its cluster {cluster_name!r} has no server URL")
    return str(server)


def kubeconfig_ca(path: str, context: str | None) -> bytes | None:
    """The CA (PEM) the kubeconfig trusts for ``context``'s cluster: embedded data or a file; None: none named."""
    import base64

    document = yaml.safe_load(Path(path).expanduser().read_text()) or {}
    name = context or document.get("current-context")
    contexts = {c.get("name"): c.get("context") or {} for c in document.get("contexts") or []}
    clusters = {c.get("name"): c.get("cluster") or {} for c in document.get("clusters") or []}
    cluster = clusters.get(contexts.get(name, {}).get("cluster"), {})
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"])
    if cluster.get("certificate-authority"):
        return (Path(path).expanduser().parent / cluster["certificate-authority"]).read_bytes()
    return None


def is_address(host: str) -> bool:
    """True for an IP address (no DNS name to resolve)."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def url_endpoint(url: str) -> tuple[str, int]:
    """Host and port of an ``https://`` URL (443 when it names none)."""
    parsed = urllib.parse.urlsplit(url)
    if not parsed.hostname:
        raise ValueError(f"{url!r} names no host")
    return parsed.hostname, parsed.port or (80 if parsed.scheme == "http" else 443)


def seed_api_target(loaded: LoadedProfile, seed: SeedSpec) -> Target:
    from kkp_readiness.snapshot import seed_access  # late: snapshot imports the kube client

    what = f"Kubernetes API of seed {seed.name}"
    kubeconfig = seed_access(loaded, seed).kubeconfig
    if kubeconfig is None:
        return Target(what, "", 0, "in-cluster service account", "the suite runs in-cluster: no load balancer URL")
    try:
        host, port = url_endpoint(kubeconfig_server(kubeconfig, seed.context))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        return Target(what, "", 0, f"kubeconfig {kubeconfig}", f"cannot read the server URL of {kubeconfig}: {exc}")
    return Target(what, host, port, f"server URL in kubeconfig {kubeconfig}")


def nodeport_ports(seed: SeedSpec) -> list[int]:
    """The ports dialled on the seed's nodeport-proxy addresses (see the module's docstring)."""
    if seed.nodeport_proxy_ports is not None:
        return list(seed.nodeport_proxy_ports)
    return list(TUNNELING_PORTS) if seed.expose_strategy == "Tunneling" else []


def load_balancer_targets(loaded: LoadedProfile) -> list[Target]:
    """Every target of ACCESS-007, in profile order: seed API servers, ingress, nodeport proxies."""
    profile = loaded.profile
    targets = [seed_api_target(loaded, seed) for seed in profile.seeds]
    for address in profile.ingress.addresses:
        targets.append(Target("ingress HTTPS", str(address), profile.certificates.port,
                              "ingress.addresses, certificates.port"))
        targets.append(Target("ingress HTTP", str(address), profile.ingress.http_port,
                              "ingress.addresses, ingress.http_port"))
    for seed in profile.seeds:
        if seed.expose_strategy == "LoadBalancer":
            continue
        for address in seed.nodeport_proxy_addresses:
            for port in nodeport_ports(seed):
                targets.append(Target(f"nodeport-proxy of seed {seed.name}", str(address), port,
                                      f"seeds[{seed.name}].nodeport_proxy_addresses, nodeport_proxy_ports "
                                      f"({seed.expose_strategy})"))
    return targets


@dataclass(frozen=True)
class CloudApi:
    """One API endpoint of the target cloud (ACCESS-005) and the CA bundle the profile gives for it, if any."""

    what: str
    url: str
    ca_bundle: str | None = None


def cloud_api_endpoints(loaded: LoadedProfile) -> list[CloudApi]:
    """The API endpoints of the profile's cloud provider that KKP and the cloud controller call.

    Azure: Entra ID (logins) and Resource Manager, as the profile names them (the public cloud's by
    default); vSphere: the vCenter's SDK URL (``endpoint``, else ``$GOVC_URL``); OpenStack: Keystone (the
    catalog's other endpoints need a token: ``openstack_service_endpoints``).
    """
    cloud = loaded.profile.cloud
    if cloud.provider == "azure" and cloud.azure:
        ca_bundle = loaded.resolve_path(("cloud", "azure", "ca_bundle"), cloud.azure.ca_bundle)
        return [CloudApi("Azure login (Entra ID)", cloud.azure.authority_host.rstrip("/") + "/", ca_bundle),
                CloudApi("Azure Resource Manager", cloud.azure.resource_manager.rstrip("/") + "/", ca_bundle)]
    if cloud.provider == "vsphere" and cloud.vsphere:
        endpoint = cloud.vsphere.endpoint or os.environ.get("GOVC_URL", "")
        if not endpoint:
            return []
        url = endpoint if "://" in endpoint else f"https://{endpoint}/sdk"
        parts = urllib.parse.urlsplit(url)
        url = urllib.parse.urlunsplit((parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else ""),
                                       parts.path or "/sdk", "", ""))  # never a user:password@ of GOVC_URL
        ca_bundle = loaded.resolve_path(("cloud", "vsphere", "ca_bundle"), cloud.vsphere.ca_bundle)
        return [CloudApi("vCenter", url, ca_bundle or os.environ.get("GOVC_TLS_CA_CERTS"))]
    if cloud.provider == "openstack" and cloud.openstack:
        url = cloud.openstack.auth_url or os.environ.get("OS_AUTH_URL", "")
        ca_bundle = loaded.resolve_path(("cloud", "openstack", "ca_bundle"), cloud.openstack.ca_bundle)
        return [CloudApi("OpenStack Keystone", url, ca_bundle or os.environ.get("OS_CACERT"))] if url else []
    return []
