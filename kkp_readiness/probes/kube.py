"""Reading a Kubernetes cluster through the official ``kubernetes`` client, as kubectl would.

Objects come back as plain dicts in the API's own JSON shape (``metadata.labels``,
``status.conditions``...), so that checks, evidence and offline snapshots all see the same data.
Every request is bounded by the profile's timeout; TLS is verified with the kubeconfig's CA.

Failures are typed so that "could not look" never reads as "looked and it is wrong":
an unreachable API server or rejected credentials end every later call of the same reader at once
with the first reason (one clear error, not one timeout per check); an RBAC denial names the verb
and resource that were needed and ends only the checks that need them.

>>> reader = ClusterReader(ClusterAccess(kubeconfig="~/.kube/seed.yaml", context=None, timeout=10))  # doctest: +SKIP
>>> [n["metadata"]["name"] for n in reader.nodes()]                                        # doctest: +SKIP
['cp-1', 'cp-2', 'cp-3', 'worker-1', 'worker-2', 'worker-3']
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kkp_readiness import dex_config
from kkp_readiness.errors import KubeProbeError


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach one cluster: a kubeconfig (and context), or the in-cluster service account."""

    kubeconfig: str | None
    context: str | None
    timeout: float

    def describe(self) -> str:
        if self.kubeconfig is None:
            return "in-cluster service account"
        return f"kubeconfig {self.kubeconfig}" + (f" (context {self.context})" if self.context else "")


# resource -> (API group for RBAC messages, client class, method, namespaced)
_RESOURCES: dict[str, tuple[str, str, str, bool]] = {
    "nodes": ("", "CoreV1Api", "list_node", False),
    "namespaces": ("", "CoreV1Api", "list_namespace", False),
    "pods": ("", "CoreV1Api", "list_pod_for_all_namespaces", True),
    "services": ("", "CoreV1Api", "list_service_for_all_namespaces", True),
    "persistentvolumeclaims": ("", "CoreV1Api", "list_persistent_volume_claim_for_all_namespaces", True),
    "configmaps": ("", "CoreV1Api", "list_config_map_for_all_namespaces", True),
    "storageclasses": ("storage.k8s.io", "StorageV1Api", "list_storage_class", False),
    "csidrivers": ("storage.k8s.io", "StorageV1Api", "list_csi_driver", False),
    "csinodes": ("storage.k8s.io", "StorageV1Api", "list_csi_node", False),
    "daemonsets": ("apps", "AppsV1Api", "list_daemon_set_for_all_namespaces", True),
    "deployments": ("apps", "AppsV1Api", "list_deployment_for_all_namespaces", True),
    "statefulsets": ("apps", "AppsV1Api", "list_stateful_set_for_all_namespaces", True),
}
_NAMESPACED_METHODS = {
    "pods": "list_namespaced_pod",
    "services": "list_namespaced_service",
    "persistentvolumeclaims": "list_namespaced_persistent_volume_claim",
    "configmaps": "list_namespaced_config_map",
    "daemonsets": "list_namespaced_daemon_set",
    "deployments": "list_namespaced_deployment",
    "statefulsets": "list_namespaced_stateful_set",
}


