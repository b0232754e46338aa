"""Who may change what only KubeVirt itself should change (VMI specs, reserved labels)."""

from __future__ import annotations

from pathlib import Path

# Upstream's service accounts; ours are named the same in deploy/.
KUBEVIRT_SERVICE_ACCOUNTS = ("kubevirt-apiserver", "kubevirt-controller", "kubevirt-handler")
# Cluster administrators bypass authorization in kube-apiserver too; the embedded local
# control plane also runs every component as system:admin in this group, so without it
# the VMI controller could not label the VMIs it schedules.
PRIVILEGED_GROUPS = ("system:masters",)
_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_NAMESPACE = "kubevirt"


def install_namespace() -> str:
    """virt-api's own namespace, as upstream finds it: from its service account mount."""
    try:
        return _NAMESPACE_FILE.read_text().strip() or DEFAULT_NAMESPACE
    except OSError:
        return DEFAULT_NAMESPACE


def is_kubevirt(username: str, groups: tuple[str, ...], namespace: str) -> bool:
    if any(group in PRIVILEGED_GROUPS for group in groups):
        return True
    # Only the accounts in KubeVirt's own namespace: anyone may name an account
    # "kubevirt-controller" in a namespace of their own.
    return username in {f"system:serviceaccount:{namespace}:{name}" for name in KUBEVIRT_SERVICE_ACCOUNTS}
