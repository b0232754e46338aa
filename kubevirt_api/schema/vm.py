"""VirtualMachine: a VMI template plus a run strategy, and its status."""

from __future__ import annotations

from kubevirt_api.phases import RunStrategy, values
from kubevirt_api.schema.builders import Schema, array, boolean, free_form, integer, obj, string, string_map, timestamp
from kubevirt_api.schema.common import conditions, template_metadata
from kubevirt_api.schema.vmi import vmi_spec


def vmi_template(description: str) -> Schema:
    return obj(description, {"metadata": template_metadata(), "spec": vmi_spec()})


def _data_volume_template() -> Schema:
    node = free_form("A CDI DataVolume created with the VM.")
    node["x-kubernetes-embedded-resource"] = True
    return node


def vm_spec() -> Schema:
    return obj("Specification of a virtual machine.", {
        "runStrategy": string("When the VMI should run.", enum=values(RunStrategy)),
        "running": {**boolean("Deprecated: true is runStrategy Always, false is Halted."), "nullable": True},
        "template": vmi_template("The VMI this VM creates."),
        "dataVolumeTemplates": array(_data_volume_template()),
        "instancetype": free_form(),
        "preference": free_form(),
        "updateVolumesStrategy": string(),
    }, required=["template"], open_ended=True)


def vm_status() -> Schema:
    return obj("Observed state of a virtual machine.", {
        "created": boolean("A VMI exists for this VM."),
        "ready": boolean("The VMI is running and ready."),
        "printableStatus": string("Human-readable status, e.g. Running or Stopped."),
        "conditions": conditions(),
        "runStrategy": string(),
        "observedGeneration": integer(),
        "desiredGeneration": integer(),
        "stateChangeRequests": array(obj("", {
            "action": string(enum=["Start", "Stop"]),
            "data": string_map(),
            "uid": string(),
        }, required=["action"])),
        "startFailure": obj("Back-off state after failed starts.", {
            "retries": integer(minimum=0),
            "consecutiveFailCount": integer(minimum=0),
            "lastFailedVMIUID": string(),
            "retryAfterTimestamp": timestamp(),
        }),
        "volumeSnapshotStatuses": array(free_form()),
        "volumeRequests": array(free_form()),
        "memoryDumpRequest": free_form(),
        "restoreInProgress": string(),
    }, open_ended=True)
