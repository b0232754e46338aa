"""/virtualmachineinstances-mutate: defaults and the VMI finalizer, on create only.

On update upstream only guards status against non-KubeVirt writers; our CRDs serve
status as a subresource, so the main resource cannot change it and there is nothing to
do. Status is never touched: the VMI controller owns the phase.
"""

from __future__ import annotations

import copy
from typing import Any

from kubevirt_api.labels import VMI_FINALIZER
from virt_api.admission.metadata import add_finalizer
from virt_api.admission.patches import diff
from virt_api.admission.review import ReviewRequest, allowed
from virt_api.admission.vmi_defaults import apply_vmi_defaults, child

Obj = dict[str, Any]


def mutated_vmi(vmi: Obj) -> Obj:
    after = copy.deepcopy(vmi)
    spec = child(after, "spec")
    if spec is not None:
        apply_vmi_defaults(spec)
    metadata = child(after, "metadata")
    if metadata is not None:
        # The VMI controller removes it once the launcher pod is gone, so a VMI never
        # disappears while its guest may still run.
        add_finalizer(metadata, VMI_FINALIZER)
    return after


def mutate_vmi(review: ReviewRequest) -> Obj:
    if review.operation != "CREATE" or review.obj is None:
        return allowed()
    return allowed(diff(review.obj, mutated_vmi(review.obj)))