class ClusterReader:
    """Read-only access to one cluster, each list made once per run."""

    def __init__(self, access: ClusterAccess) -> None:
        self.access = access
        self._api_client: Any = None
        self._failure: KubeProbeError | None = None
        self._cache: dict[tuple[Any, ...], Any] = {}

    # ------------------------------------------------------------------ connection

    @property
    def server(self) -> str:
        return self._client().configuration.host

    def _client(self) -> Any:
        if self._failure is not None:
            raise self._failure
        if self._api_client is None:
            self._api_client = self._connect()
        return self._api_client

    def _connect(self) -> Any:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        try:
            configuration = client.Configuration()
            if self.access.kubeconfig is None:
                config.load_incluster_config(client_configuration=configuration)
            else:
                path = os.path.expanduser(self.access.kubeconfig)
                with _exec_plugin_errors() as plugin_errors:
                    config.load_kube_config(config_file=path, context=self.access.context,
                                            client_configuration=configuration, persist_config=False)
                if plugin_errors:
                    raise ConfigException(f"its exec credential plugin failed: {plugin_errors[-1]}")
        except (ConfigException, OSError, ValueError, TypeError) as exc:
            self._failure = KubeProbeError(f"cannot use {self.access.describe()}: {exc}")
            raise self._failure from None
        # One retry, not urllib3's three, on a dead server; set before the client builds its pool,
        # which copies the value.
        configuration.retries = 1
        api_client = client.ApiClient(configuration)
        if not api_client.configuration.verify_ssl:
            self._failure = KubeProbeError(
                f"{self.access.describe()} disables TLS verification (insecure-skip-tls-verify); "
                "the suite only talks to an API server whose certificate it can verify"
            )
            raise self._failure
        return api_client

    def _call(self, verb: str, resource: str, group: str, function: Callable[..., Any], **kwargs: Any) -> Any:
        """Call ``function`` bounded by the timeout; translate every failure into a KubeProbeError."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            return function(_request_timeout=self.access.timeout, **kwargs)
        except ApiException as exc:
            reason = _status_message(exc)
            qualified = f"{resource}.{group}" if group else resource
            if exc.status == 401:
                self._failure = KubeProbeError(
                    f"the API server {self.server} rejected the credentials of {self.access.describe()} "
                    f"(401 Unauthorized): {reason}"
                )
                raise self._failure from None
            if exc.status == 403:
                raise KubeProbeError(
                    f"forbidden: the check needs RBAC verb '{verb}' on '{qualified}' "
                    f"(API server {self.server} says: {reason})"
                ) from None
            raise KubeProbeError(f"{verb} {qualified} failed with HTTP {exc.status}: {reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if _is_tls_failure(exc):
                self._failure = KubeProbeError(
                    f"the TLS handshake with the API server {self.server} of {self.access.describe()} failed: "
                    f"{_short(exc)}; check the kubeconfig's certificate-authority and client certificate; "
                    "no cluster check can run"
                )
            else:
                self._failure = KubeProbeError(
                    f"the API server {self.server} of {self.access.describe()} is unreachable: "
                    f"{_short(exc)}; no cluster check can run"
                )
            raise self._failure from None

    def _serialize(self, value: Any) -> Any:
        return self._client().sanitize_for_serialization(value)

    # ------------------------------------------------------------------ reads

    def version(self) -> dict[str, Any]:
        """``/version`` of the API server."""
        if ("version",) not in self._cache:
            from kubernetes import client

            api = client.VersionApi(self._client())
            info = self._call("get", "version", "", api.get_code)
            self._cache[("version",)] = self._serialize(info)
        return self._cache[("version",)]

    def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None) -> list[dict]:
        """Every object of ``resource`` (optionally in one namespace, with a label selector)."""
        key = ("list", resource, namespace, label_selector)
        if key not in self._cache:
            from kubernetes import client

            group, class_name, method, namespaced = _RESOURCES[resource]
            api = getattr(client, class_name)(self._client())
            kwargs: dict[str, Any] = {}
            if label_selector:
                kwargs["label_selector"] = label_selector
            if namespace is not None and namespaced:
                kwargs["namespace"] = namespace
                method = _NAMESPACED_METHODS[resource]
            result = self._call("list", resource, group, getattr(api, method), **kwargs)
            self._cache[key] = _with_kind(self._serialize(result))
        return self._cache[key]

    def nodes(self) -> list[dict]:
        return self.list("nodes")

    def storage_classes(self) -> list[dict]:
        return self.list("storageclasses")

    def list_custom(self, group: str, version: str, plural: str, namespace: str | None = None) -> list[dict]:
        """Every custom object of ``plural`` in ``group``/``version`` (in all namespaces, or one).

        When the API server does not serve the resource at all (HTTP 404: its CRD, or that
        version of it, is not installed) the answer is ``[]``, as for a served resource without
        objects: a check that must tell "not installed" from "no objects" looks at the
        implementation's workloads too. Every other failure is a KubeProbeError as for ``list``.

        >>> reader.list_custom("metallb.io", "v1beta1", "ipaddresspools")  # doctest: +SKIP
        [{'apiVersion': 'metallb.io/v1beta1', 'kind': 'IPAddressPool', 'metadata': {...}, 'spec': {...}}]
        """
        key = ("custom", group, version, plural, namespace)
        if key not in self._cache:
            from kubernetes import client
            from kubernetes.client.exceptions import ApiException

            api = client.CustomObjectsApi(self._client())

            def fetch(**kwargs: Any) -> Any:
                try:
                    if namespace is None:
                        return api.list_cluster_custom_object(group, version, plural, **kwargs)
                    return api.list_namespaced_custom_object(group, version, namespace, plural, **kwargs)
                except ApiException as exc:
                    if exc.status == 404:
                        return {"items": []}
                    raise

            result = self._call("list", plural, group, fetch)
            self._cache[key] = list((result or {}).get("items") or [])
        return self._cache[key]


    def _read_key(self, kind: str, namespace: str, name: str, key: str) -> str | None:
        """The text under ``key`` of one Secret or ConfigMap, ``None`` when the object or key does not exist.

        Only for derived documents (:data:`DOCUMENTS`): the caller keeps what it needs and drops
        the text, which is never cached, logged or written (a Secret's value stays in this call).
        """
        import base64

        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api = client.CoreV1Api(self._client())
        read = api.read_namespaced_secret if kind == "Secret" else api.read_namespaced_config_map

        def fetch(**kwargs: Any) -> Any:
            try:
                return read(name, namespace, **kwargs)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

        found = self._call("get", "secrets" if kind == "Secret" else "configmaps", "", fetch)
        data = (getattr(found, "data", None) or {}) if found is not None else {}
        if key not in data:
            return None
        return base64.b64decode(data[key]).decode("utf-8", "replace") if kind == "Secret" else data[key]

    def document(self, name: str) -> Any:
        """A derived, secret-free document (:data:`DOCUMENTS`), as ``collect`` saves it."""
        key = ("document", name)
        if key not in self._cache:
            self._cache[key] = DOCUMENTS[name](self)
        return self._cache[key]


#: Documents computed from objects the suite may read but never store (Secrets): name -> how.
DOCUMENTS: dict[str, Callable[[ClusterReader], Any]] = {
    dex_config.DOCUMENT: lambda reader: dex_config.read(reader._read_key),
}


@contextlib.contextmanager
def _exec_plugin_errors() -> Iterator[list[str]]:
    """Collect what the ``kubernetes`` client logs, instead of raising, when an exec credential plugin fails.

    Its kubeconfig loader catches the plugin's error (non-zero exit, output that is no
    ExecCredential, missing command), logs it and goes on without credentials: the API server's 401
    would then hide the cause. Only that loader function's records of this thread are taken.
    """
    errors: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.funcName == "_load_from_exec_plugin" and record.thread == threading.get_ident():
                errors.append(record.getMessage().removeprefix("exec: "))

    handler = Collect(logging.ERROR)
    logging.getLogger().addHandler(handler)
    try:
        yield errors
    finally:
        logging.getLogger().removeHandler(handler)


def _status_message(exc: Any) -> str:
    """The ``message`` of the API's Status object, else the HTTP reason."""
    import json

    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return str(body.get("message") or exc.reason or exc.status)


