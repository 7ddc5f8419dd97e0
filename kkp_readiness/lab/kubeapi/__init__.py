"""The lab's Kubernetes API test server and the ``kubeapi`` lab part that runs it.

No kube-apiserver can be installed from the registries the project reaches, so the lab serves a
cluster fixture (``kkp_readiness/lab/clusters/*.yaml``) through a small HTTPS server that speaks
the real REST paths, JSON shapes, bearer-token auth, ``Status`` errors and discovery of the
Kubernetes API: the official ``kubernetes`` client and ``kubectl`` work against it unchanged.

Modules: ``resources`` (served kinds), ``cluster`` (fixture format and the plan faults edit),
``selectors``, ``store`` (objects, resourceVersions, simulated controllers), ``tables``
(``kubectl get`` output), ``server`` (HTTP), ``part`` (the lab part), ``__main__`` (the process).
"""

from __future__ import annotations

from kkp_readiness.lab.kubeapi.cluster import HEALTHY_FIXTURE, READER, RESTRICTED, Cluster, KubePlan, TokenSpec
from kkp_readiness.lab.kubeapi.part import KubeApiPart, LoggedRequest, read_request_log

__all__ = [
    "HEALTHY_FIXTURE",
    "READER",
    "RESTRICTED",
    "Cluster",
    "KubeApiPart",
    "KubePlan",
    "LoggedRequest",
    "TokenSpec",
    "read_request_log",
]
