"""The built-in kinds the local control plane serves, as kube-apiserver names them."""

from __future__ import annotations

from local_cluster.apiserver.resources import ResourceInfo

_CORE = [
    # kind, plural, namespaced, short names, status subresource, strategic merge
    ("Namespace", "namespaces", False, ("ns",), True),
    ("Node", "nodes", False, ("no",), True),
    ("Pod", "pods", True, ("po",), True),
    ("ConfigMap", "configmaps", True, ("cm",), False),
    ("Secret", "secrets", True, (), False),
    ("Service", "services", True, ("svc",), True),
    ("Endpoints", "endpoints", True, ("ep",), False),
    ("PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), True),
    ("PersistentVolume", "persistentvolumes", False, ("pv",), True),
    ("Event", "events", True, ("ev",), False),
    ("ServiceAccount", "serviceaccounts", True, ("sa",), False),
]

_GROUPED = [
    # group, version, kind, plural, namespaced, short names, status
    ("coordination.k8s.io", "v1", "Lease", "leases", True, (), False),
    ("apps", "v1", "Deployment", "deployments", True, ("deploy",), True),
    ("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), True),
    ("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), True),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", True, (), False),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True, (), False),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, (), False),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False, (), False),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False, ("crd", "crds"),
     True),
    ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations",
     False, (), False),
    ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations",
     False, (), False),
    ("apiregistration.k8s.io", "v1", "APIService", "apiservices", False, (), True),
    ("events.k8s.io", "v1", "Event", "events", True, ("ev",), False),
    ("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",), False),
    ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), True),
    ("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",), False),
]

# Kinds whose PATCH understands strategic merge (everything built in, as upstream).
_NO_STRATEGIC = {"apiextensions.k8s.io", "apiregistration.k8s.io"}


def _singular(kind: str) -> str:
    return kind.lower()


def builtin_resources() -> list[ResourceInfo]:
    infos = [
        ResourceInfo("", "v1", kind, plural, _singular(kind), namespaced, short, ("all",) if kind in (
            "Pod", "Service") else (), has_status=status, strategic_merge=True, storage_version="v1")
        for kind, plural, namespaced, short, status in _CORE
    ]
    infos += [
        ResourceInfo(group, version, kind, plural, _singular(kind), namespaced, short,
                     ("all",) if group == "apps" else (), has_status=status,
                     strategic_merge=group not in _NO_STRATEGIC, storage_version=version,
                     scale={"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".spec.selector"} if kind in ("Deployment", "ReplicaSet")
                     else None)
        for group, version, kind, plural, namespaced, short, status in _GROUPED
    ]
    return infos
