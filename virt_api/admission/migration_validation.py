"""/migration-validate-create and /migration-validate-update.

A migration is refused up front when it cannot succeed: its VMI must exist in the same
namespace, be Running, report LiveMigratable=True (virt-handler computes it with
kubevirt_api.migratability and writes the condition), and not be migrating already.
"""

from __future__ import annotations

from typing import Any

from kube_schema.errors import FieldError
from kubevirt_api.groups import MIGRATION
from kubevirt_api.migratability import migratability
from kubevirt_api.objects import condition, vmi_phase
from kubevirt_api.phases import MigrationPhase, VMIConditionType, VMIPhase
from virt_api.admission.causes import invalid, required
from virt_api.admission.lookups import Lookups
from virt_api.admission.migration_mutation import MIGRATION_SELECTOR_LABEL
from virt_api.admission.review import ReviewRequest, allowed, refused
from virt_api.admission.review import invalid as invalid_response
from virt_api.admission.shape import as_obj, as_str, dig, str_map

Obj = dict[str, Any]
KIND = MIGRATION.kind
FIELD = "spec.vmiName"
FINAL_PHASES = (MigrationPhase.SUCCEEDED.value, MigrationPhase.FAILED.value)


def validate_migration_spec(migration: Obj) -> list[FieldError]:
    if not as_str(dig(migration, "spec", "vmiName")):
        return [required(FIELD, "name the VirtualMachineInstance to migrate")]
    return []


def _not_migratable(reason: str, message: str) -> str:
    # Upstream's wording, which tools and users already recognise.
    return f"Cannot migrate VMI, Reason: {reason}, Message: {message}"


def check_migratable(vmi: Obj | None, namespace: str, name: str) -> list[FieldError]:
    if vmi is None:
        return [invalid(FIELD, name, f'the VMI "{namespace}/{name}" does not exist')]
    phase = vmi_phase(vmi)
    if phase is not VMIPhase.RUNNING:
        shown = phase.value or "not yet scheduled"
        return [invalid(FIELD, name, f"the VMI is {shown}; only a Running VMI can be migrated")]
    found = condition(vmi, VMIConditionType.LIVE_MIGRATABLE.value)
    if found is None:
        # The handler has not reported yet; the spec alone may already say why not.
        computed = migratability(vmi)
        if not computed.migratable:
            return [invalid(FIELD, name, _not_migratable(computed.reason, computed.message))]
        return [invalid(FIELD, name, "the VMI does not report its LiveMigratable condition yet; "
                                     "try again once its node has reported it")]
    if found.get("status") != "True":
        return [invalid(FIELD, name, _not_migratable(str(found.get("reason") or ""),
                                                     str(found.get("message") or "")))]
    return []


def check_none_in_flight(migrations: list[Obj], name: str) -> list[FieldError]:
    """Two migrations of one VMI would race for the same target and source domain."""
    for migration in migrations:
        if dig(migration, "status", "phase") in FINAL_PHASES:
            continue
        other = as_str(dig(migration, "metadata", "name")) or "?"
        return [invalid(FIELD, name, f"migration {other} of this VMI is still in progress; "
                                     f"wait for it to finish or delete it")]
    return []


def _namespace(review: ReviewRequest) -> str:
    return review.namespace or as_str(dig(review.obj, "metadata", "namespace")) or "default"


def _name(review: ReviewRequest) -> str:
    return as_str(dig(review.obj, "metadata", "name")) or review.name


def admit_migration_create(review: ReviewRequest, lookups: Lookups) -> Obj:
    """Blocking: reads the cluster through the lookups, so the server runs it in a thread."""
    if review.obj is None:
        return allowed()
    errors = validate_migration_spec(review.obj)
    if errors:
        return invalid_response(KIND, _name(review), errors)
    namespace, vmi_name = _namespace(review), dig(review.obj, "spec", "vmiName")
    try:
        vmi = lookups.vmi(namespace, vmi_name)
        in_flight = lookups.migrations(namespace, vmi_name)
    except Exception as error:  # noqa: BLE001 - any lookup failure is an answer, not a crash
        return refused(503, "ServiceUnavailable", f'cannot read VMI "{namespace}/{vmi_name}" and its migrations: '
                                                  f"{type(error).__name__}: {error}")
    errors = check_migratable(vmi if isinstance(vmi, dict) else None, namespace, vmi_name)
    errors = errors or check_none_in_flight([m for m in in_flight if isinstance(m, dict)], vmi_name)
    return invalid_response(KIND, _name(review), errors) if errors else allowed()


def validate_migration_change(new: Obj, old: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    if new.get("spec") != old.get("spec"):
        errors.append(invalid("spec", new.get("spec"), "field is immutable: create a new migration instead"))
    # The selector label is how a second migration of the VMI is refused; it must not be
    # changed while this one is still running.
    old_label = str_map(dig(old, "metadata", "labels")).get(MIGRATION_SELECTOR_LABEL)
    new_label = str_map(dig(new, "metadata", "labels")).get(MIGRATION_SELECTOR_LABEL)
    in_flight = as_obj(new.get("status")).get("phase") not in FINAL_PHASES
    if in_flight and old_label is not None and new_label != old_label:
        errors.append(invalid(f"metadata.labels[{MIGRATION_SELECTOR_LABEL}]", new_label,
                              "cannot be changed or removed while the migration is in progress"))
    return errors


def admit_migration_update(review: ReviewRequest, _namespace: str) -> Obj:
    if review.obj is None or review.old is None:
        return allowed()
    errors = validate_migration_change(review.obj, review.old)
    return invalid_response(KIND, _name(review), errors) if errors else allowed()
