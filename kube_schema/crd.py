"""Validate a custom resource against its CustomResourceDefinition, as kube-apiserver does."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kube_schema.errors import NOT_SUPPORTED, UNKNOWN, FieldError
from kube_schema.objectmeta import metadata_errors
from kube_schema.prune import prune
from kube_schema.validate import SchemaValidator


@dataclass
class Admitted:
    """The outcome of validating one object: the pruned object and what was wrong."""

    obj: dict[str, Any]
    errors: list[FieldError] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class CRDValidator:
    """Validates objects of one CRD, for every served version."""

    def __init__(self, crd: dict[str, Any]) -> None:
        spec = crd["spec"]
        self.group: str = spec["group"]
        self.kind: str = spec["names"]["kind"]
        self.namespaced = spec.get("scope", "Namespaced") == "Namespaced"
        self._schemas: dict[str, dict[str, Any]] = {}
        self._validators: dict[str, SchemaValidator] = {}
        for version in spec["versions"]:
            if version.get("served", True):
                schema = version["schema"]["openAPIV3Schema"]
                self._schemas[version["name"]] = schema
                self._validators[version["name"]] = SchemaValidator(schema)

    @property
    def versions(self) -> list[str]:
        return list(self._schemas)

    def schema(self, version: str) -> dict[str, Any]:
        return self._schemas[version]

    def admit(self, obj: dict[str, Any], *, strict: bool = False) -> Admitted:
        """Prune and validate a copy of ``obj``. ``strict`` turns pruned fields into errors,
        as ``kubectl --validate=strict`` (fieldValidation=Strict) does."""
        version = self._version_of(obj)
        if isinstance(version, FieldError):
            return Admitted(obj, [version])
        pruned_obj = copy.deepcopy(obj)
        pruned = prune(pruned_obj, self._schemas[version])
        errors = metadata_errors(obj.get("metadata"), namespaced=self.namespaced)
        if strict:
            errors += [FieldError(path, UNKNOWN, f'unknown field "{path}"') for path in pruned]
        errors += self._validators[version].errors(pruned_obj)
        return Admitted(pruned_obj, errors, pruned)

    def _version_of(self, obj: dict[str, Any]) -> str | FieldError:
        api_version = obj.get("apiVersion", "")
        group, _, version = api_version.rpartition("/")
        if group != self.group or version not in self._schemas:
            supported = [f"{self.group}/{v}" for v in self._schemas]
            return FieldError("apiVersion", NOT_SUPPORTED, "supported values: " + ", ".join(f'"{s}"' for s in supported),
                              api_version)
        if obj.get("kind") != self.kind:
            return FieldError("kind", NOT_SUPPORTED, f'supported values: "{self.kind}"', obj.get("kind"))
        return version
