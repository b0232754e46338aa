"""/migration-mutate-create: the label that finds a VMI's migrations, and upstream's
kubevirt.io/migrationJobFinalize finalizer, which keeps a deleted migration until the
migration controller (virt_controller/migration_controller.py) has cancelled it and
cleaned up; the controller removes it once the migration is final."""

from __future__ import annotations

import copy
from typing import Any

from kubevirt_api.labels import MIGRATION_FINALIZER
from virt_api.admission.metadata import add_finalizer, set_label
from virt_api.admission.patches import diff
from virt_api.admission.review import ReviewRequest, allowed
from virt_api.admission.shape import as_str, dig
from virt_api.admission.vmi_defaults import child

Obj = dict[str, Any]

# Upstream's MigrationSelectorLabel: selects every migration of one VMI, which the
# create validator uses to refuse a second migration while one is in flight.
MIGRATION_SELECTOR_LABEL = "kubevirt.io/vmi-name"


def mutated_migration(migration: Obj) -> Obj:
    after = copy.deepcopy(migration)
    metadata = child(after, "metadata")
    if metadata is None:
        return after
    vmi_name = as_str(dig(after, "spec", "vmiName"))
    if vmi_name:
        set_label(metadata, MIGRATION_SELECTOR_LABEL, vmi_name)
    add_finalizer(metadata, MIGRATION_FINALIZER)
    return after


def mutate_migration(review: ReviewRequest) -> Obj:
    if review.operation != "CREATE" or review.obj is None:
        return allowed()
    return allowed(diff(review.obj, mutated_migration(review.obj)))
