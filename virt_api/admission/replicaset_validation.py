"""/virtualmachinereplicaset-validate: a valid template that the selector selects."""

from __future__ import annotations

from typing import Any

from kube_client.labels import LabelSelector, label_selector_from_object
from kube_schema.errors import FieldError
from kubevirt_api.groups import REPLICA_SET
from virt_api.admission.causes import invalid, required
from virt_api.admission.review import ReviewRequest, allowed
from virt_api.admission.review import invalid as invalid_response
from virt_api.admission.shape import as_int, as_list, as_str, dig, str_map
from virt_api.admission.vmi_validation import validate_vmi_spec

Obj = dict[str, Any]
KIND = REPLICA_SET.kind
OPERATORS = {"In": True, "NotIn": True, "Exists": False, "DoesNotExist": False}  # operator -> needs values


def _selector_problem(selector: Any) -> str | None:
    """Why a metav1.LabelSelector is malformed, before it is parsed (the parser trusts it)."""
    if not isinstance(selector, dict):
        return "must be a label selector object"
    match_labels = selector.get("matchLabels")
    if match_labels is not None and (not isinstance(match_labels, dict) or
                                     len(str_map(match_labels)) != len(match_labels)):
        return "matchLabels must map label keys to string values"
    expressions = selector.get("matchExpressions")
    if expressions is not None and not isinstance(expressions, list):
        return "matchExpressions must be a list"
    for index, expression in enumerate(as_list(expressions)):
        if not isinstance(expression, dict) or not as_str(expression.get("key")):
            return f"matchExpressions[{index}] needs a key"
        operator = expression.get("operator")
        if not isinstance(operator, str) or operator not in OPERATORS:
            return f"matchExpressions[{index}].operator must be one of " + ", ".join(OPERATORS)
        given = expression.get("values")
        if given is not None and (not isinstance(given, list) or not all(isinstance(v, str) for v in given)):
            return f"matchExpressions[{index}].values must be a list of strings"
        if OPERATORS[operator] != bool(given):
            return f"matchExpressions[{index}]: {operator} " + ("needs values" if OPERATORS[operator]
                                                                  else "takes no values")
    return None


def check_selector(spec: Obj, template_labels: Any) -> list[FieldError]:
    selector = spec.get("selector")
    if selector is None:
        return [required("spec.selector", "the selector decides which VMIs this set owns")]
    problem = _selector_problem(selector)
    if problem:
        return [invalid("spec.selector", selector, problem)]
    parsed: LabelSelector = label_selector_from_object(selector)
    if parsed.empty:
        return [invalid("spec.selector", selector, "an empty selector would select every VMI in the namespace")]
    if not parsed.matches(str_map(template_labels)):
        return [invalid("spec.selector", selector, "does not select spec.template.metadata.labels, "
                                                   "so the set would never see the VMIs it creates")]
    return []


def validate_replicaset(replica_set: Obj) -> list[FieldError]:
    spec = replica_set.get("spec") if isinstance(replica_set.get("spec"), dict) else {}
    errors: list[FieldError] = []
    replicas = spec.get("replicas")
    if replicas is not None and (as_int(replicas) is None or replicas < 0):
        errors.append(invalid("spec.replicas", replicas, "must be a whole number of at least 0"))
    template = spec.get("template")
    if not isinstance(template, dict):
        return errors + [required("spec.template", "a replica set needs a template for its VMIs")]
    errors += validate_vmi_spec(template.get("spec"), "spec.template.spec")
    errors += check_selector(spec, dig(template, "metadata", "labels"))
    return errors


def admit_replicaset(review: ReviewRequest, _namespace: str) -> Obj:
    if review.obj is None or review.operation not in ("CREATE", "UPDATE"):
        return allowed()
    errors = validate_replicaset(review.obj)
    name = as_str(dig(review.obj, "metadata", "name")) or review.name
    return invalid_response(KIND, name, errors) if errors else allowed()
