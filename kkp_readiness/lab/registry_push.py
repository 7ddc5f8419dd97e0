"""Fill the lab's registries with small, valid images (the lab's own set-up, never a check).

The registries are real (docker-registry), so the images must be real too: a config blob and one
layer (an empty tar, gzip-compressed), referenced by a Docker v2 schema-2 manifest, uploaded through
the registry's own API (a blob upload session per blob, then ``PUT`` of the manifest). A manifest ``HEAD``
then answers exactly as for a mirrored KKP image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

from kkp_readiness.errors import LabError

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class TinyImage:
    """The blobs and manifest of a minimal linux/amd64 image."""

    config: bytes
    layer: bytes
    manifest: bytes

    @classmethod
    def build(cls) -> TinyImage:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w"):
            pass
        layer = gzip.compress(raw.getvalue(), mtime=0)
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [_digest(raw.getvalue())]}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                       "digest": _digest(config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer),
                        "digest": _digest(layer)}],
        }).encode()
        return cls(config, layer, manifest)


def push(pool: urllib3.HTTPConnectionPool, repository: str, tag: str, headers: dict[str, str],
         image: TinyImage | None = None) -> None:
    """Upload ``image`` as ``repository:tag`` to the registry behind ``pool``; LabError on any refusal."""
    image = image or TinyImage.build()
    for blob in (image.config, image.layer):
        started = pool.request("POST", f"/v2/{repository}/blobs/uploads/", headers=headers)
        location = started.headers.get("Location", "")
        if started.status != 202 or not location:
            raise LabError(f"registry refused an upload to {repository}: {started.status} {started.data[:200]!r}")
        target = urlsplit(location)
        query = f"{target.query}&" if target.query else ""
        reply = pool.request("PUT", f"{target.path}?{query}digest={_digest(blob)}", body=blob,
                             headers={**headers, "Content-Type": "application/octet-stream"})
        if reply.status != 201:
            raise LabError(f"registry refused a blob of {repository}: {reply.status} {reply.data[:200]!r}")
    reply = pool.request("PUT", f"/v2/{repository}/manifests/{tag}", body=image.manifest,
                         headers={**headers, "Content-Type": MANIFEST_TYPE})
    if reply.status != 201:
        raise LabError(f"registry refused the manifest of {repository}:{tag}: {reply.status} {reply.data[:200]!r}")
