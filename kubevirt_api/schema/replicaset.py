"""VirtualMachineInstanceReplicaSet: N identical VMIs from one template."""

from __future__ import annotations

from kubevirt_api.schema.builders import Schema, boolean, integer, obj, string
from kubevirt_api.schema.common import conditions, label_selector
from kubevirt_api.schema.vm import vmi_template


def replicaset_spec() -> Schema:
    return obj("Specification of a VMI replica set.", {
        "replicas": integer("Number of VMIs wanted; defaults to 1.", minimum=0, fmt="int32"),
        "selector": label_selector("Label query over the VMIs this set owns; must match the template's labels."),
        "template": vmi_template("The VMIs this set creates."),
        "paused": boolean("Stop reconciling replicas while true."),
    }, required=["selector", "template"])


def replicaset_status() -> Schema:
    return obj("Observed state of a VMI replica set.", {
        "replicas": integer(minimum=0, fmt="int32"),
        "readyReplicas": integer(minimum=0, fmt="int32"),
        "labelSelector": string("The selector as a string, for the scale subresource."),
        "conditions": conditions(),
    })
