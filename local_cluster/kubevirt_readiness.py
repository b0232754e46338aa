"""Is kubevirt-py up on a cluster? What the demo and the end-to-end tests wait for:
every node's handler has labelled its node schedulable, one virt-controller holds the
Lease, and a virt-api pod is ready (webhooks and subresources answer)."""

from __future__ import annotations

from kubernetes import client

from kubevirt_api import labels

NAMESPACE = "kubevirt"
CONTROLLER_LEASE = "virt-controller"


def schedulable_nodes(core: client.CoreV1Api) -> list[str]:
    return sorted(n.metadata.name for n in core.list_node().items
                  if (n.metadata.labels or {}).get(labels.SCHEDULABLE_NODE_LABEL) == "true")


def controller_leader(api: client.ApiClient) -> str | None:
    try:
        lease = client.CoordinationV1Api(api).read_namespaced_lease(CONTROLLER_LEASE, NAMESPACE)
    except client.ApiException:
        return None
    return lease.spec.holder_identity or None


def ready_pods(core: client.CoreV1Api, component: str) -> int:
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"{labels.APP_LABEL}={component}").items
    return sum(1 for p in pods if any(c.type == "Ready" and c.status == "True"
                                      for c in (p.status.conditions or [])) and not p.metadata.deletion_timestamp)


def missing_components(api: client.ApiClient, nodes: int) -> list[str]:
    """What is not ready yet, in words; empty when kubevirt-py is up."""
    missing = []
    ready = schedulable_nodes(client.CoreV1Api(api))
    if len(ready) < nodes:
        missing.append(f"virt-handler ({len(ready)}/{nodes} nodes)")
    if controller_leader(api) is None:
        missing.append("virt-controller (no leader)")
    if ready_pods(client.CoreV1Api(api), "virt-api") == 0:
        missing.append("virt-api (no ready pod)")
    return missing
