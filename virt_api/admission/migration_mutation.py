"""/migration-mutate-create: the label that finds a VMI's migrations.

Upstream also adds kubevirt.io/migrationJobFinalize, which its migration controller
removes after cleaning up; ours does not exist yet, and a finalizer nobody removes
would make migrations undeletable, so it comes with that controller."""

from __future__ import annotations

import copy
from typing import Any

from virt_api.admission.metadata import set_label
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
    return after


def mutate_migration(review: ReviewRequest) -> Obj:
    if review.operation != "CREATE" or review.obj is None:
        return allowed()
    return allowed(diff(review.obj, mutated_migration(review.obj)))
