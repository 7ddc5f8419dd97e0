"""Typed errors, one per domain.

A probe raises a ``ProbeError`` when it *could not look* (timeout, refused connection,
missing credentials). The plugin turns these into the ``error`` verdict, so that
"could not look" never reads as "looked and it is wrong" (``fail``).
"""

from __future__ import annotations


class KkpReadinessError(Exception):
    """Base of every error this package raises on purpose."""


class ProfileError(KkpReadinessError):
    """A profile could not be loaded or is invalid; the run stops with exit code 2."""


class CatalogueError(KkpReadinessError):
    """The requirement catalogue is malformed, or a test names an unknown id."""


class ProbeError(KkpReadinessError):
    """A probe could not observe the world; the check ends as ``error``, not ``fail``."""


class DnsProbeError(ProbeError):
    """A DNS server did not answer (timeout, refused, malformed response)."""


class TlsProbeError(ProbeError):
    """No TLS handshake could be made with an endpoint (refused, timeout, protocol error)."""


class HttpProbeError(ProbeError):
    """No JSON document could be fetched over HTTPS (refused, timeout, handshake, HTTP status, body)."""


class LabError(KkpReadinessError):
    """The local lab could not be started, found or stopped."""


class KubeProbeError(ProbeError):
    """The Kubernetes API could not be read: unreachable, unauthorised, forbidden (RBAC), timeout."""
