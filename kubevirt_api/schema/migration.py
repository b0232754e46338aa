"""VirtualMachineInstanceMigration: one live migration of one VMI."""

from __future__ import annotations

from kubevirt_api.phases import MigrationPhase, values
from kubevirt_api.schema.builders import Schema, obj, string, string_map
from kubevirt_api.schema.common import conditions, phase_transitions
from kubevirt_api.schema.vmi import migration_state


def migration_spec() -> Schema:
    return obj("Specification of a live migration.", {
        "vmiName": string("Name of the VMI to migrate, in the same namespace."),
        "addedNodeSelector": string_map("Extra node selector for the target pod."),
    }, required=["vmiName"], open_ended=True)


def migration_status() -> Schema:
    return obj("Observed state of a live migration.", {
        "phase": string(enum=values(MigrationPhase, with_unset=True)),
        "phaseTransitionTimestamps": phase_transitions(),
        "conditions": conditions(),
        "migrationState": migration_state(),
    }, open_ended=True)
