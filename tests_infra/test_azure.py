"""AZURE: credentials, permissions, locations and zones, the VNet and subnet, machine deployment parameters.

Each check asks Azure through the ``azure_cloud`` fixture (azure-identity and the azure-mgmt clients,
authenticated once: a refused secret ends every check here as ``error`` with Entra ID's reason).
Reachability from the seed and worker networks, the DNS servers and the integration options are
shared with the other providers.
"""

from __future__ import annotations

from typing import Any

import pytest

from kkp_readiness.cloud import azure
from kkp_readiness.cloud.azure import AzureCloud
from kkp_readiness.cloud.capacity import SubnetCapacity, azure_usable
from kkp_readiness.evidence import Evidence
from kkp_readiness.profile_model import Profile
from kkp_readiness.verdict import expect


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").lower() == (b or "").lower()


# Ensures the service principal signs in to Entra ID and sees the subscription KKP will use.
@pytest.mark.requirement("AZURE-001")
def test_credentials_authenticate(azure_cloud: AzureCloud, evidence: Evidence) -> None:
    """The rule: Entra ID issued a Resource Manager token (the fixture's sign-in; a refusal is an error with its
    AADSTS reason), and the subscription the profile names is readable, enabled and in the profile's tenant."""
    subscription = azure_cloud.subscription()
    choice = azure_cloud.choice
    evidence.attach("sign-in", {"credential": choice.source, "tenant": choice.tenant_id, "client": choice.client_id,
                                "object id (token oid)": azure_cloud.object_id,
                                "subscription": subscription.__dict__ if subscription else None})
    subject = f"Azure subscription {azure_cloud.subscription_id}"
    expect(subscription is not None, subject, expected="the subscription is readable with the principal's token",
           found="Resource Manager answers 404: not found for this principal (wrong ID, or no role in it)")
    assert subscription is not None
    expect(subscription.state == "Enabled", subject, expected="state Enabled",
           found=f"state {subscription.state} ({subscription.display_name})")
    if choice.tenant_id:
        expect(_same(subscription.tenant_id, choice.tenant_id), subject,
               expected=f"a subscription of tenant {choice.tenant_id}", found=f"tenant {subscription.tenant_id}")


# Ensures machine-controller and the Azure cloud provider may create and change what they manage.
@pytest.mark.requirement("AZURE-002")
def test_principal_holds_the_permissions(azure_cloud: AzureCloud, evidence: Evidence) -> None:
    """The rule: the union of the principal's role assignments that apply at ``cloud.azure.role_scope`` (the
    resource group, or the subscription) grants every action of ``azure.REQUIRED_ACTIONS``; a role's
    ``notActions`` remove actions from its own ``actions`` (wildcards as Azure RBAC matches them)."""
    scope = azure_cloud.scope()
    grants = azure_cloud.role_grants(scope)
    missing = azure.missing_actions(azure.REQUIRED_ACTIONS, grants)
    evidence.attach("role assignments", {
        "scope": scope, "principal (object id)": azure_cloud.object_id,
        "assignments": [{"role": g.role_name, "scope": g.scope, "id": g.assignment_id,
                         "permissions": [{"actions": list(p.actions), "notActions": list(p.not_actions)}
                                         for p in g.permissions]} for g in grants],
        "required actions": list(azure.REQUIRED_ACTIONS), "not granted": missing})
    roles = ", ".join(f"{g.role_name} at {g.scope}" for g in grants) or "no role assignment"
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    expect(not missing, f"the permissions of principal {azure_cloud.object_id} at {scope}",
           expected="role assignments granting VM, disk, NIC, load balancer, public IP, route table and security "
                    "group management (e.g. Contributor)",
           found=f"{roles}; not granted: {shown}")


