"""The four CustomResourceDefinitions, as kube-apiserver expects them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubevirt_api.groups import (
    GROUP, MIGRATION, REPLICA_SET, SERVED_VERSIONS, VERSION, VIRTUAL_MACHINE, VIRTUAL_MACHINE_INSTANCE, Kind,
)
from kubevirt_api.schema.builders import Schema, obj, string
from kubevirt_api.schema.migration import migration_spec, migration_status
from kubevirt_api.schema.replicaset import replicaset_spec, replicaset_status
from kubevirt_api.schema.vm import vm_spec, vm_status
from kubevirt_api.schema.vmi import vmi_spec, vmi_status

Column = dict[str, Any]


def _column(name: str, json_path: str, kind: str = "string", priority: int = 0, fmt: str | None = None) -> Column:
    column: Column = {"name": name, "type": kind, "jsonPath": json_path}
    if priority:
        column["priority"] = priority
    if fmt:
        column["format"] = fmt
    return column


def _age() -> Column:
    return _column("Age", ".metadata.creationTimestamp", "date")


def _condition(name: str, condition: str, priority: int = 0) -> Column:
    return _column(name, f".status.conditions[?(@.type=='{condition}')].status", priority=priority)


def _root(spec: Schema, status: Schema) -> Schema:
    return obj("", {
        "apiVersion": string("Versioned schema of this object."),
        "kind": string("Kind of this object."),
        "metadata": {"type": "object"},
        "spec": spec,
        "status": status,
    }, required=["spec"])


def _crd(kind: Kind, schema: Callable[[], Schema], columns: list[Column], scale: bool = False) -> dict[str, Any]:
    subresources: dict[str, Any] = {"status": {}}
    if scale:
        subresources["scale"] = {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.labelSelector",
        }
    versions = []
    for version in SERVED_VERSIONS:
        entry: dict[str, Any] = {
            "name": version,
            "served": True,
            "storage": version == VERSION,
            "schema": {"openAPIV3Schema": schema()},
            "subresources": subresources,
            "additionalPrinterColumns": columns,
        }
        if version != VERSION:
            entry["deprecated"] = True
            entry["deprecationWarning"] = f"{GROUP}/{version} is now deprecated and will be removed in a future release."
        versions.append(entry)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/part-of": "kubevirt-py"}},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": kind.list_kind,
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": ["all"],
            },
            "scope": "Namespaced",
            "versions": versions,
        },
    }


def virtual_machine_instance_crd() -> dict[str, Any]:
    return _crd(VIRTUAL_MACHINE_INSTANCE, lambda: _root(vmi_spec(), vmi_status()), [
        _age(),
        _column("Phase", ".status.phase"),
        _column("IP", ".status.interfaces[0].ipAddress"),
        _column("NodeName", ".status.nodeName"),
        _condition("Ready", "Ready"),
        _condition("Live-Migratable", "LiveMigratable", priority=1),
        _condition("Paused", "Paused", priority=1),
    ])


def virtual_machine_crd() -> dict[str, Any]:
    return _crd(VIRTUAL_MACHINE, lambda: _root(vm_spec(), vm_status()), [
        _age(),
        _column("Status", ".status.printableStatus"),
        _condition("Ready", "Ready"),
    ])


def replica_set_crd() -> dict[str, Any]:
    return _crd(REPLICA_SET, lambda: _root(replicaset_spec(), replicaset_status()), [
        _column("Desired", ".spec.replicas", "integer"),
        _column("Current", ".status.replicas", "integer"),
        _column("Ready", ".status.readyReplicas", "integer"),
        _age(),
    ], scale=True)


def migration_crd() -> dict[str, Any]:
    return _crd(MIGRATION, lambda: _root(migration_spec(), migration_status()), [
        _column("Phase", ".status.phase"),
        _column("VMI", ".spec.vmiName"),
        _age(),
    ])


def all_crds() -> dict[str, dict[str, Any]]:
    """File stem -> CRD, in the order they are applied."""
    return {
        "virtualmachineinstances": virtual_machine_instance_crd(),
        "virtualmachines": virtual_machine_crd(),
        "virtualmachineinstancereplicasets": replica_set_crd(),
        "virtualmachineinstancemigrations": migration_crd(),
    }
