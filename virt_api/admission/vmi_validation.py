"""/virtualmachineinstances-validate-create and -update.

validate_vmi_spec() is shared with the VM and replica set validators, which check their
templates with it under their own field path (spec.template.spec).
"""

from __future__ import annotations

from typing import Any

from kube_schema.errors import FieldError
from kubevirt_api.groups import VIRTUAL_MACHINE_INSTANCE
from virt_api.admission.boot_order import check_boot_order
from virt_api.admission.causes import forbidden
from virt_api.admission.reserved_labels import check_reserved_on_create, check_reserved_on_update
from virt_api.admission.review import ReviewRequest, allowed, invalid
from virt_api.admission.shape import as_obj, as_str, dig
from virt_api.admission.users import is_kubevirt
from virt_api.admission.vmi_network_validation import check_networks
from virt_api.admission.vmi_resource_validation import check_memory_given, check_resources
from virt_api.admission.vmi_spec_validation import check_misc
from virt_api.admission.vmi_storage_validation import check_disks, check_volumes, check_volumes_attached

Obj = dict[str, Any]
KIND = VIRTUAL_MACHINE_INSTANCE.kind


def validate_vmi_spec(spec: Any, base: str) -> list[FieldError]:
    """Every semantic problem of a VMI spec (or template spec), each with its field path."""
    spec = as_obj(spec)
    return (check_resources(spec, base) + check_disks(spec, base) + check_volumes(spec, base)
            + check_boot_order(spec, base) + check_networks(spec, base) + check_misc(spec, base))


def validate_new_vmi(vmi: Obj, privileged: bool) -> list[FieldError]:
    errors = validate_vmi_spec(vmi.get("spec"), "spec")
    spec = as_obj(vmi.get("spec"))
    # Only a VMI as it will run must be complete; templates may leave these to defaults.
    errors += check_volumes_attached(spec, "spec") + check_memory_given(spec, "spec")
    if not privileged:
        errors += check_reserved_on_create(dig(vmi, "metadata", "labels"), "metadata.labels")
    return errors


def validate_vmi_change(new: Obj, old: Obj, privileged: bool) -> list[FieldError]:
    """A running VMI's spec is what its launcher was built from: only KubeVirt changes it
    (hotplug goes through subresources), and then it must still be a valid spec."""
    errors: list[FieldError] = []
    if new.get("spec") != old.get("spec"):
        if privileged:
            errors += validate_vmi_spec(new.get("spec"), "spec")
        else:
            errors.append(forbidden("spec", "a VMI's spec cannot be changed once it is created; "
                                            "change the VirtualMachine and restart it instead"))
    if not privileged:
        errors += check_reserved_on_update(dig(new, "metadata", "labels"), dig(old, "metadata", "labels"),
                                           "metadata.labels")
    return errors


def _name(review: ReviewRequest) -> str:
    return as_str(dig(review.obj, "metadata", "name")) or review.name


def admit_vmi_create(review: ReviewRequest, namespace: str) -> Obj:
    if review.obj is None:
        return allowed()
    errors = validate_new_vmi(review.obj, is_kubevirt(review.username, review.groups, namespace))
    return invalid(KIND, _name(review), errors) if errors else allowed()


def admit_vmi_update(review: ReviewRequest, namespace: str) -> Obj:
    if review.obj is None or review.old is None:
        return allowed()
    errors = validate_vmi_change(review.obj, review.old, is_kubevirt(review.username, review.groups, namespace))
    return invalid(KIND, _name(review), errors) if errors else allowed()
