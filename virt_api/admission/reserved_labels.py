"""Labels KubeVirt sets to find and place VMIs; a user setting them could make a handler
adopt a VMI that is not on its node, or hide one from a migration."""

from __future__ import annotations

from typing import Any

from kube_schema.errors import FieldError
from kubevirt_api import labels
from virt_api.admission.causes import forbidden
from virt_api.admission.shape import str_map

RESERVED_LABELS = (
    labels.CREATED_BY_LABEL,
    labels.MIGRATION_JOB_LABEL,
    labels.NODE_NAME_LABEL,
    labels.MIGRATION_TARGET_NODE_LABEL,
    labels.SCHEDULABLE_NODE_LABEL,
    "kubevirt.io/install-strategy",
)


def reserved(metadata_labels: Any) -> dict[str, str]:
    return {k: v for k, v in str_map(metadata_labels).items() if k in RESERVED_LABELS}


def check_reserved_on_create(metadata_labels: Any, field: str) -> list[FieldError]:
    found = sorted(reserved(metadata_labels))
    if not found:
        return []
    return [forbidden(field, "only KubeVirt may set the reserved labels " + ", ".join(found))]


def check_reserved_on_update(new_labels: Any, old_labels: Any, field: str) -> list[FieldError]:
    new, old = reserved(new_labels), reserved(old_labels)
    changed = sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))
    if not changed:
        return []
    return [forbidden(field, "only KubeVirt may change the reserved labels " + ", ".join(changed))]
