"""The VirtualMachineInstanceReplicaSet controller: spec.replicas VMIs from the template,
matched by the selector; failed or finished VMIs are replaced, extras removed."""

from __future__ import annotations

import copy
import logging
from typing import Any

from kubernetes import client

from kube_client.controller import Controller, UIDTrackingControllerExpectations
from kube_client.rawapi import call, patch_status_of_version
from kubevirt_api.groups import API_VERSION, REPLICA_SET
from kubevirt_api.objects import condition_true, vmi_phase
from kubevirt_api.phases import VMIPhase
from kube_client.labels import format_label_selector, label_selector_from_object
from virt_controller.informers import BY_OWNER, REPLICA_SETS, VMIS, ClusterInformers, ownership

Obj = dict[str, Any]
log = logging.getLogger(__name__)



def _ready(vmi: Obj) -> bool:
    return vmi_phase(vmi) == VMIPhase.RUNNING and condition_true(vmi, "Ready")


def _deletion_rank(vmi: Obj) -> tuple[int, str]:
    """Delete what is least useful first: not yet running, then not ready, then the newest."""
    phase = vmi_phase(vmi)
    rank = 0 if phase in (VMIPhase.UNSET, VMIPhase.PENDING, VMIPhase.SCHEDULING) else 1 if not _ready(vmi) else 2
    return rank, "".join(chr(255 - ord(c)) for c in vmi["metadata"].get("creationTimestamp", ""))


class ReplicaSetController:
    def __init__(self, api: client.ApiClient, *, workers: int = 2, leader: Any = None,
                 informers: ClusterInformers | None = None) -> None:
        self._custom = client.CustomObjectsApi(api)
        self.expectations = UIDTrackingControllerExpectations()
        shared = informers or ClusterInformers(api)
        self.sets = shared.replica_sets
        self.vmis = shared.vmis
        self.controller = Controller("vmirs", self.reconcile, workers=workers,
                                     **ownership(informers, self.sets, self.vmis),
                                     leader=leader)
        self.controller.watch(self.sets)
        self.controller.watch_owned(
            self.vmis, REPLICA_SET.kind,
            created=lambda key, _vmi: self.expectations.creation_observed(key),
            deleted=lambda key, vmi: self.expectations.deletion_observed(key, vmi["metadata"]["uid"]))

    def start(self) -> None:
        self.controller.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.controller.stop(timeout)

    def reconcile(self, key: str) -> None:
        replica_set = self.sets.get(key)
        if replica_set is None:
            self.expectations.delete_expectations(key)
            return
        if not self.expectations.satisfied(key):
            return
        spec = replica_set["spec"]
        selector = label_selector_from_object(spec.get("selector"))
        owned = [v for v in self.vmis.by_index(BY_OWNER, replica_set["metadata"]["uid"])
                 if not v["metadata"].get("deletionTimestamp") and selector.matches(v["metadata"].get("labels"))]
        finished = [v for v in owned if vmi_phase(v).is_final]
        live = [v for v in owned if not vmi_phase(v).is_final]
        wanted = 0 if spec.get("paused") else int(spec.get("replicas", 1))
        if not spec.get("paused"):
            self._delete(key, finished)  # finished VMIs are replaced, as upstream does
            if len(live) < wanted:
                self._create(key, replica_set, wanted - len(live))
            elif len(live) > wanted:
                self._delete(key, sorted(live, key=_deletion_rank)[:len(live) - wanted])
        self._write_status(replica_set, live)

    def _create(self, key: str, replica_set: Obj, count: int) -> None:
        meta = replica_set["metadata"]
        template = replica_set["spec"]["template"]
        self.expectations.expect_creations(key, count)
        for created in range(count):
            body = {"apiVersion": API_VERSION, "kind": "VirtualMachineInstance",
                    "metadata": {"generateName": f"{meta['name']}", "namespace": meta["namespace"],
                                 "labels": copy.deepcopy((template.get("metadata") or {}).get("labels") or {}),
                                 "annotations": copy.deepcopy((template.get("metadata") or {}).get("annotations")
                                                              or {}),
                                 "ownerReferences": [{"apiVersion": API_VERSION, "kind": REPLICA_SET.kind,
                                                      "name": meta["name"], "uid": meta["uid"], "controller": True,
                                                      "blockOwnerDeletion": True}]},
                    "spec": copy.deepcopy(template["spec"])}
            try:
                call(self._custom.create_namespaced_custom_object, VMIS.group, VMIS.version, meta["namespace"],
                     VMIS.plural, body)
            except Exception:
                for _ in range(count - created):
                    self.expectations.creation_observed(key)  # these will never be seen
                raise

    def _delete(self, key: str, vmis: list[Obj]) -> None:
        if not vmis:
            return
        self.expectations.expect_deletions(key, [v["metadata"]["uid"] for v in vmis])
        for vmi in vmis:
            meta = vmi["metadata"]
            try:
                call(self._custom.delete_namespaced_custom_object, VMIS.group, VMIS.version, meta["namespace"],
                     VMIS.plural, meta["name"])
            except client.ApiException as error:
                self.expectations.deletion_observed(key, meta["uid"])
                if error.status != 404:
                    raise

    def _write_status(self, replica_set: Obj, live: list[Obj]) -> None:
        current = replica_set.get("status") or {}
        status = {**current, "replicas": len(live), "readyReplicas": sum(1 for v in live if _ready(v)),
                  "labelSelector": format_label_selector(replica_set["spec"].get("selector"))}
        if status == current:
            return
        patch_status_of_version(self._custom, REPLICA_SETS, replica_set, status)
