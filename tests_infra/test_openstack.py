"""OPENSTACK: credentials, roles, region and zones, the project's network objects, machine deployment parameters.

Each check asks the cloud through the ``openstack_cloud`` fixture (openstacksdk, authenticated once).
Reachability from the seed and worker networks, the DNS servers and the integration options are
shared with the other providers (``test_cloud.py``); the tenant plan is arithmetic (``test_cloud_plan.py``).
"""

from __future__ import annotations

import pytest

from kkp_readiness.cloud.capacity import SubnetCapacity
from kkp_readiness.cloud.openstack import OpenstackCloud
from kkp_readiness.evidence import Evidence
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect

#: machine-controller's OpenStack cloudProviderSpec fields KKP's machine deployments need.
MACHINE_FIELDS = ("image", "flavor", "network", "subnet", "floatingIPPool", "securityGroups", "availabilityZone",
                  "region")


# Ensures the credentials give KKP a token for the project the profile plans, not merely any token.
@pytest.mark.requirement("OPENSTACK-001")
def test_credentials_authenticate(openstack_cloud: OpenstackCloud, evidence: Evidence) -> None:
    """The rule: Keystone issued a project-scoped token (the fixture's token request, 201), and its project is
    the profile's ``project_id`` (else its ``project_name``)."""
    token = openstack_cloud.token()
    spec = openstack_cloud.spec
    evidence.attach("token", {"user": token.user, "project": f"{token.project_name} ({token.project_id})",
                              "methods": list(token.methods), "credentials from": list(openstack_cloud.sources)})
    if spec.project_id:
        expect(token.project_id == spec.project_id, "the project of the Keystone token",
               expected=f"project ID {spec.project_id} (cloud.openstack.project_id)",
               found=f"{token.project_name} ({token.project_id or 'unscoped'})")
    else:
        expect(bool(token.project_id) and token.project_name == spec.project_name, "the project of the Keystone token",
               expected=f"a token scoped to project {spec.project_name}",
               found=f"{token.project_name or 'an unscoped token'}")


# Ensures the user may create what KKP and the cloud controller manager create in the project.
@pytest.mark.requirement("OPENSTACK-002")
def test_user_holds_the_roles(openstack_cloud: OpenstackCloud, evidence: Evidence) -> None:
    """The rule: every role of ``cloud.openstack.roles`` (default ``member``) is among the token's roles."""
    roles = set(openstack_cloud.token().roles)
    required = list(openstack_cloud.spec.roles)
    missing = [role for role in required if role not in roles]
    evidence.attach("roles", {"token": sorted(roles), "required": required})
    token = openstack_cloud.token()
    expect(not missing, f"the roles of {token.user} in project {token.project_name}",
           expected=f"roles {', '.join(required)}", found=f"roles {', '.join(sorted(roles)) or 'none'}; "
                                                          f"missing {', '.join(missing)}")


# Ensures machines can be placed where the profile plans them.
@pytest.mark.requirement("OPENSTACK-003")
def test_region_and_zones_exist(openstack_cloud: OpenstackCloud, evidence: Evidence) -> None:
    """The rule: the region is in the token's catalog; each planned zone is listed by Nova and available."""
    spec = openstack_cloud.spec
    token = openstack_cloud.token()
    zones = openstack_cloud.zones()
    evidence.attach("region and zones", {"catalog regions": sorted(token.regions), "nova zones": zones})
    if spec.region:
        expect(spec.region in token.regions, "the regions of the Keystone catalog",
               expected=f"region {spec.region} (cloud.openstack.region)",
               found=f"regions {', '.join(sorted(token.regions)) or 'none'}")
    problems = [f"{zone} {'not available' if zone in zones else 'not listed'}"
                for zone in spec.availability_zones if not zones.get(zone)]
    expect(not problems, "Nova's availability zones",
           expected=f"{', '.join(spec.availability_zones)} listed and available",
           found=f"{'; '.join(problems)} (Nova lists {', '.join(f'{z}: {a}' for z, a in zones.items()) or 'none'})")


