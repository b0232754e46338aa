"""Naming a kind by group/version/plural, and listing or watching it through one code path.

The generated client has one list method per kind and scope, with different argument
orders (a core namespaced list takes the namespace first, a custom-object list takes it
third), so an informer cannot bind a namespace into an arbitrary method. A Resource
builds the request path itself and sends it through the same ApiClient (its
credentials, TLS and connection pool), answering exactly like a generated method
called with _preload_content=False, which is what the Reflector and rawapi expect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

ListMethod = Callable[..., Any]

# The Reflector and rawapi speak the generated client's keyword names; the server
# wants the wire names.
_QUERY_NAMES = {
    "label_selector": "labelSelector",
    "field_selector": "fieldSelector",
    "limit": "limit",
    "_continue": "continue",
    "resource_version": "resourceVersion",
    "resource_version_match": "resourceVersionMatch",
    "allow_watch_bookmarks": "allowWatchBookmarks",
    "timeout_seconds": "timeoutSeconds",
    "watch": "watch",
}


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None) -> str:
        if namespace and not self.namespaced:
            raise ValueError(f"{self.plural} are cluster-scoped; they have no namespace")
        root = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        return f"{root}/namespaces/{namespace}/{self.plural}" if namespace else f"{root}/{self.plural}"

    def lister(self, api_client: client.ApiClient, namespace: str | None = None) -> ListMethod:
        """A list/watch callable over this kind (in one namespace, or everywhere)."""
        path = self.path(namespace)

        def list_or_watch(**kwargs: Any) -> Any:
            return _get(api_client, path, kwargs)

        list_or_watch.__name__ = f"list_{self.plural}"
        return list_or_watch


def _get(api_client: client.ApiClient, path: str, kwargs: dict[str, Any]) -> Any:
    if kwargs.pop("_preload_content", True):
        raise ValueError("Resource listers only return raw responses (_preload_content=False)")
    timeout = kwargs.pop("_request_timeout", None)
    unknown = set(kwargs) - set(_QUERY_NAMES)
    if unknown:
        raise TypeError(f"unsupported list arguments: {sorted(unknown)}")
    query = [(_QUERY_NAMES[name], value) for name, value in kwargs.items() if value is not None]
    method, url, headers, body, post = api_client.param_serialize(
        "GET", path, query_params=query, header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"])
    response = api_client.call_api(method, url, headers, body, post, _request_timeout=timeout)
    if not 200 <= response.status <= 299:
        response.read()
        raise ApiException.from_response(http_resp=response, body=None, data=None)
    return response.response


# Kinds the KubeVirt controllers follow besides their own (kubevirt_api names those).
PODS = Resource("", "v1", "pods")
CONFIG_MAPS = Resource("", "v1", "configmaps")
NODES = Resource("", "v1", "nodes", namespaced=False)
PERSISTENT_VOLUME_CLAIMS = Resource("", "v1", "persistentvolumeclaims")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
