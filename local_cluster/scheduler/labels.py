"""Label selectors (metav1.LabelSelector) and node selector requirements."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def labels_of(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A LabelSelector: None selects nothing, {} selects everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_label_expression_matches(e, labels) for e in selector.get("matchExpressions") or [])


def _label_expression_matches(expression: Obj, labels: dict[str, str]) -> bool:
    key, operator = expression.get("key", ""), expression.get("operator", "")
    values = expression.get("values") or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False  # an unknown operator selects nothing rather than everything


def requirement_matches(requirement: Obj, values_by_key: dict[str, str]) -> bool:
    """A NodeSelectorRequirement, which adds Gt and Lt (integer comparisons) to the set operators."""
    key, operator = requirement.get("key", ""), requirement.get("operator", "")
    values = [str(v) for v in requirement.get("values") or []]
    if operator in ("Gt", "Lt"):
        return _compares(values_by_key.get(key), values, operator)
    if operator == "In":
        return key in values_by_key and values_by_key[key] in values
    if operator == "NotIn":
        return key not in values_by_key or values_by_key[key] not in values
    if operator == "Exists":
        return key in values_by_key
    if operator == "DoesNotExist":
        return key not in values_by_key
    return False


def _compares(actual: str | None, values: list[str], operator: str) -> bool:
    if actual is None or len(values) != 1:
        return False
    try:
        have, bound = int(actual), int(values[0])
    except ValueError:
        return False
    return have > bound if operator == "Gt" else have < bound
