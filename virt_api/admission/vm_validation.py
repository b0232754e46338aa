"""/virtualmachines-validate (create and update): the template is a valid VMI spec, and
the VM says how it should run."""

from __future__ import annotations

from typing import Any

from kube_schema.errors import FieldError
from kubevirt_api.groups import VIRTUAL_MACHINE
from kubevirt_api.phases import RunStrategy, values
from virt_api.admission.causes import invalid, not_supported, required
from virt_api.admission.reserved_labels import check_reserved_on_create
from virt_api.admission.review import ReviewRequest, allowed
from virt_api.admission.review import invalid as invalid_response
from virt_api.admission.shape import as_obj, as_str, dig, indexed_objs
from virt_api.admission.users import is_kubevirt
from virt_api.admission.vmi_validation import validate_vmi_spec

Obj = dict[str, Any]
KIND = VIRTUAL_MACHINE.kind

# Upstream's words, so scripts that match on them keep working.
RUNNING_AND_STRATEGY = ("Running and RunStrategy are mutually exclusive. "
                        "Note that Running is deprecated, please use RunStrategy instead")
STRATEGY_REQUIRED = "RunStrategy must be specified"


def check_run_strategy(spec: Obj) -> list[FieldError]:
    running, strategy = spec.get("running"), spec.get("runStrategy")
    errors = []
    if running is not None and strategy is not None:
        errors.append(invalid("spec.running", running, RUNNING_AND_STRATEGY))
    if running is None and strategy is None:
        errors.append(required("spec.runStrategy", STRATEGY_REQUIRED))
    if strategy is not None and strategy not in values(RunStrategy):
        errors.append(not_supported("spec.runStrategy", strategy, values(RunStrategy)))
    return errors


def check_data_volume_templates(spec: Obj) -> list[FieldError]:
    """Each DataVolume the VM creates must be used by the template, or it is created for nothing."""
    volumes = [v for _, v in indexed_objs(dig(spec, "template", "spec", "volumes"))]
    used = {as_str(as_obj(v.get("dataVolume")).get("name")) for v in volumes} | \
           {as_str(as_obj(v.get("persistentVolumeClaim")).get("claimName")) for v in volumes}
    errors = []
    for index, template in indexed_objs(spec.get("dataVolumeTemplates")):
        at = f"spec.dataVolumeTemplates[{index}]"
        name = as_str(dig(template, "metadata", "name"))
        if not name:
            errors.append(required(f"{at}.metadata.name"))
        elif name not in used:
            errors.append(required(at, f"DataVolume {name!r} is not used by any volume of spec.template.spec"))
    return errors


def validate_vm(vm: Obj, privileged: bool) -> list[FieldError]:
    spec = as_obj(vm.get("spec"))
    errors = check_run_strategy(spec)
    template = spec.get("template")
    if not isinstance(template, dict):
        return errors + [required("spec.template", "a VirtualMachine needs a template for its VMIs")]
    errors += validate_vmi_spec(template.get("spec"), "spec.template.spec")
    errors += check_data_volume_templates(spec)
    if not privileged:
        errors += check_reserved_on_create(dig(template, "metadata", "labels"), "spec.template.metadata.labels")
    return errors


def admit_vm(review: ReviewRequest, namespace: str) -> Obj:
    if review.obj is None or review.operation not in ("CREATE", "UPDATE"):
        return allowed()
    # A VM on its way out is not judged again: refusing would only block its finalizers.
    if dig(review.obj, "metadata", "deletionTimestamp"):
        return allowed()
    errors = validate_vm(review.obj, is_kubevirt(review.username, review.groups, namespace))
    name = as_str(dig(review.obj, "metadata", "name")) or review.name
    return invalid_response(KIND, name, errors) if errors else allowed()
