"""The profile schema: what a site should look like.

Every model forbids unknown keys, because a typo in a profile must never silently disable a
check. Secrets are typed :class:`SecretRef` and accept only references (``${env:NAME}``,
``${file:PATH}``); the loader in :mod:`kkp_readiness.profile` resolves them after validation.
Later issues extend these models; keep every field documented, as the README's profile guide and
the templates in ``profiles/`` are written against them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from kkp_readiness.secrets import SecretRef

ExposeStrategy = Literal["NodePort", "Tunneling", "LoadBalancer"]
LbMode = Literal["cloud", "metallb-l2", "metallb-bgp", "cilium-l2", "cilium-bgp", "kubelb", "other"]
CertSource = Literal["provided", "cert-manager-acme", "private-ca"]
CloudProvider = Literal["none", "azure", "vsphere", "openstack"]

_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?$")
_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")


def _check_hostname(value: str) -> str:
    if not _HOSTNAME.match(value.lower()):
        raise ValueError(f"{value!r} is not a valid DNS name")
    return value.lower().rstrip(".")


def _check_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def split_endpoint(value: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` -> (host, port); the one parser of endpoints.

    >>> split_endpoint("[2001:db8::10]:8443", 443)
    ('2001:db8::10', 8443)
    """
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else ("" if not rest else "x")
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""  # a bare name, IPv4 or unbracketed IPv6 address
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        raise ValueError(f"{value!r}: the port must be 1-65535")
    return host, int(port) if port else default_port


def _check_endpoint(value: str) -> str:
    """``host:port`` or ``[v6]:port`` or a bare host; the port, when given, must be 1-65535."""
    host, _ = split_endpoint(value, 1)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        _check_hostname(host)
    return value