# Ensures machines get an address on the planned subnet and a way out through a router.
@pytest.mark.requirement("OPENSTACK-004")
def test_network_subnet_and_router_exist(openstack_cloud: OpenstackCloud, evidence: Evidence) -> None:
    """The rule: the network exists; the subnet (``subnet_id``, else the network's first) belongs to it and has
    the planned CIDR; a router (``cloud.openstack.router`` when named) has an interface on the subnet and its
    gateway on an external network."""
    spec = openstack_cloud.spec
    network = openstack_cloud.network(spec.network)
    expect(network is not None, f"network {spec.network}", expected="it exists in the project",
           found="no such network")
    assert network is not None
    subnet_id = spec.subnet_id or (network.subnet_ids[0] if network.subnet_ids else None)
    subnet = openstack_cloud.subnet(subnet_id) if subnet_id else None
    routers = openstack_cloud.routers()
    evidence.attach("network objects", {"network": network.__dict__, "subnet": subnet.__dict__ if subnet else None,
                                        "routers": [r.__dict__ for r in routers]})
    expect(subnet is not None and subnet.network_id == network.id, f"the subnet of network {spec.network}",
           expected=f"subnet {subnet_id or '(any)'} in network {network.id}",
           found="no such subnet" if subnet is None else f"it belongs to network {subnet.network_id}")
    assert subnet is not None
    if spec.subnet_cidr:
        expect(subnet.cidr == spec.subnet_cidr, f"subnet {subnet.id}", expected=f"CIDR {spec.subnet_cidr}",
               found=f"CIDR {subnet.cidr}")
    candidates = [r for r in routers if spec.router in (None, r.name, r.id)]
    attached = [r for r in candidates if subnet.id in r.interface_subnet_ids]
    external_ids = {n.id for n in openstack_cloud.external_networks()}
    routed = [r for r in attached if r.external_network_id in external_ids]
    expect(bool(routed), f"router {spec.router or '(any)'} for subnet {subnet.name or subnet.id}",
           expected="an interface on the subnet and its gateway on an external network",
           found=("no such router" if not candidates else
                  "no interface on the subnet" if not attached else "no gateway on an external network"))


# Ensures user clusters' load balancers and nodes can get public addresses.
@pytest.mark.requirement("OPENSTACK-005")
def test_floating_ip_pool_exists(openstack_cloud: OpenstackCloud, evidence: Evidence) -> None:
    """The rule: ``floating_ip_pool`` names an external network the project sees, and the project's floating
    IP quota has room (Neutron's per-network IP availability is added to the evidence where policy shows it)."""
    spec = openstack_cloud.spec
    externals = openstack_cloud.external_networks()
    pool = spec.floating_ip_pool
    expect(pool is not None, "cloud.openstack.floating_ip_pool", expected="the name of the floating IP pool",
           found="not set")
    matches = [n for n in externals if pool in (n.name, n.id)]
    quota = openstack_cloud.floating_ip_quota()
    availability = openstack_cloud.ip_availability(matches[0].id) if matches else None
    evidence.attach("floating IP pool", {
        "external networks": [n.name for n in externals],
        "quota": {"limit": quota.limit, "used": quota.used} if quota else None,
        "ip availability": {"total": availability[0], "used": availability[1]} if availability
        else "not visible to the project (Neutron policy)"})
    expect(bool(matches), f"floating IP pool {pool}", expected="an external network visible to the project",
           found=f"external networks: {', '.join(n.name for n in externals) or 'none'}")
    if quota is not None and quota.free is not None:
        expect(quota.free > 0, "the project's floating IP quota", expected="at least one floating IP free",
               found=f"{quota.used} of {quota.limit} used")
    if availability is not None:
        expect(availability[1] < availability[0], f"floating IP pool {pool}", expected="free addresses",
               found=f"{availability[1]} of {availability[0]} addresses used")


def _planned_subnet(openstack_cloud: OpenstackCloud) -> object:
    spec = openstack_cloud.spec
    network = openstack_cloud.network(spec.network)
    subnet_id = spec.subnet_id or (network.subnet_ids[0] if network and network.subnet_ids else None)
    subnet = openstack_cloud.subnet(subnet_id) if subnet_id else None
    expect(subnet is not None, f"the subnet of network {spec.network}", expected="it exists (OPENSTACK-004)",
           found="no subnet")
    return subnet


