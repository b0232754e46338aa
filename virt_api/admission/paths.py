"""The URL paths virt-api serves admission reviews on, spelled as upstream so webhook
configurations written for upstream KubeVirt point at the right handler."""

from __future__ import annotations

VMI_MUTATE = "/virtualmachineinstances-mutate"
VM_MUTATE = "/virtualmachines-mutate"
MIGRATION_MUTATE_CREATE = "/migration-mutate-create"

VMI_VALIDATE_CREATE = "/virtualmachineinstances-validate-create"
VMI_VALIDATE_UPDATE = "/virtualmachineinstances-validate-update"
VM_VALIDATE = "/virtualmachines-validate"
REPLICASET_VALIDATE = "/virtualmachinereplicaset-validate"
MIGRATION_VALIDATE_CREATE = "/migration-validate-create"
MIGRATION_VALIDATE_UPDATE = "/migration-validate-update"
LAUNCHER_EVICTION_VALIDATE = "/launcher-eviction-validate"

MUTATING = (VMI_MUTATE, VM_MUTATE, MIGRATION_MUTATE_CREATE)
VALIDATING = (VMI_VALIDATE_CREATE, VMI_VALIDATE_UPDATE, VM_VALIDATE, REPLICASET_VALIDATE,
              MIGRATION_VALIDATE_CREATE, MIGRATION_VALIDATE_UPDATE, LAUNCHER_EVICTION_VALIDATE)
ALL = MUTATING + VALIDATING
