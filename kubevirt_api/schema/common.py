"""Schema pieces shared by several kinds: conditions, selectors, object metadata."""

from __future__ import annotations

from kubevirt_api.schema.builders import Schema, array, free_form, integer, obj, string, string_map, timestamp


def conditions(description: str = "Conditions of the object, as Kubernetes conditions.") -> Schema:
    return array(obj("", {
        "type": string("Condition type, e.g. Ready."),
        "status": string("True, False or Unknown.", enum=["True", "False", "Unknown"]),
        "reason": string(),
        "message": string(),
        "lastProbeTime": timestamp(),
        "lastTransitionTime": timestamp(),
    }, required=["type", "status"]), description)


def label_selector(description: str = "") -> Schema:
    return obj(description, {
        "matchLabels": string_map(),
        "matchExpressions": array(obj("", {
            "key": string(),
            "operator": string("In, NotIn, Exists or DoesNotExist.", enum=["In", "NotIn", "Exists", "DoesNotExist"]),
            "values": array(string()),
        }, required=["key", "operator"])),
    })


def template_metadata() -> Schema:
    # Object metadata of an embedded template: stored as given, validated by the
    # API server's ObjectMeta rules rather than by this schema.
    node = free_form("Metadata of the objects created from this template.")
    node["nullable"] = True
    return node


def phase_transitions() -> Schema:
    return array(obj("", {
        "phase": string(),
        "phaseTransitionTimestamp": timestamp(),
    }), "When the object entered each phase.")


def cpu_topology() -> Schema:
    return obj("", {"cores": integer(minimum=0), "sockets": integer(minimum=0), "threads": integer(minimum=0)})
