"""pods/{name}/log before the kubelet is asked: the options, the container, the node's
kubelet address — each checked, and refused, the way kube-apiserver does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local_cluster.apiserver import errors
from local_cluster.pod_log_options import BadLogQuery, PodLogOptions, from_query

Obj = dict[str, Any]

DEFAULT_KUBELET_PORT = 10250
# kube-apiserver's default --kubelet-preferred-address-types.
_ADDRESS_PREFERENCE = ("Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP")


def log_options(query: Mapping[str, str], pod_name: str) -> PodLogOptions:
    try:
        options = from_query(query)
    except BadLogQuery as error:
        raise errors.bad_request(str(error)) from None
    problems = options.validate()
    if problems:
        raise errors.InvalidError("", "PodLogOptions", pod_name, problems)
    return options


def log_container(pod: Obj, requested: str) -> str:
    """The container to read: the one asked for, or the pod's only container."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    containers = [c.get("name") for c in spec.get("containers") or []]
    every = [c.get("name") for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
             + (spec.get("ephemeralContainers") or [])]
    if requested:
        if requested not in every:
            raise errors.bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    if len(containers) == 1:
        return str(containers[0])
    if not containers:
        raise errors.bad_request(f"a container name must be specified for pod {name}")
    # Go's %s of a []string: [a b c].
    raise errors.bad_request(f"a container name must be specified for pod {name}, "
                             f"choose one of: [{' '.join(str(c) for c in every)}]")


def assigned_node(pod: Obj) -> str:
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.bad_request(f"pod {pod['metadata']['name']} does not have a host assigned")
    return str(node)


def kubelet_endpoint(node: Obj) -> tuple[str, int]:
    """The address and port of the node's kubelet server, from what the kubelet reports."""
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or [] if a.get("address")}
    host = next((addresses[kind] for kind in _ADDRESS_PREFERENCE if kind in addresses), None)
    if host is None:
        raise errors.bad_request(f"node {node['metadata']['name']} has no address the kubelet can be reached at")
    port = int((((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")) or 0)
    return str(host), port if port > 0 else DEFAULT_KUBELET_PORT
