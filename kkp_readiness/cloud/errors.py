"""The cloud probes' errors: all are ``ProbeError`` (the check ends as ``error``, never ``fail``)."""

from __future__ import annotations

from kkp_readiness.errors import ProbeError


class CloudProbeError(ProbeError):
    """The provider's API could not be asked: no credentials, refused authentication, unreachable, a 5xx."""


class MissingExtra(CloudProbeError):
    """The provider's SDK is not installed; the message names the extra that installs it."""


class CredentialsMissing(CloudProbeError):
    """Neither the profile nor the provider's usual places (variables, files) give a credential."""


class AuthenticationFailed(CloudProbeError):
    """The provider refused the credentials; the message carries the provider's reason."""
