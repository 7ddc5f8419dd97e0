"""VSPHERE: the vCenter KKP's machines are created in: session, privileges, inventory, networks, machine parameters.

Every check asks vCenter's vim25 API through pyvmomi (``kkp_readiness.cloud.vsphere``) with the profile's
technical user; nothing is created or changed. The privileges are asked of the privilege-check API
(``AuthorizationManager.HasUserPrivilegeOnEntities``), never found out by trying.
"""

from __future__ import annotations

from typing import Any

import pytest

from kkp_readiness.cloud import vsphere
from kkp_readiness.evidence import Evidence
from kkp_readiness.verdict import expect


def _objects(objects: list[vsphere.InventoryObject]) -> dict[str, Any]:
    return {f"{o.kind} {o.path}": {"type": o.found_type, "moid": o.moid} for o in objects}


# Ensures KKP can talk to vCenter: a verified HTTPS certificate and a session for the technical user.
@pytest.mark.requirement("VSPHERE-001")
def test_vcenter_session(vsphere_cloud: vsphere.VsphereCloud, evidence: Evidence) -> None:
    """The endpoint's certificate verifies against the CA bundle or the pinned thumbprint, and Login succeeds."""
    certificate = vsphere_cloud.certificate
    evidence.attach("vCenter certificate", {"endpoint": certificate.endpoint, "trusted_by": certificate.trusted_by,
                                            "subject": certificate.subject, "sha256": certificate.sha256,
                                            "sha1": certificate.sha1, "pinned": certificate.pinned,
                                            "problem": certificate.problem})
    subject = f"vCenter {certificate.endpoint}"
    if certificate.pinned and certificate.pinned != certificate.sha256 and certificate.pinned != certificate.sha1:
        expected = f"a certificate with the pinned thumbprint {certificate.pinned}"
        found = f"{certificate.subject} with SHA-256 thumbprint {certificate.sha256} (SHA-1 {certificate.sha1})"
    else:
        expected = f"a certificate verified by the {certificate.trusted_by}"
        found = f"{certificate.subject}: {certificate.problem}"
    expect(certificate.verified, subject, expected=expected, found=found)
    evidence.attach("vCenter session", {"user": vsphere_cloud.settings.username,
                                        "session_user": vsphere_cloud.session_user})
    expect(vsphere_cloud.session_user is not None, subject, expected=f"a session for {vsphere_cloud.settings.username}",
           found="no session")


# Ensures the technical user may do what KKP does: the documented privileges on each object it uses.
@pytest.mark.requirement("VSPHERE-002")
def test_vsphere_privileges(vsphere_cloud: vsphere.VsphereCloud, evidence: Evidence) -> None:
    """The privilege-check API grants the user every privilege KKP documents, per object the profile names."""
    facts = vsphere_cloud.privileges()
    evidence.attach("privileges", {"user": facts.user, "source": vsphere.privileges_source(),
                                   "missing": facts.missing, "not_found": facts.not_found, "checked": facts.checked})
    missing = "; ".join(f"{label} lacks {', '.join(privileges)}" for label, privileges in facts.missing.items())
    expect(not facts.missing, f"vSphere user {facts.user}",
           expected=f"the privileges {vsphere.privileges_source()} lists on each object", found=missing)


# Ensures the objects KKP's Seed datacenter spec points at exist: datacenter, cluster, datastore, pool, folder.
@pytest.mark.requirement("VSPHERE-003")
def test_vsphere_inventory(vsphere_cloud: vsphere.VsphereCloud, evidence: Evidence) -> None:
    """Datacenter, compute cluster, datastore (or datastore cluster), resource pool and VM folder exist."""
    objects = vsphere_cloud.inventory()
    evidence.attach("inventory", _objects(objects))
    problems = [o.problem for o in objects if o.problem]
    expect(not problems, f"vCenter {vsphere_cloud.settings.endpoint} inventory",
           expected="; ".join(f"{o.kind} {o.path}" for o in objects), found="; ".join(problems))


# Ensures the machines can be attached to the planned networks: each exists and reaches the cluster's hosts.
@pytest.mark.requirement("VSPHERE-004")
def test_vsphere_networks(vsphere_cloud: vsphere.VsphereCloud, evidence: Evidence) -> None:
    """Every network of the profile exists and is available on the compute cluster (its ``network`` property)."""
    facts = vsphere_cloud.networks()
    evidence.attach("networks", {"cluster": facts.cluster.path, "on_cluster": facts.attached,
                                 "profile": _objects(facts.networks)})
    expect(facts.cluster.exists, f"cluster {facts.cluster.path}", expected="an existing compute cluster",
           found=facts.cluster.problem or "")
    problems = facts.problems()
    expect(not problems, f"networks of cluster {facts.cluster.path}",
           expected=f"{', '.join(n.path for n in facts.networks)} on the cluster",
           found="; ".join(problems) + f" (the cluster has: {', '.join(facts.attached) or 'none'})")


# Ensures machine-controller can create machines: the cloudProviderSpec is complete and its objects exist.
@pytest.mark.requirement("VSPHERE-012")
def test_vsphere_machine_deployment(vsphere_cloud: vsphere.VsphereCloud, evidence: Evidence) -> None:
    """The machine deployment holds every field machine-controller needs, and the template VM and the other
    objects it names exist."""
    facts = vsphere_cloud.machine_deployment()
    expect(facts is not None, "cloud.vsphere.machine_deployment",
           expected="machine-controller's vSphere cloudProviderSpec (templateVMName, datacenter, cluster, folder, "
                    "datastore, networks, cpus, memoryMB, diskSizeGB)", found="none in the profile")
    assert facts is not None
    evidence.attach("machine deployment", {"spec": facts.spec, "field_problems": facts.field_problems,
                                           "objects": _objects(facts.objects)})
    problems = facts.problems()
    expect(not problems, "vSphere machine deployment",
           expected="every required field, and " + "; ".join(f"{o.kind} {o.path}" for o in facts.objects),
           found="; ".join(problems))