def _with_kind(listed: dict[str, Any]) -> list[dict]:
    """The items of a list, each with its ``kind`` and ``apiVersion``: the API server leaves them out
    of the items of built-in kinds (only the list says ``DeploymentList``), and checks, evidence and
    snapshots should name what an object is whichever way it was read."""
    kind = str(listed.get("kind") or "").removesuffix("List")
    items = listed.get("items") or []
    for item in items:
        if kind:
            item.setdefault("kind", kind)
        if listed.get("apiVersion"):
            item.setdefault("apiVersion", listed["apiVersion"])
    return items


def _is_tls_failure(exc: BaseException) -> bool:
    """Whether a connection failed in the TLS handshake (a certificate refused either way), not before it."""
    import ssl

    import urllib3

    seen: Any = exc
    for _ in range(10):  # urllib3 nests the cause a few levels deep; never loop on a cycle
        if not isinstance(seen, BaseException):
            return False
        if isinstance(seen, (ssl.SSLError, urllib3.exceptions.SSLError)):
            return True
        seen = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
    return False


def _short(exc: BaseException) -> str:
    """urllib3 errors nest the cause deep inside; keep the last, human part."""
    text = str(exc)
    for marker in ("Caused by ", "NewConnectionError("):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip("()'\" ")[:300]
