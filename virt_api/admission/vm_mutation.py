"""/virtualmachines-mutate: upstream's VM defaults, on create and update.

Upstream defaults only what the VM itself decides (instancetype/preference kinds, the
template's architecture and machine type); everything else is defaulted when the VM
controller creates the VMI, by the VMI mutator. runStrategy is not defaulted: upstream
requires it to be given.
"""

from __future__ import annotations

import copy
from typing import Any

from virt_api.admission.patches import diff
from virt_api.admission.review import ReviewRequest, allowed
from virt_api.admission.shape import dig
from virt_api.admission.vmi_defaults import child, set_architecture, set_machine_type, unset

Obj = dict[str, Any]

# Upstream's defaults when a matcher names no kind: the cluster-wide resources.
MATCHER_DEFAULT_KINDS = {"instancetype": "virtualmachineclusterinstancetype",
                         "preference": "virtualmachineclusterpreference"}


def _set_matcher_kinds(spec: Obj) -> None:
    for field, kind in MATCHER_DEFAULT_KINDS.items():
        matcher = spec.get(field)
        # A matcher inferring from a volume must not name a kind; leave it as given.
        if isinstance(matcher, dict) and unset(matcher.get("kind")) and unset(matcher.get("inferFromVolume")):
            matcher["kind"] = kind


def mutated_vm(vm: Obj) -> Obj:
    after = copy.deepcopy(vm)
    spec = after.get("spec")
    if not isinstance(spec, dict):
        return after
    _set_matcher_kinds(spec)
    template = spec.get("template")
    if isinstance(template, dict):
        template_spec = child(template, "spec")
        if template_spec is not None:
            set_architecture(template_spec)
            domain = child(template_spec, "domain")
            if domain is not None:
                set_machine_type(domain)
    return after


def mutate_vm(review: ReviewRequest) -> Obj:
    if review.operation not in ("CREATE", "UPDATE") or review.obj is None:
        return allowed()
    # A VM being deleted is left alone, so no default races the deletion of its parts.
    if dig(review.obj, "metadata", "deletionTimestamp"):
        return allowed()
    return allowed(diff(review.obj, mutated_vm(review.obj)))