# Ensures machines can be placed in the planned location and zones with the planned VM sizes.
@pytest.mark.requirement("AZURE-003")
def test_location_and_zones_offered(azure_cloud: AzureCloud, evidence: Evidence) -> None:
    """The rule: the location is among the subscription's locations; it has each planned zone; each planned VM
    size (``vm_sizes``, else the machine deployment's ``vmSize``) is offered there, in every planned zone, with
    no restriction for the subscription."""
    spec = azure_cloud.spec
    locations = {loc.name.lower(): loc for loc in azure_cloud.locations()}
    location = locations.get(spec.location.lower())
    evidence.attach("locations", {name: list(loc.zones) for name, loc in sorted(locations.items())})
    expect(location is not None, f"Azure location {spec.location}",
           expected="a location enabled for the subscription",
           found=f"not among the subscription's {len(locations)} locations")
    assert location is not None
    zones = list(spec.zones)
    missing_zones = [z for z in zones if z not in location.zones]
    expect(not missing_zones, f"availability zones of {spec.location}", expected=f"zones {', '.join(zones)}",
           found=f"zones {', '.join(location.zones) or 'none'} (missing {', '.join(missing_zones)})")
    md_size = (spec.machine_deployment.model_extra or {}).get("vmSize") if spec.machine_deployment else None
    sizes = list(spec.vm_sizes) or ([md_size] if md_size else [])
    if not sizes:
        return
    skus = azure_cloud.vm_skus(location.name)
    evidence.attach(f"VM sizes in {location.name}", {
        size: ({"zones": list(skus[size].zones), "restricted zones": list(skus[size].restricted_zones),
                "restricted in the location": skus[size].location_restricted} if size in skus else None)
        for size in sizes})
    problems = []
    for size in sizes:
        sku = skus.get(size)
        if sku is None:
            problems.append(f"{size} is not offered")
        elif sku.location_restricted:
            problems.append(f"{size} is restricted for the subscription ({'; '.join(sku.reasons)})")
        elif zones and set(zones) - set(sku.offered_zones):
            absent = sorted(set(zones) - set(sku.offered_zones))
            problems.append(f"{size} is offered in zones {', '.join(sku.offered_zones) or 'none'}, not in "
                            f"{', '.join(absent)}" + (f" ({'; '.join(sku.reasons)})" if sku.reasons else ""))
    expect(not problems, f"VM sizes in {location.name}",
           expected=f"{', '.join(sizes)} offered" + (f" in zones {', '.join(zones)}" if zones else ""),
           found="; ".join(problems))


def _network_problems(cloud: AzureCloud) -> tuple[list[str], dict[str, Any]]:
    spec = cloud.spec
    group = spec.resource_group
    if not cloud.resource_group_exists(group):
        return [f"resource group {group} does not exist"], {"resource group": None}
    vnet = cloud.vnet(group, spec.vnet)
    if vnet is None:
        return [f"virtual network {spec.vnet} does not exist in resource group {group}"], {"vnet": None}
    subnet = cloud.subnet(group, spec.vnet, spec.subnet)
    facts: dict[str, Any] = {"vnet": vnet.__dict__, "subnet": subnet.__dict__ if subnet else None}
    if subnet is None:
        return [f"subnet {spec.subnet} does not exist in {spec.vnet} (it has {', '.join(vnet.subnets) or 'none'})"], \
            facts
    problems = []
    if spec.route_table and not _same(subnet.route_table, spec.route_table):
        problems.append(f"route table {subnet.route_table or 'none'} associated, not {spec.route_table}")
    if spec.security_group and not _same(subnet.security_group, spec.security_group):
        problems.append(f"network security group {subnet.security_group or 'none'} associated, "
                        f"not {spec.security_group}")
    if spec.subnet_cidr and str(spec.subnet_cidr) not in subnet.address_prefixes:
        problems.append(f"address prefix {', '.join(subnet.address_prefixes)}, not {spec.subnet_cidr} "
                        "(cloud.azure.subnet_cidr)")
    return problems, facts


# Ensures the machines' network exists as planned: VNet, subnet, and the subnet's route table and security group.
@pytest.mark.requirement("AZURE-004")
def test_vnet_and_subnet(azure_cloud: AzureCloud, evidence: Evidence) -> None:
    """The rule: the resource group, the VNet in it and the subnet in the VNet exist; the subnet has the profile's
    route table and network security group associated (when the profile names them) and its address prefix
    is ``subnet_cidr`` (when given)."""
    spec = azure_cloud.spec
    problems, facts = _network_problems(azure_cloud)
    evidence.attach("network", facts)
    wanted = [f"subnet {spec.subnet} in VNet {spec.vnet} of resource group {spec.resource_group}"]
    if spec.route_table:
        wanted.append(f"route table {spec.route_table}")
    if spec.security_group:
        wanted.append(f"network security group {spec.security_group}")
    expect(not problems, f"Azure subnet {spec.resource_group}/{spec.vnet}/{spec.subnet}",
           expected=" with ".join(wanted[:1]) + (f" with {' and '.join(wanted[1:])} associated" if wanted[1:] else ""),
           found="; ".join(problems))


