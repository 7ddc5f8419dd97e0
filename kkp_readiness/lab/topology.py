"""Fixed names and addresses of the lab site.

The ``lab`` profile (and the integration tests) are written against these constants, so they
are fixed values rather than options: changing one here changes what the profile must expect.
Every address is on loopback (127.0.0.0/8); the lab never listens or connects anywhere else.
"""

from __future__ import annotations

import ipaddress

from kkp_readiness.errors import LabError

BASE_DOMAIN = "kkp.lab"
SEED_NAME = "seed"
SEED_DOMAIN = f"{SEED_NAME}.{BASE_DOMAIN}"

#: Where the DNS servers listen (each on its own free port).
DNS_ADDRESS = "127.0.0.1"
#: Where NGINX (the stand-in for KKP's ingress controller) listens, on a free port.
INGRESS_ADDRESS = "127.0.0.10"
#: What ``*.seed.kkp.lab`` points at: the seed's nodeport-proxy load balancer.
NODEPORT_PROXY_ADDRESS = "127.0.0.11"
#: An address no lab part listens on, used by faults that publish a wrong record.
WRONG_ADDRESS = "127.0.0.99"

#: Where the lab bastion's sshd listens (on a free port); node connections it forwards come from here.
BASTION_ADDRESS = "127.0.0.1"
#: Where the sshd standing for a seed node listens: cp-1's InternalIP in the lab cluster.
NODE_ADDRESS = "127.0.1.1"
#: Where the sshd standing for a host in the cloud's worker network listens (reached through the bastion only).
WORKER_ADDRESS = "127.0.2.1"

#: Where the lab's Kubernetes API server listens (on a free port), and the names in its certificate.
KUBEAPI_ADDRESS = "127.0.0.1"
KUBEAPI_NAME = f"kubernetes.{BASE_DOMAIN}"
#: The context (and cluster) name in the lab's kubeconfigs.
KUBE_CONTEXT = "kkp-lab"

#: The own OpenID Connect provider (a Keycloak stand-in, for profiles with ``auth.provider: oidc``): NGINX on
#: the ingress address serves it under its own name and certificate, its issuer is
#: ``https://sso.kkp.lab:<ingress https port>/realms/kkp``. Dex is served under ``BASE_DOMAIN`` at ``/dex``.
OIDC_PROVIDER_NAME = f"sso.{BASE_DOMAIN}"
OIDC_REALM_PATH = "/realms/kkp"

#: Services published through the master ingress as ``<service>.kkp.lab``.
INGRESS_SERVICES = ("grafana", "prometheus", "alertmanager")
#: Seed MLA services published through the ingress as ``<service>.seed.kkp.lab``.
SEED_MLA_SERVICES = ("grafana", "alertmanager")

#: ``grafana.kkp.lab``, ``prometheus.kkp.lab``, ``alertmanager.kkp.lab``.
INGRESS_NAMES = tuple(f"{service}.{BASE_DOMAIN}" for service in INGRESS_SERVICES)
#: ``grafana.seed.kkp.lab``, ``alertmanager.seed.kkp.lab``.
SEED_MLA_NAMES = tuple(f"{service}.{SEED_DOMAIN}" for service in SEED_MLA_SERVICES)

#: The site's forward proxy (tinyproxy) and the offline mirror registry: names in the lab zone that the
#: lab DNS maps to the lab's egress address (chosen per lab, see ``LabContext.egress_address``).
PROXY_NAME = f"proxy.{BASE_DOMAIN}"
MIRROR_NAME = f"registry.{BASE_DOMAIN}"
#: The KKP release the lab "publishes" (github.com and quay.io stand-ins, the mirror) and the lab profile pins.
LAB_RELEASE = "v2.28.2"
#: Where the per-lab egress addresses are drawn from (a /10 of loopback no fixed lab address uses).
EGRESS_RANGE = "127.64.0.0/10"

_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def is_loopback(address: str) -> bool:
    """Tell whether ``address`` is an IPv4 loopback address (the only kind the lab may use)."""
    try:
        return ipaddress.ip_address(address) in _LOOPBACK
    except ValueError:
        return False


def require_loopback(address: str) -> str:
    """Return ``address`` unchanged, or raise ``LabError`` if it is not in 127.0.0.0/8.

    Every place that binds or connects goes through this guard so that a typo can never make
    the lab listen on a real interface.
    """
    if not is_loopback(address):
        raise LabError(f"the lab only uses loopback addresses (127.0.0.0/8), refusing {address!r}")
    return address
