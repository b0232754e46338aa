"""kube_schema: the structural-schema rules our API server and webhooks share."""

from __future__ import annotations

import pytest

from kube_schema import SchemaValidator, invalid_status, prune, structural_violations
from kube_schema.errors import INVALID, REQUIRED, FieldError

INT_OR_STRING = {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}


@pytest.mark.parametrize("schema, problem", [
    ({"type": "object", "properties": {"a": {}}}, "a.type: Required value"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}},
     "mutually exclusive"),
    ({"type": "object", "additionalProperties": False}, "must not be false"),
    ({"type": "object", "properties": {"a": {"type": "string", "anyOf": [{"type": "string", "description": "x"}]}}},
     "a.anyOf[0].description: Forbidden"),
    ({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}},
     "metadata: Forbidden"),
])
def test_non_structural_schemas_are_detected(schema: dict, problem: str) -> None:
    violations = structural_violations(schema)
    assert any(problem in v for v in violations), violations


def test_structural_schema_passes() -> None:
    schema = {"type": "object", "properties": {
        "size": INT_OR_STRING,
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}},
    }}
    assert structural_violations(schema) == []


def test_openapi_dialect_nullable_int_or_string_and_exclusive_bounds() -> None:
    validator = SchemaValidator({"type": "object", "properties": {
        "maybe": {"type": "boolean", "nullable": True},
        "size": INT_OR_STRING,
        "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
    }})
    assert validator.errors({"maybe": None, "size": 3, "ratio": 0.5}) == []
    assert validator.errors({"size": "3Gi"}) == []
    errors = {e.field: e for e in validator.errors({"maybe": "no", "size": [1], "ratio": 0})}
    assert errors["maybe"].detail == 'maybe in body must be of type boolean: "no"'
    assert errors["size"].detail.startswith("size in body must be of type integer-or-string")
    assert errors["ratio"].detail == "ratio in body should be greater than 0"


def test_prune_keeps_preserved_and_embedded_fields() -> None:
    schema = {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"a": {"type": "string"}}},
        "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "embedded": {"type": "object", "x-kubernetes-embedded-resource": True,
                     "properties": {"spec": {"type": "object"}}},
        "items": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
    }}
    obj = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "n", "anything": 1},
           "spec": {"a": "x", "b": 1}, "open": {"z": {"deep": True}},
           "embedded": {"apiVersion": "v1", "kind": "Y", "metadata": {}, "spec": {}, "junk": 1},
           "items": [{"k": "v", "drop": 1}], "top": 2}
    removed = prune(obj, schema)
    assert removed == ["spec.b", "embedded.junk", "items[0].drop", "top"]
    assert obj["open"] == {"z": {"deep": True}} and obj["metadata"]["anything"] == 1
    assert set(obj["embedded"]) == {"apiVersion", "kind", "metadata", "spec"}


def test_invalid_status_is_what_kube_apiserver_returns() -> None:
    errors = [FieldError("spec.template", REQUIRED), FieldError("spec.replicas", INVALID, "must be >= 0", -1)]
    status = invalid_status("kubevirt.io", "VirtualMachineInstanceReplicaSet", "rs", errors)
    assert status["code"] == 422 and status["reason"] == "Invalid" and status["status"] == "Failure"
    assert status["message"] == ('VirtualMachineInstanceReplicaSet.kubevirt.io "rs" is invalid: '
                                 '[spec.template: Required value, spec.replicas: Invalid value: -1: must be >= 0]')
    assert status["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "spec.template: Required value", "field": "spec.template"},
        {"reason": "FieldValueInvalid", "message": "spec.replicas: Invalid value: -1: must be >= 0",
         "field": "spec.replicas"},
    ]