def _check_dns_server(value: str) -> str:
    """A DNS server is named by its address (``192.0.2.53``, ``192.0.2.53:5353``, ``[2001:db8::53]:53``)."""
    from kkp_readiness.probes.dns import DnsServer

    try:
        DnsServer.parse(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    return value


def _check_no_userinfo(value: str) -> str:
    """A URL must not carry ``user:password@``: credentials belong in a secret reference field."""
    if "@" in value.split("://", 1)[-1].split("/", 1)[0]:
        raise ValueError("must not contain credentials (user:password@); put them in a secret reference field")
    return value


def _check_range(value: str) -> str:
    """A CIDR (``192.0.2.0/28``) or an inclusive range (``192.0.2.10-192.0.2.20``)."""
    if "-" in value:
        first, last = (ipaddress.ip_address(part.strip()) for part in value.split("-", 1))
        if first.version != last.version or int(first) > int(last):
            raise ValueError(f"{value!r}: range start must not be after its end")
        return value
    ipaddress.ip_network(value, strict=True)
    return value


Port = Annotated[int, Field(ge=1, le=65535)]
IPAddress = Annotated[str, AfterValidator(_check_address)]
Endpoint = Annotated[str, AfterValidator(_check_endpoint)]
AddressRange = Annotated[str, AfterValidator(_check_range)]
DnsName = Annotated[str, AfterValidator(_check_hostname)]
Url = Annotated[str, AfterValidator(_check_no_userinfo)]
DnsServerAddress = Annotated[str, AfterValidator(_check_dns_server)]
Seconds = Annotated[float, Field(gt=0, le=3600)]


class Strict(BaseModel):
    """Base of every profile model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class KkpSpec(Strict):
    """Which KKP is going to be installed."""

    version: str = Field("2.28", pattern=r"^\d+\.\d+(\.\d+)?$")
    edition: Literal["ce", "ee"] = "ce"


class IngressSpec(Strict):
    """The NGINX ingress of the master cluster: KKP UI, Grafana, Prometheus, Alertmanager, Kibana."""

    addresses: list[IPAddress] = Field(min_length=1, description="expected ingress IPs (virtual IPs)")
    services: list[str] = Field(default_factory=lambda: ["grafana", "prometheus", "alertmanager"])
    logging_ui: bool = Field(False, description="a logging UI (kibana) is exposed on the ingress")
    internet_facing: bool = Field(
        False, description="the KKP names are reachable from the internet (else ACME needs the DNS01 solver)"
    )
    http_port: Port = Field(80, description="plain-HTTP port of the ingress addresses (ACCESS-007; HTTPS is "
                                            "certificates.port)")

    @field_validator("services")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        for label in value:
            if "." in label or not _HOSTNAME.match(label):
                raise ValueError(f"{label!r} must be a single DNS label such as 'grafana'")
        return value


class DnsSpec(Strict):
    """Where to ask, and how the zone is expected to be built."""

    servers: list[DnsServerAddress] = Field(min_length=1, description="DNS servers to ask: IP or IP:port")
    wildcard: bool = Field(True, description="*.<base_domain> exists (else one record per service)")


class SeedSpec(Strict):
    """One seed cluster (the master is a seed too in a single-seed set-up)."""

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    domain: DnsName | None = Field(None, description="defaults to <name>.<base_domain>")
    expose_strategy: ExposeStrategy = "NodePort"
    nodeport_proxy_addresses: list[IPAddress] = Field(default_factory=list)
    nodeport_proxy_ports: list[Port] | None = Field(
        None, description="ports of the nodeport-proxy addresses dialled from the bastion (ACCESS-007); default: "
                          "Tunneling 6443 and 8088, NodePort none (its ports are the user clusters' node ports)")
    mla: bool = Field(False, description="user-cluster MLA: grafana/alertmanager.<seed domain>")
    kubeconfig: str | None = None
    context: str | None = None


    @model_validator(mode="after")
    def _proxy_needed(self) -> SeedSpec:
        if self.expose_strategy != "LoadBalancer" and not self.nodeport_proxy_addresses:
            raise ValueError(
                f"seed {self.name!r} uses expose strategy {self.expose_strategy}: "
                "nodeport_proxy_addresses must name the node-port-proxy address(es)"
            )
        return self


class CertificatesSpec(Strict):
    """What the ingress certificate must satisfy."""

    source: CertSource = "provided"
    ca_bundle: str | None = Field(None, description="PEM bundle of an own CA; default: system store")
    single_certificate: bool = Field(True, description="KKP's Helm charts take one certificate")
    extra_names: list[DnsName] = Field(default_factory=list)
    min_days_left: int = Field(30, ge=0, le=3650)
    min_rsa_bits: int = Field(2048, ge=1024)
    min_ec_bits: int = Field(256, ge=160)
    port: Port = 443
    cluster_issuer: str = Field("letsencrypt-prod", description="cert-manager ClusterIssuer of the KKP certificate")
    endpoints: dict[DnsName, Endpoint] = Field(
        default_factory=dict, description="name -> host:port to dial instead of what the name resolves to"
    )



class BgpPeer(Strict):
    address: IPAddress
    asn: int = Field(ge=1, le=4294967295)


class LoadBalancerSpec(Strict):
    """How Services of type LoadBalancer get addresses."""

    mode: LbMode = "cloud"
    address_pools: list[AddressRange] = Field(default_factory=list, description="CIDRs or a-b ranges")
    workload_addresses: int = Field(0, ge=0, description="addresses reserved for user workloads")
    user_clusters: int = Field(0, ge=0, description="user clusters planned (one address each under the "
                                                    "LoadBalancer expose strategy)")
    bgp_peers: list[BgpPeer] = Field(default_factory=list)


class NetworkSpec(Strict):
    """The address plan of the site."""

    node_cidrs: list[AddressRange] = Field(default_factory=list)
    dhcp: bool = Field(True, description="DHCP serves the worker networks")
    dhcp_ranges: list[AddressRange] = Field(default_factory=list)
    pod_cidr: AddressRange | None = None
    service_cidr: AddressRange | None = None
    remote_workers: bool = Field(False, description="workers run outside the seed network (Konnectivity)")
    routed_cidrs: list[AddressRange] = Field(
        default_factory=list, description="prefixes routed to the machines' network; the VIP ranges must lie in one")


class InfraSpec(Strict):
    """Expectations on the master/seed cluster's infrastructure.

    The node minimum defaults to KKP's documented master cluster minimum (2 CPUs and 4 GB of RAM
    per machine, six or more machines: 3 control-plane and 3 workers).
    """

    availability_zones: int = Field(1, ge=1, description="zones control plane and workers must each span")
    control_plane_nodes: int = Field(3, ge=1)
    worker_nodes: int = Field(3, ge=0)
    min_node_cpus: float = Field(2, gt=0)
    min_node_memory_gib: float = Field(4, gt=0)
    operating_systems: list[Literal["ubuntu", "flatcar", "rhel", "rockylinux"]] = Field(
        default_factory=lambda: ["ubuntu"], description="node operating systems (their package hosts, PROXY-003)")
    provisioner: Literal["kubeone", "other"] = Field(
        "kubeone", description="how the master/seed cluster was set up (other: record why in a waiver)"
    )


class StorageSpec(Strict):
    fast_class: str = "kubermatic-fast"
    ssd_parameter_values: list[str] = Field(
        default_factory=list, description="site-specific SSD tier names (vSphere storage policies, volume types)"
    )
    backup_class: str | None = "kubermatic-backup"
    backup_target: Literal["minio", "s3"] = "minio"
    mla_class: str | None = Field(None, description="dedicated class for MLA volumes (else fast_class)")
    s3_endpoint: Url | None = None
    s3_bucket: str | None = None
    s3_access_key: SecretRef | None = None
    s3_secret_key: SecretRef | None = None


class MlaCapacitySpec(Strict):
    """The load the user-cluster MLA stack is sized for (PERF-008), and the storage planned for it.

    The defaults are KKP's MLA defaults (7 days retention, 3 Cortex ingesters) and Cortex's
    (replication factor 3); see ``kkp_readiness/data/mla_capacity.yaml`` for the sources.
    """

    active_series: int | None = Field(None, ge=1, description="active metric series over all user clusters, "
                                                              "including churn (prometheus_tsdb_head_series)")
    scrape_interval: int | None = Field(None, ge=1, le=3600, description="seconds between two samples of a series "
                                                                         "(default 60, Prometheus' default)")
    retention_days: int = Field(7, ge=1, le=3650, description="days metrics and logs are kept (KKP default 7)")
    logs_gib_per_day: float | None = Field(None, ge=0, description="log volume shipped to Loki per day, GiB")
    replication_factor: int = Field(3, ge=1, le=9, description="Cortex ingester replication factor")
    ingesters: int = Field(3, ge=1, description="Cortex ingester replicas (KKP default 3)")
    volume_gib: float | None = Field(None, gt=0, description="storage planned for MLA data (object store and "
                                                             "ingester volumes), GiB; default: the requests of "
                                                             "the PVCs in namespace mla")

    @model_validator(mode="after")
    def _load_named(self) -> MlaCapacitySpec:
        if self.active_series is None and self.logs_gib_per_day is None:
            raise ValueError("capacity needs active_series or logs_gib_per_day (the load to size for)")
        if self.replication_factor > self.ingesters:
            raise ValueError(f"replication_factor {self.replication_factor} needs at least as many ingesters "
                             f"(ingesters: {self.ingesters})")
        return self


class MlaSpec(Strict):
    """Where the user-cluster MLA stack (namespace ``mla`` of each seed) runs.

    KKP's MLA guide leaves node placement to the site; with ``dedicated_nodes`` the profile names
    the label that selects the MLA nodes and the taint that keeps other workloads off them.
    """

    dedicated_nodes: bool = False
    node_labels: dict[str, str] = Field(default_factory=dict, description="labels of the MLA nodes")
    taint: str | None = Field(None, pattern=r"^[^=:\s]+(=[^=:\s]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$",
                              description="key[=value]:Effect carried by the MLA nodes")
    min_nodes: int = Field(1, ge=1)
    capacity: MlaCapacitySpec | None = Field(None, description="expected MLA load, for PERF-008's sizing estimate; "
                                                               "absent: PERF-008 skips")

    @model_validator(mode="after")
    def _placement_named(self) -> MlaSpec:
        if self.dedicated_nodes and not (self.node_labels and self.taint):
            raise ValueError("dedicated_nodes needs node_labels and taint (how the MLA nodes are told apart)")
        return self


class BastionSpec(Strict):
    """The SSH entry point of the site (host keys are always verified)."""

    host: Endpoint = Field(description="address, or with use_ssh_config the Host alias of the SSH client config")
    port: Port = 22
    user: str | None = Field(None, description="login user; may come from the SSH client config (use_ssh_config)")
    key_file: str | None = Field(None, description="private key; default: the config's IdentityFile, else the "
                                                   "ssh-agent keys when SSH_AUTH_SOCK is set, else ~/.ssh/id_ed25519")
    key_passphrase: SecretRef | None = None
    known_hosts: str | None = None
    host_key_fingerprint: str | None = Field(None, description="pinned key, SHA256:...")
    use_ssh_config: bool = Field(False, description="read HostName, Port, User, IdentityFile, UserKnownHostsFile "
                                                    "and ProxyJump of `host` from ssh_config; the profile's own "
                                                    "fields win")
    ssh_config: str | None = Field(None, description="the SSH client config file (default ~/.ssh/config)")
    proxy_jump: list[str] = Field(default_factory=list,
                                  description="jump hosts before the bastion, [user@]host[:port] in order; each "
                                              "host key is verified against known_hosts, each hop logs in")
    tools: dict[str, str] = Field(default_factory=dict, description="tool -> minimum version")
    nodes: list[Endpoint] = Field(default_factory=list,
                                  description="seed nodes reached through the bastion (ACCESS-006), host[:port]")
    node_user: str | None = Field(None, description="the KubeOne SSH user on the nodes (SEED-003); default: user")

    @field_validator("host_key_fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is not None and not _FINGERPRINT.match(value):
            raise ValueError("must look like SHA256:<43 base64 characters>, as `ssh-keygen -lf` prints it")
        return value

    @model_validator(mode="after")
    def _user_known(self) -> BastionSpec:
        if self.user is None and not self.use_ssh_config:
            raise ValueError("bastion.user is required (or use_ssh_config: true with a User in the SSH config)")
        return self


class MirrorSpec(Strict):
    """The offline mirror registry (PROXY-006..008, INSTALLER-002)."""

    registry: Url = Field(description="https://host[:port] of the mirror registry")
    username: str | None = None
    password: SecretRef | None = None
    ca_bundle: str | None = Field(None, description="PEM CA bundle of the mirror's certificate; default: "
                                                    "certificates.ca_bundle, else the system store")
    images: list[str] = Field(default_factory=list, description="source references (quay.io/kubermatic/...:tag) "
                                                                 "that must be in the mirror, under the same path")


class ProxySpec(Strict):
    """Internet access of the site: direct, through a proxy, or none (offline mirror).

    The PROXY checks go from the bastion (through ``https`` for https URLs, ``http`` for plain http ones,
    unless a host matches ``no_proxy``), as the installation's downloads will.
    """

    http: Url | None = Field(None, description="proxy for http:// URLs, http://host:port")
    https: Url | None = Field(None, description="proxy for https:// URLs (CONNECT), http://host:port")
    no_proxy: list[str] = Field(default_factory=list, description="hosts or .domain suffixes reached directly")
    credentials: SecretRef | None = Field(None, description="user:password for the proxy (Basic)")
    ca_bundle: str | None = Field(None, description="PEM bundle trusted for internet hosts, e.g. a TLS-inspecting "
                                                    "proxy's CA; default: the system store")
    offline: bool = False
    mirror: MirrorSpec | None = None

    @model_validator(mode="after")
    def _mirror_when_offline(self) -> ProxySpec:
        if self.offline and self.mirror is None:
            raise ValueError("offline: true needs a mirror (registry, credentials, images)")
        return self


class AuthSpec(Strict):
    """How users log in to KKP: through Dex (KKP's default broker) or an own OIDC provider.

    ``oidc_issuer`` is the issuer URL KKP is configured with, compared character for character
    with what the provider declares (AUTH-003, AUTH-004); an own provider has no default.
    """

    provider: Literal["dex", "oidc"] = "dex"
    dex_connectors: list[str] = Field(default_factory=list)
    oidc_issuer: Url | None = Field(
        None, description="issuer URL KKP uses; default for dex: https://<base_domain>[:certificates.port]/dex"
    )

    @field_validator("oidc_issuer")
    @classmethod
    def _https_issuer(cls, value: str | None) -> str | None:
        # OpenID Connect requires an https issuer without query or fragment.
        if value is None:
            return value
        match = re.fullmatch(r"https://([^/?#]+)([^?#]*)", value)
        if not match:
            raise ValueError(f"{value!r} is not an https:// URL without query or fragment, as an OIDC issuer must be")
        return value

    @model_validator(mode="after")
    def _issuer_for_oidc(self) -> AuthSpec:
        if self.provider == "oidc" and not self.oidc_issuer:
            raise ValueError("provider oidc needs oidc_issuer: the issuer URL of the own provider that KKP uses")
        return self


class InstallerSpec(Strict):
    release: str | None = Field(None, pattern=r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$",
                                description="KKP release tag, e.g. v2.28.2 (INSTALLER-001/002)")
    pull_secret: SecretRef | None = Field(None, description="EE image pull secret (dockerconfigjson)")
    ee_image: str = Field("quay.io/kubermatic/kubermatic-ee", description="the EE image INSTALLER-003/004 read")
    offline_archive: str | None = Field(None, description="path of the installer archive on the bastion "
                                                          "(offline installations, INSTALLER-002)")


class ConfigRepoSpec(Strict):
    path: str | None = None
    files: list[str] = Field(default_factory=list)
    secret_store: Literal["git-crypt", "vault", "none"] = "git-crypt"


class MachineDeploymentSpec(Strict):
    """The provider's ``cloudProviderSpec`` of a MachineDeployment, as machine-controller reads it.

    Why free-form: each provider has its own field names (camelCase, as in the MachineDeployment
    YAML the site will apply); the provider checks name what is missing and look up what it refers to.
    Secrets never go here (machine-controller takes them from the preset or the seed's credentials).
    """

    model_config = ConfigDict(extra="allow", frozen=True)


class AzureSpec(Strict):
    """Azure: a service principal (or any azure-identity credential) and the network KKP's machines use.

    Credentials: the profile's ``client_secret`` reference, else the ``AZURE_CLIENT_SECRET`` (and
    ``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``, ``AZURE_SUBSCRIPTION_ID``) variables, else whatever
    azure-identity's DefaultAzureCredential finds (workload identity, managed identity, Azure CLI).
    """

    tenant_id: str | None = Field(None, description="default: $AZURE_TENANT_ID")
    subscription_id: str | None = Field(None, description="default: $AZURE_SUBSCRIPTION_ID")
    client_id: str | None = Field(None, description="default: $AZURE_CLIENT_ID")
    client_secret: SecretRef | None = Field(None, description="default: $AZURE_CLIENT_SECRET, else "
                                                               "DefaultAzureCredential")
    authority_host: Url = Field("https://login.microsoftonline.com", description="Entra ID (sovereign clouds differ)")
    resource_manager: Url = Field("https://management.azure.com", description="Azure Resource Manager endpoint")
    ca_bundle: str | None = Field(None, description="PEM bundle trusted for both endpoints; default: system store")
    location: str
    zones: list[str] = Field(default_factory=list, description="availability zones planned (AZURE-003)")
    vm_sizes: list[str] = Field(default_factory=list, description="VM sizes that must offer those zones")
    resource_group: str
    vnet: str
    subnet: str
    subnet_cidr: AddressRange | None = None
    route_table: str | None = Field(None, description="associated with the subnet (AZURE-004)")
    security_group: str | None = Field(None, description="network security group of the subnet (AZURE-004)")
    role_scope: Literal["subscription", "resource-group"] = Field(
        "resource-group", description="where the role assignments must grant KKP's actions (AZURE-002)")
    machine_deployment: MachineDeploymentSpec | None = None


class VsphereNetwork(Strict):
    """A port group or network machines are attached to."""

    name: str
    role: Literal["management", "user-clusters"] = "user-clusters"
    cidr: AddressRange | None = None
    dhcp: bool = Field(True, description="DHCP serves it (user-cluster networks must have it)")
    tenant: str | None = Field(None, description="the cloud.tenants entry the network belongs to")


def _network_entry(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class VsphereSpec(Strict):
    """vSphere: the vCenter, the technical user and the inventory objects KKP's machines use.

    Credentials: the profile's fields, else ``GOVC_URL``, ``GOVC_USERNAME``, ``GOVC_PASSWORD``,
    ``GOVC_TLS_CA_CERTS`` and ``GOVC_TLS_KNOWN_HOSTS`` (govc's own variables). The certificate is
    always verified: a CA bundle, or a pinned SHA-256 (or SHA-1) thumbprint.
    """

    endpoint: str | None = Field(None, description="vCenter URL or host; default: $GOVC_URL")
    username: str | None = Field(None, description="default: $GOVC_USERNAME")
    password: SecretRef | None = Field(None, description="default: $GOVC_PASSWORD")
    datacenter: str
    cluster: str
    datastore: str
    resource_pool: str | None = None
    networks: list[Annotated[VsphereNetwork, BeforeValidator(_network_entry)]] = Field(min_length=1)
    folder: str | None = None
    ca_bundle: str | None = None
    thumbprint: str | None = Field(None, description="pinned certificate thumbprint, hex (colons allowed)")
    machine_deployment: MachineDeploymentSpec | None = None


class OpenstackSpec(Strict):
    """OpenStack: Keystone v3 credentials and the project's network objects.

    Credentials: the profile's fields, else the ``clouds.yaml`` entry ``cloud`` names, else the
    ``OS_*`` variables (an openrc file), as the openstack CLI reads them.
    """

    cloud: str | None = Field(None, description="entry of clouds.yaml (default: $OS_CLOUD)")
    auth_url: str | None = None
    region: str | None = None
    domain: str | None = Field(None, description="user and project domain name (default: Default)")
    project_name: str | None = None
    project_id: str | None = None
    username: str | None = None
    password: SecretRef | None = None
    application_credential_id: str | None = None
    application_credential_secret: SecretRef | None = None
    ca_bundle: str | None = Field(None, description="PEM bundle trusted for Keystone and the catalog's endpoints")
    roles: list[str] = Field(default_factory=lambda: ["member"], description="roles the user needs in the project")
    availability_zones: list[str] = Field(default_factory=list)
    network: str
    subnet_id: str | None = None
    subnet_cidr: AddressRange | None = None
    router: str | None = Field(None, description="router attaching the subnet to the external network")
    floating_ip_pool: str | None = None
    machine_deployment: MachineDeploymentSpec | None = None

    @model_validator(mode="after")
    def _credentials(self) -> OpenstackSpec:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if (self.application_credential_id is None) != (self.application_credential_secret is None):
            raise ValueError("application_credential_id and application_credential_secret go together")
        return self


class TenantSpec(Strict):
    """A tenant of the site: its own machine network(s) and its own technical user (VSPHERE-006, OPENSTACK-008)."""

    name: str
    cidrs: list[AddressRange] = Field(min_length=1)
    user: str = Field(description="the tenant's technical user, application credential or client ID")


class CloudSpec(Strict):
    """The cloud the site's machines run in, and how it joins KKP (integration option I or II)."""

    provider: CloudProvider = "none"
    integration: Literal["workers-only", "additional-seed"] | None = None
    azure: AzureSpec | None = None
    vsphere: VsphereSpec | None = None
    openstack: OpenstackSpec | None = None
    dns_servers: list[DnsServerAddress] = Field(
        default_factory=list, description="DNS servers of the cloud's machine networks (asked from the bastion)")
    worker_hosts: list[Endpoint] = Field(
        default_factory=list, description="one host (host[:ssh port]) in each worker network, reached over SSH "
                                          "through the bastion: the provider API and the seed are dialled from it")
    planned_machines: int | None = Field(None, ge=1, description="machines the cloud subnets must hold "
                                                                 "(management and user clusters)")
    headroom_percent: int = Field(25, ge=0, le=400, description="spare addresses on top of planned_machines")
    tenants: list[TenantSpec] = Field(default_factory=list)
    management_user: str | None = Field(None, description="the management components' technical user "
                                                          "(default: the provider section's user)")
    seed: str | None = Field(None, description="integration additional-seed: the seeds[] entry that runs in the cloud")
    seed_machines: list[Endpoint] = Field(default_factory=list,
                                          description="the additional seed's machines (SSH from the provisioning "
                                                      "host: the bastion)")

    @model_validator(mode="after")
    def _provider_section(self) -> CloudSpec:
        if self.provider != "none" and getattr(self, self.provider) is None:
            raise ValueError(f"provider {self.provider!r} needs a '{self.provider}:' section")
        for other in ("azure", "vsphere", "openstack"):
            if other != self.provider and getattr(self, other) is not None:
                raise ValueError(f"'{other}:' is set but provider is {self.provider!r}")
        if self.integration == "additional-seed" and self.seed is None:
            raise ValueError("integration additional-seed needs seed: the name of the seeds[] entry in the cloud")
        names = [t.name for t in self.tenants]
        if len(set(names)) != len(names):
            raise ValueError("tenant names must be unique")
        return self


EtcdClass = Literal["small", "medium", "large", "xlarge"]
PerfTargetKind = Literal["local", "node", "storageclass"]
_FIO_SIZE = r"^[1-9][0-9]*[kKmMgG]?$"


class FioSpec(Strict):
    """The fio runs of PERF-001..004: the etcd recipe, then the throughput jobs (each bounded by ``runtime``)."""

    size: str = Field("22m", pattern=_FIO_SIZE, description="etcd recipe: bytes written (fio size syntax)")
    block_size: int = Field(2300, ge=512, le=1 << 20, description="etcd recipe: bytes per write (etcd's WAL entry)")
    throughput_size: str = Field("512m", pattern=_FIO_SIZE,
                                 description="throughput jobs: bytes written by each (IOPS, then bandwidth)")
    runtime: Seconds = Field(60.0, description="upper bound of each fio job (fio --runtime): a slow disk is "
                                               "measured on what it wrote until then")


class StorageClassRunSpec(Strict):
    """PERF-002/004 (``storageclass`` target, needs --active): a Job with a PVC measures a volume."""

    image: str | None = Field(None, description="an image with fio and sh on the PATH, from a registry the "
                                                "cluster pulls from (your mirror offline); required for the target")
    volume_size: str = Field("2Gi", pattern=r"^[1-9][0-9]*(Mi|Gi)$")
    timeout: Seconds = Field(600.0, description="the whole Job: binding, pulling, both fio runs")


class EtcdEndpointSpec(Strict):
    """An etcd PERF-005 may load with ``etcdctl check perf`` (only with --active: it writes keys)."""

    endpoints: list[str] = Field(min_length=1, description="https://host:2379 client URLs")
    ca_bundle: str | None = Field(None, description="PEM CA of the etcd server certificates")
    cert_file: str | None = Field(None, description="client certificate (etcd's client-cert-auth)")
    key_file: str | None = Field(None, description="its private key")

    @field_validator("endpoints")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not re.match(r"^https?://[^/\s]+$", url):
                raise ValueError(f"{url!r}: an etcd client URL is http(s)://host:port")
        return value


class PerformanceSpec(Strict):
    """The PERF section: what is measured where, and the figures it is judged against.

    The measuring checks (fio, etcdctl check perf) load disks for minutes; they run only when the run
    selects them (``-m performance`` or ``-m benchmark``) or ``enabled`` is true.
    """

    enabled: bool = Field(False, description="run the measuring checks without -m performance")
    targets: list[PerfTargetKind] = Field(default_factory=lambda: ["node"],
                                          description="where the etcd disk is measured: local (local_directory), "
                                                      "node (each bastion.nodes entry, in etcd_data_dir), "
                                                      "storageclass (a Job with a kubermatic-fast PVC; --active)")
    local_directory: str | None = Field(None, description="the directory the local target measures in")
    etcd_data_dir: str = Field("/var/lib/etcd", description="on the nodes: fio writes in a temporary directory "
                                                            "of this directory's filesystem, removed afterwards")
    fdatasync_p99_ms: float = Field(10.0, gt=0)
    seed_etcd_class: EtcdClass = "medium"
    fast_storage_class: EtcdClass = "large"
    fio: FioSpec = Field(default_factory=FioSpec)
    storageclass: StorageClassRunSpec = Field(default_factory=StorageClassRunSpec)
    etcd: EtcdEndpointSpec | None = Field(None, description="PERF-005 loads this etcd with --active; otherwise "
                                                            "a throwaway etcd on the first target's disk")
    conformance_results: str | None = Field(None, description="PERF-007: a Sonobuoy/hydrophone results tarball, "
                                                              "or a directory with e2e.log and junit_01.xml")

    @model_validator(mode="after")
    def _targets_complete(self) -> PerformanceSpec:
        if "local" in self.targets and not self.local_directory:
            raise ValueError("targets has local: name the directory to measure in (local_directory)")
        if "storageclass" in self.targets and not self.storageclass.image:
            raise ValueError("targets has storageclass: name an image with fio (storageclass.image)")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError("targets lists a target twice")
        return self


class HandoverSpec(Strict):
    """The run's auditable artifacts: a signed manifest (``kkp-readiness verify RUN_DIR``) and the earlier runs
    it is compared with (``kkp_readiness.report.history``)."""

    signing_key: str | None = Field(None, description="Ed25519 private key (PEM or OpenSSH) that signs "
                                                      "manifest.json; unset: the manifest is written unsigned")
    signing_key_passphrase: SecretRef | None = None
    history_dir: str | None = Field(None, description="a directory of earlier runs of this site (besides the "
                                                      "run's own reports directory), relative to the profile file; "
                                                      "their trend and the changes since the previous run are shown")
    history_runs: int = Field(10, ge=2, le=100, description="how many runs (this one included) the trends show")


class ActiveSpec(Strict):
    """Active checks (``--active``): what they create and how long they wait for the cluster."""

    image: str = Field("registry.k8s.io/pause:3.10", description="image of the test pod (use your mirror offline)")
    timeout: Seconds = Field(120.0, description="wait for an external address / a bound volume")


class TimeoutsSpec(Strict):
    """Upper bounds of every probe, in seconds."""

    dns: Seconds = 3.0
    tls: Seconds = 5.0
    ssh: Seconds = 10.0
    kube: Seconds = 10.0
    http: Seconds = 10.0


class Profile(Strict):
    """A whole site description."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    base_domain: DnsName
    kkp: KkpSpec = Field(default_factory=KkpSpec)
    infra: InfraSpec = Field(default_factory=InfraSpec)
    ingress: IngressSpec
    dns: DnsSpec
    seeds: list[SeedSpec] = Field(min_length=1)
    certificates: CertificatesSpec = Field(default_factory=CertificatesSpec)
    load_balancer: LoadBalancerSpec = Field(default_factory=LoadBalancerSpec)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    mla: MlaSpec = Field(default_factory=MlaSpec)
    bastion: BastionSpec | None = None
    proxy: ProxySpec = Field(default_factory=ProxySpec)
    auth: AuthSpec = Field(default_factory=AuthSpec)
    installer: InstallerSpec = Field(default_factory=InstallerSpec)
    config_repo: ConfigRepoSpec = Field(default_factory=ConfigRepoSpec)
    cloud: CloudSpec = Field(default_factory=CloudSpec)
    performance: PerformanceSpec = Field(default_factory=PerformanceSpec)
    handover: HandoverSpec = Field(default_factory=HandoverSpec)
    waivers: str | None = Field(None, description="the waiver file (see kkp_readiness/waivers.py); --waivers wins")
    active: ActiveSpec = Field(default_factory=ActiveSpec)
    timeouts: TimeoutsSpec = Field(default_factory=TimeoutsSpec)

    @model_validator(mode="after")
    def _unique_seeds(self) -> Profile:
        names = [seed.name for seed in self.seeds]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"seed names must be unique; repeated: {', '.join(duplicates)}")
        if self.cloud.seed is not None and self.cloud.seed not in names:
            raise ValueError(f"cloud.seed {self.cloud.seed!r} is not one of the seeds ({', '.join(names)})")
        return self

    # ----- derived facts, so checks never recompute them differently -----

    def seed_domain(self, seed: SeedSpec) -> str:
        return seed.domain or f"{seed.name}.{self.base_domain}"

    def ingress_names(self) -> list[str]:
        """The names NGINX serves: the UI name plus one per exposed service."""
        services = list(self.ingress.services)
        if self.ingress.logging_ui and "kibana" not in services:
            services.append("kibana")
        return [self.base_domain, *(f"{label}.{self.base_domain}" for label in services)]

    def certificate_names(self) -> list[str]:
        """Every name the ingress certificate must cover."""
        names = self.ingress_names()
        return names + [n for n in self.certificates.extra_names if n not in names]

    def cloud_seed(self) -> SeedSpec | None:
        """The seed that runs in the cloud (integration additional-seed), else None."""
        return next((seed for seed in self.seeds if seed.name == self.cloud.seed), None)

    def facets(self) -> dict[str, set[Any]]:
        """Profile facts the catalogue's ``applies_to`` conditions are matched against."""
        lb_mode = self.load_balancer.mode
        return {
            "cloud": {self.cloud.provider},
            "expose_strategy": {seed.expose_strategy for seed in self.seeds},
            "lb_mode": {lb_mode},
            "edition": {self.kkp.edition},
            "offline": {self.proxy.offline},
            "dns_wildcard": {self.dns.wildcard},
            "cert_source": {self.certificates.source},
            "mla": {seed.mla for seed in self.seeds},
            "logging_ui": {self.ingress.logging_ui},
            "auth": {self.auth.provider},
            "integration": {self.cloud.integration} if self.cloud.integration else set(),
        }

    @staticmethod
    def seed_facets(seed: SeedSpec) -> dict[str, set[Any]]:
        """Facts of one seed, overriding the profile-wide ones for checks that target that seed."""
        return {"expose_strategy": {seed.expose_strategy}, "mla": {seed.mla}}
