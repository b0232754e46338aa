"""Label selectors as objects: metav1.LabelSelector matching and its string form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator == "=":
            return present and value == self.values[0]
        if self.operator == "!=":
            return not present or value != self.values[0]
        if self.operator == "in":
            return present and value in self.values
        return not present or value not in self.values  # notin


class LabelSelector:
    def __init__(self, requirements: list[Requirement]) -> None:
        self.requirements = requirements

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def label_selector_from_object(selector: Obj | None) -> LabelSelector:
    """A metav1.LabelSelector (matchLabels + matchExpressions) as a LabelSelector."""
    selector = selector or {}
    requirements = [Requirement(k, "=", (v,)) for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(expression.get("operator"))
        if op is None:
            raise ValueError(f"invalid label selector operator {expression.get('operator')!r}: "
                             "use In, NotIn, Exists or DoesNotExist")
        requirements.append(Requirement(expression["key"], op, tuple(expression.get("values") or ())))
    return LabelSelector(requirements)


def format_label_selector(selector: Obj | None) -> str:
    """The string form of a metav1.LabelSelector, as status.labelSelector carries it."""
    selector = selector or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        op = expression.get("operator")
        values = ",".join(expression.get("values") or [])
        parts.append({"In": f"{expression['key']} in ({values})", "NotIn": f"{expression['key']} notin ({values})",
                      "Exists": expression["key"], "DoesNotExist": f"!{expression['key']}"}[op])
    return ",".join(parts)
