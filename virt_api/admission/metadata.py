"""Small edits of object metadata shared by the mutators."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def add_finalizer(metadata: Obj, finalizer: str) -> None:
    """Append once; a finalizers field of the wrong type is left for the API server to reject."""
    finalizers = metadata.get("finalizers")
    if finalizers is None:
        metadata["finalizers"] = [finalizer]
    elif isinstance(finalizers, list) and finalizer not in finalizers:
        finalizers.append(finalizer)


def set_label(metadata: Obj, key: str, value: str) -> None:
    labels = metadata.get("labels")
    if labels is None:
        metadata["labels"] = {key: value}
    elif isinstance(labels, dict):
        labels[key] = value