# Ensures autoscaling never runs out of addresses on the machines' subnet.
@pytest.mark.requirement("OPENSTACK-006")
def test_subnet_holds_the_planned_machines(openstack_cloud: OpenstackCloud, profile: Profile,
                                           evidence: Evidence) -> None:
    """The rule (``cloud.capacity``): the allocation pools hold ``planned_machines`` plus ``headroom_percent``;
    without a planned count the subnet is at least a /24."""
    subnet = _planned_subnet(openstack_cloud)
    capacity = SubnetCapacity(subnet.cidr, subnet.pool_addresses())
    evidence.attach("subnet capacity", {"cidr": subnet.cidr, "allocation pools": subnet.allocation_pools,
                                        "usable": capacity.usable, "planned machines": profile.cloud.planned_machines,
                                        "headroom %": profile.cloud.headroom_percent})
    problem = capacity.problem(profile.cloud.planned_machines, profile.cloud.headroom_percent)
    expect(problem is None, f"subnet {subnet.name or subnet.id}",
           expected="room for the planned machines plus headroom", found=problem or "")


# Ensures machines KKP creates get their addresses, as KKP's machine provisioning needs DHCP.
@pytest.mark.requirement("OPENSTACK-007")
def test_subnet_has_dhcp(openstack_cloud: OpenstackCloud, evidence: Evidence) -> None:
    """The rule: the machines' subnet has ``enable_dhcp: true``."""
    subnet = _planned_subnet(openstack_cloud)
    evidence.attach("subnet", {"id": subnet.id, "cidr": subnet.cidr, "enable_dhcp": subnet.enable_dhcp})
    expect(subnet.enable_dhcp, f"subnet {subnet.name or subnet.id}", expected="enable_dhcp true",
           found="enable_dhcp false: machines would get no address (user clusters without DHCP are unsupported)")


# Ensures a MachineDeployment with the profile's parameters can be created: nothing missing, nothing dangling.
@pytest.mark.requirement("OPENSTACK-011")
def test_machine_deployment_parameters(openstack_cloud: OpenstackCloud, evidence: Evidence) -> None:
    """The rule: ``machine_deployment`` holds every field of ``MACHINE_FIELDS``, and its image, flavor, network,
    subnet, floating IP pool, security groups and zone exist (region: in the catalog)."""
    spec = openstack_cloud.spec
    given = spec.machine_deployment.model_dump() if spec.machine_deployment else {}
    missing = [name for name in MACHINE_FIELDS if given.get(name) in (None, "", [])]
    evidence.attach("cloudProviderSpec", given)
    expect(not missing, "cloud.openstack.machine_deployment", expected=f"fields {', '.join(MACHINE_FIELDS)}",
           found=f"missing {', '.join(missing)}")
    groups = given["securityGroups"] if isinstance(given["securityGroups"], list) else [given["securityGroups"]]
    network = openstack_cloud.network(given["network"])
    checks = {
        f"image {given['image']}": openstack_cloud.image_exists(given["image"]),
        f"flavor {given['flavor']}": given["flavor"] in openstack_cloud.flavors(),
        f"network {given['network']}": network is not None,
        f"subnet {given['subnet']}": openstack_cloud.subnet(given["subnet"]) is not None,
        f"floating IP pool {given['floatingIPPool']}": any(
            given["floatingIPPool"] in (n.name, n.id) for n in openstack_cloud.external_networks()),
        **{f"security group {g}": g in openstack_cloud.security_groups() for g in groups},
        f"availability zone {given['availabilityZone']}": bool(openstack_cloud.zones().get(given["availabilityZone"])),
        f"region {given['region']}": given["region"] in openstack_cloud.token().regions,
    }
    evidence.attach("referenced objects", checks)
    dangling = [name for name, exists in checks.items() if not exists]
    expect(not dangling, "the objects cloud.openstack.machine_deployment refers to", expected="each exists",
           found=f"not found: {', '.join(dangling)}")
