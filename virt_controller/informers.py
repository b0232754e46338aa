"""virt-controller's informers: one per kind it follows, shared by every controller.

As upstream's informer factory: each replica lists and watches VMIs (and pods, nodes,
migrations, VMs, replica sets) once, and every controller reads the same cache. One
informer per controller instead had the API server encode and send each VMI event six
times to each replica, and each replica decode and cache it six times.

The indexes every controller looks objects up by are declared here, once.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client

from kube_client.controller import SharedInformer
from kube_client.controller.resource import NODES, PODS, Resource
from kube_client.controller.store import controller_uid_index, label_index
from kubevirt_api import labels

Obj = dict[str, Any]

VMIS = Resource("kubevirt.io", "v1", "virtualmachineinstances")
VMS = Resource("kubevirt.io", "v1", "virtualmachines")
MIGRATIONS = Resource("kubevirt.io", "v1", "virtualmachineinstancemigrations")
REPLICA_SETS = Resource("kubevirt.io", "v1", "virtualmachineinstancereplicasets")

# Index names. VMIs: by uid, by node (label), by controlling replica set.
BY_UID = "uid"
BY_NODE = "node"
BY_OWNER = "owner"
# Migrations by their VMI's key; launcher pods by controlling VMI, migration job and VMI uid.
BY_VMI = "vmi"
BY_MIGRATION = "migration"


def migration_vmi_key(migration: Obj) -> str:
    return f"{migration['metadata'].get('namespace', '')}/{(migration.get('spec') or {}).get('vmiName', '')}"


def _vmi_key_index(migration: Obj) -> list[str]:
    return [migration_vmi_key(migration)] if (migration.get("spec") or {}).get("vmiName") else []


def _uid_index(obj: Obj) -> list[str]:
    uid = (obj.get("metadata") or {}).get("uid")
    return [str(uid)] if uid else []


class ClusterInformers:
    """Made before the controllers that read them; started and stopped by their owner."""

    def __init__(self, api: client.ApiClient) -> None:
        self.vmis = SharedInformer(api, VMIS, name="vmis")
        self.vmis.add_indexer(BY_UID, _uid_index)
        self.vmis.add_indexer(BY_NODE, label_index(labels.NODE_NAME_LABEL))
        self.vmis.add_indexer(BY_OWNER, controller_uid_index)
        self.launcher_pods = SharedInformer(api, PODS, label_selector=f"{labels.APP_LABEL}={labels.VIRT_LAUNCHER}",
                                            name="launcher-pods")
        self.launcher_pods.add_indexer(BY_OWNER, controller_uid_index)
        self.launcher_pods.add_indexer(BY_MIGRATION, label_index(labels.MIGRATION_JOB_LABEL))
        self.launcher_pods.add_indexer(BY_VMI, label_index(labels.CREATED_BY_LABEL))
        self.migrations = SharedInformer(api, MIGRATIONS, name="migrations")
        self.migrations.add_indexer(BY_VMI, _vmi_key_index)
        self.nodes = SharedInformer(api, NODES, name="nodes")
        self.vms = SharedInformer(api, VMS, name="vms")
        self.replica_sets = SharedInformer(api, REPLICA_SETS, name="vmirs")

    def all(self) -> list[SharedInformer]:
        return [self.vmis, self.launcher_pods, self.migrations, self.nodes, self.vms, self.replica_sets]

    def start(self) -> None:
        for informer in self.all():
            informer.start()

    def stop(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        return all([informer.stop(max(0.0, deadline - time.monotonic())) for informer in self.all()])


def ownership(given: ClusterInformers | None, *used: SharedInformer) -> dict[str, list[SharedInformer]]:
    """A controller's Controller arguments for the informers it uses: it runs them itself
    when it made its own ClusterInformers (run alone, as tests do); given its replica's,
    it only waits for them to sync."""
    return {"informers": [] if given is not None else list(used), "shared": list(used) if given is not None else []}