# Ensures the subnet has addresses for every planned machine plus the reserve.
@pytest.mark.requirement("AZURE-005")
def test_subnet_capacity(azure_cloud: AzureCloud, profile: Profile, evidence: Evidence) -> None:
    """The rule: each address prefix of the subnet, less the five addresses Azure reserves, holds
    ``cloud.planned_machines`` plus ``cloud.headroom_percent`` (without a planned count: at least a /24)."""
    spec = azure_cloud.spec
    subnet = azure_cloud.subnet(spec.resource_group, spec.vnet, spec.subnet)
    subject = f"Azure subnet {spec.vnet}/{spec.subnet}"
    planned, headroom = profile.cloud.planned_machines, profile.cloud.headroom_percent
    expect(subnet is not None, subject, expected="an existing subnet to hold the machines",
           found="the subnet does not exist")
    assert subnet is not None
    capacities = [SubnetCapacity(prefix, azure_usable(prefix)) for prefix in subnet.address_prefixes]
    evidence.attach("capacity", {"prefixes": {c.cidr: c.usable for c in capacities}, "planned machines": planned,
                                 "headroom percent": headroom})
    problems = [p for p in (c.problem(planned, headroom) for c in capacities) if p]
    expect(bool(capacities) and not problems, subject,
           expected=(f"room for {planned} machines + {headroom} % headroom" if planned else "at least a /24"),
           found="; ".join(problems) or "no address prefix")


def _md_reference_problems(cloud: AzureCloud, md: dict[str, Any]) -> list[str]:
    problems = []
    for field, value in (("subscriptionID", cloud.subscription_id), ("tenantID", cloud.choice.tenant_id),
                         ("clientID", cloud.choice.client_id)):
        given = md.get(field)
        if isinstance(given, str) and value and not _same(given, value):
            problems.append(f"{field} {given} is not the profile's {value}")
    group = md["resourceGroup"]
    vnet_group = md.get("vnetResourceGroup") or group
    if not cloud.resource_group_exists(group):
        problems.append(f"resource group {group} does not exist")
    if cloud.vnet(vnet_group, md["vnetName"]) is None:
        problems.append(f"virtual network {vnet_group}/{md['vnetName']} does not exist")
    elif cloud.subnet(vnet_group, md["vnetName"], md["subnetName"]) is None:
        problems.append(f"subnet {md['subnetName']} does not exist in {md['vnetName']}")
    if not cloud.route_table_exists(group, md["routeTableName"]):
        problems.append(f"route table {group}/{md['routeTableName']} does not exist")
    if not cloud.security_group_exists(group, md["securityGroupName"]):
        problems.append(f"network security group {group}/{md['securityGroupName']} does not exist")
    sku = cloud.vm_skus(md["location"]).get(md["vmSize"])
    zones = [str(z) for z in md.get("zones") or []]
    if sku is None or sku.location_restricted:
        problems.append(f"VM size {md['vmSize']} is not offered in {md['location']}")
    elif set(zones) - set(sku.offered_zones):
        problems.append(f"VM size {md['vmSize']} is not offered in zone(s) "
                        f"{', '.join(sorted(set(zones) - set(sku.offered_zones)))} of {md['location']}")
    if md.get("imageID"):
        if not cloud.image_exists(str(md["imageID"])):
            problems.append(f"image {md['imageID']} does not exist")
    elif not cloud.marketplace_image_exists(md["location"], md["imageReference"]):
        reference = md["imageReference"]
        problems.append(f"marketplace image {reference.get('publisher')}:{reference.get('offer')}:"
                        f"{reference.get('sku')}:{reference.get('version')} is not offered in {md['location']}")
    return problems


# Ensures the machine deployments KKP will create are complete and point at objects that exist.
@pytest.mark.requirement("AZURE-008")
def test_machine_deployment_parameters(azure_cloud: AzureCloud, evidence: Evidence) -> None:
    """The rule: ``cloud.azure.machine_deployment`` (machine-controller's Azure ``cloudProviderSpec``) has every
    field of ``azure.MD_REQUIRED_FIELDS``, the IDs (or secretKeyRefs) and one image (``imageID`` or a complete
    ``imageReference``); the resource group, VNet, subnet, route table, security group, image exist and the VM
    size is offered in its location (and zones)."""
    spec = azure_cloud.spec
    subject = "the Azure machine deployment (cloud.azure.machine_deployment)"
    expect(spec.machine_deployment is not None, subject, expected="machine-controller's cloudProviderSpec fields",
           found="no machine_deployment in the profile")
    assert spec.machine_deployment is not None
    md = dict(spec.machine_deployment.model_extra or {})
    evidence.attach("cloudProviderSpec", md)
    problems = azure.machine_deployment_problems(md)
    expect(not problems, subject, expected=f"fields {', '.join(azure.MD_REQUIRED_FIELDS)}, "
                                           f"{', '.join(azure.MD_CREDENTIAL_FIELDS)} and an image",
           found="; ".join(problems))
    problems = _md_reference_problems(azure_cloud, md)
    expect(not problems, subject, expected="every object it names exists (resource group, VNet, subnet, route table, "
                                           "security group, image) and the VM size is offered",
           found="; ".join(problems))
