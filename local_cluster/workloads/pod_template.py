"""Pods made from a workload's pod template, as kube-controller-manager makes them."""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]

# The API server adds a 5-character suffix to generateName; names stay within the
# 63 characters a label value (and so a hostname) may have, as upstream truncates.
_MAX_PREFIX = 58


def generate_name(owner_name: str) -> str:
    return f"{owner_name}-"[:_MAX_PREFIX]


def pod_from_template(template: Obj, namespace: str, generate: str, owner_ref: Obj,
                      extra_labels: dict[str, str] | None = None) -> Obj:
    """Template labels, annotations and finalizers, our ownerReference, and the spec."""
    template_meta = template.get("metadata") or {}
    pod_meta: Obj = {"generateName": generate, "namespace": namespace,
                     "labels": {**(template_meta.get("labels") or {}), **(extra_labels or {})},
                     "ownerReferences": [owner_ref]}
    if template_meta.get("annotations"):
        pod_meta["annotations"] = dict(template_meta["annotations"])
    if template_meta.get("finalizers"):
        pod_meta["finalizers"] = list(template_meta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
            "spec": copy.deepcopy(template.get("spec") or {})}
