"""Pods of a pod-owning workload (ReplicaSet, DaemonSet): which owner a pod wakes, and
the expectations it counts off. Owners match by uid, not just by name, and orphans wake
every owner whose selector could adopt them."""

from __future__ import annotations

from typing import Any

from kube_client.controller import Controller, SharedInformer, UIDTrackingControllerExpectations
from kube_client.rawapi import object_key
from local_cluster.workloads.ownership import controller_of, selects
from local_cluster.workloads.pod_state import is_terminating, meta

Obj = dict[str, Any]


class OwnedPods:
    def __init__(self, kind: str, owners: SharedInformer, expectations: UIDTrackingControllerExpectations) -> None:
        self._kind = kind
        self._owners = owners
        self._expectations = expectations

    def attach(self, controller: Controller, pods: SharedInformer) -> None:
        """Handlers run in the order added: expectations are counted off before the owner
        is queued, so the reconcile that follows already sees them met."""
        pods.add_event_handler(on_add=self._added, on_update=self._updated, on_delete=self._deleted)
        controller.watch(pods, keys=self.keys_for_pod)

    def owner_key(self, pod: Obj) -> str | None:
        """The key of the cached owner managing pod (the uid must match, not just the name)."""
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != self._kind:
            return None
        key = f"{meta(pod).get('namespace', '')}/{ref.get('name', '')}"
        owner = self._owners.get(key)
        return key if owner is not None and meta(owner).get("uid") == ref.get("uid") else None

    def keys_for_pod(self, pod: Obj) -> list[str]:
        key = self.owner_key(pod)
        if key is not None:
            return [key]
        if controller_of(pod) is not None or is_terminating(pod):
            return []
        # An orphan: every owner that could adopt it.
        return [object_key(owner) for owner in self._owners.list(meta(pod).get("namespace", ""))
                if selects((owner.get("spec") or {}).get("selector"), pod)]

    def _added(self, pod: Obj) -> None:
        if is_terminating(pod):
            # Seen for the first time already on its way out (a relist): that is a
            # deletion we may be waiting for, never a creation.
            self._deleted(pod)
            return
        key = self.owner_key(pod)
        if key is not None:
            self._expectations.creation_observed(key)

    def _updated(self, old: Obj, new: Obj) -> None:
        if is_terminating(new) and not is_terminating(old):
            # A graceful deletion shows first as a deletionTimestamp: that is the deletion
            # we asked for, and waiting for the pod to vanish would stall scaling.
            self._deleted(new)

    def _deleted(self, pod: Obj) -> None:
        key = self.owner_key(pod)
        if key is not None:
            self._expectations.deletion_observed(key, str(meta(pod).get("uid", "")))
