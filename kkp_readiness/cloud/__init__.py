"""Cloud provider probes: one module per provider, each returning facts (dataclasses) the checks judge.

The SDKs are optional extras (``pip install 'kkp-readiness[openstack]'``, ``[azure]``, ``[vsphere]``):
``extras.require`` imports one or raises ``MissingExtra``, a probe error naming the extra, so a check
ends as ``error`` with what to install instead of the run crashing on an import.

Every failure to look (no credentials, authentication refused, API unreachable) is a
``CloudProbeError`` carrying the provider's own reason; secrets and tokens the probes handle are
registered with ``redact`` before any request is made, so no artifact can hold them.
"""
