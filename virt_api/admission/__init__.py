"""virt-api's admission webhooks for the four kubevirt.io kinds, at upstream's paths.

    mutating:   /virtualmachineinstances-mutate, /virtualmachines-mutate, /migration-mutate-create
    validating: /virtualmachineinstances-validate-create, /virtualmachineinstances-validate-update,
                /virtualmachines-validate, /virtualmachinereplicaset-validate,
                /migration-validate-create, /migration-validate-update,
                /launcher-eviction-validate (pods/eviction of virt-launcher pods)

The checks are pure functions of the reviewed objects (modules *_defaults, *_mutation,
*_validation); only the migration create check and the launcher eviction check reach the
cluster, through Lookups, which tests replace with dictionaries.
"""

from __future__ import annotations

from functools import partial

from aiohttp import web
from kubernetes import client

from kubevirt_api.groups import MIGRATION, REPLICA_SET, VIRTUAL_MACHINE, VIRTUAL_MACHINE_INSTANCE
from pki.authority import KeyPair
from virt_api.admission import paths
from virt_api.admission.handlers import Route, route_defs
from virt_api.admission.lookups import Lookups, kubernetes_lookups
from virt_api.admission.migration_mutation import mutate_migration
from virt_api.admission.migration_validation import admit_migration_create, admit_migration_update
from virt_api.admission.pod_eviction import admit_launcher_eviction
from virt_api.admission.replicaset_validation import admit_replicaset
from virt_api.admission.users import install_namespace
from virt_api.admission.vm_mutation import mutate_vm
from virt_api.admission.vm_validation import admit_vm
from virt_api.admission.vmi_mutation import mutate_vmi
from virt_api.admission.vmi_validation import admit_vmi_create, admit_vmi_update


def admission_table(lookups: Lookups, namespace: str) -> list[Route]:
    """Every webhook: its path, the resource it is registered for and its check.
    namespace is virt-api's own, whose service accounts count as KubeVirt."""
    vmis, vms = VIRTUAL_MACHINE_INSTANCE.plural, VIRTUAL_MACHINE.plural
    migrations, replica_sets = MIGRATION.plural, REPLICA_SET.plural
    return [
        Route(paths.VMI_MUTATE, vmis, mutate_vmi),
        Route(paths.VM_MUTATE, vms, mutate_vm),
        Route(paths.MIGRATION_MUTATE_CREATE, migrations, mutate_migration),
        Route(paths.VMI_VALIDATE_CREATE, vmis, partial(admit_vmi_create, namespace=namespace)),
        Route(paths.VMI_VALIDATE_UPDATE, vmis, partial(admit_vmi_update, namespace=namespace)),
        Route(paths.VM_VALIDATE, vms, partial(admit_vm, namespace=namespace)),
        Route(paths.REPLICASET_VALIDATE, replica_sets, partial(admit_replicaset, _namespace=namespace)),
        Route(paths.MIGRATION_VALIDATE_CREATE, migrations, partial(admit_migration_create, lookups=lookups),
              blocking=True),
        Route(paths.MIGRATION_VALIDATE_UPDATE, migrations, partial(admit_migration_update, _namespace=namespace)),
        Route(paths.LAUNCHER_EVICTION_VALIDATE, "pods", partial(admit_launcher_eviction, lookups=lookups),
              blocking=True),
    ]


def admission_route_defs(lookups: Lookups, namespace: str) -> list[web.RouteDef]:
    return route_defs(admission_table(lookups, namespace))


def admission_routes(api: client.ApiClient, ca: KeyPair) -> list[web.RouteDef]:
    """The RouteSource virt-api's server mounts (TLS with the cluster CA is the server's job)."""
    del ca
    return admission_route_defs(kubernetes_lookups(api), install_namespace())


__all__ = ["admission_routes", "admission_route_defs", "admission_table", "Lookups", "paths"]
