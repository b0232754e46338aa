"""The VMI controller: one launcher pod per VMI, and the VMI's phase until its handler
takes over (Pending -> Scheduling -> Scheduled), or Failed when the pod fails.

Reconcile reads the caches only; expectations guarantee that a pod created a moment
ago but not yet seen in the cache is never created a second time.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client

from kube_client.controller import Controller, ControllerExpectations
from kube_client.controller.written import WrittenObjects
from kube_client.rawapi import MERGE_PATCH, call, object_key, patch_status_of_version
from kube_client.timestamps import now_text
from kubevirt_api import labels
from kubevirt_api.phases import VMIConditionType, VMIPhase
from virt_controller.informers import BY_OWNER, VMIS, ClusterInformers, ownership
from virt_controller.launcher_pod import LAUNCHER_IMAGE, launcher_pod
from virt_controller.volume_status import MissingClaim, claim_volume_status

Obj = dict[str, Any]
log = logging.getLogger(__name__)

CLAIM_RETRY_SECONDS = 5.0


def _pod_condition(pod: Obj, kind: str) -> Obj | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def _not_synchronized(reason: str, message: str) -> Obj:
    return {"type": VMIConditionType.SYNCHRONIZED.value, "status": "False", "reason": reason, "message": message,
            "lastProbeTime": None, "lastTransitionTime": now_text()}


def _migrated_away(vmi: Obj, pod: Obj) -> bool:
    """The pod is the source of a migration that succeeded: its end is not the guest's."""
    state = (vmi.get("status") or {}).get("migrationState") or {}
    return bool(state.get("completed")) and not state.get("failed") \
        and (pod.get("spec") or {}).get("nodeName") == state.get("sourceNode") != state.get("targetNode")


def _without_claim_wait(conditions: list[Obj]) -> Obj:
    """{"conditions": ...} without a stale FailedPvcNotFound, or {} when there is none."""
    kept = [c for c in conditions if c.get("reason") != "FailedPvcNotFound"]
    return {"conditions": kept} if len(kept) != len(conditions) else {}


def _pod_running(pod: Obj) -> bool:
    ready = _pod_condition(pod, "Ready")
    return (pod.get("status") or {}).get("phase") == "Running" and (ready is None or ready.get("status") == "True")


class VMIController:
    def __init__(self, api: client.ApiClient, *, launcher_image: str = LAUNCHER_IMAGE, workers: int = 2,
                 leader: Any = None, informers: ClusterInformers | None = None) -> None:
        self._api = api
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._image = launcher_image
        self.expectations = ControllerExpectations()
        self._written = WrittenObjects()
        shared = informers or ClusterInformers(api)
        self.vmis = shared.vmis
        self.pods = shared.launcher_pods
        self.controller = Controller("vmi", self.reconcile, workers=workers,
                                     **ownership(informers, self.vmis, self.pods), leader=leader)
        self.controller.watch(self.vmis)
        self.controller.watch_owned(self.pods, "VirtualMachineInstance",
                                    created=lambda key, _pod: self.expectations.creation_observed(key))

    def start(self) -> None:
        self.controller.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.controller.stop(timeout)

    # --- reconcile ------------------------------------------------------------------------

    def reconcile(self, key: str) -> float | None:
        vmi = self._written.newest(key, self.vmis.get(key))
        if vmi is None:
            self.expectations.delete_expectations(key)
            return None  # its pod goes with it (owner reference)
        meta = vmi["metadata"]
        pods = [p for p in self.pods.by_index(BY_OWNER, meta["uid"])]
        phase = VMIPhase((vmi.get("status") or {}).get("phase", ""))
        if meta.get("deletionTimestamp"):
            # The VMI stays until its pod (and so its guest) is gone, as upstream keeps it.
            self._delete_pods(pods)
            if not pods:
                self._set_finalizer(vmi, present=False)
            return None
        vmi = self._set_finalizer(vmi, present=True)
        if phase.is_final:
            return None
        if not pods:
            return self._without_pod(key, vmi, phase)
        self._with_pod(vmi, phase, pods[0])
        return None

    def _without_pod(self, key: str, vmi: Obj, phase: VMIPhase) -> float | None:
        if phase in (VMIPhase.UNSET, VMIPhase.PENDING):
            if not self.expectations.satisfied(key):
                return None  # the pod we created is on its way into the cache
            try:
                volume_status = claim_volume_status(self._core, vmi)
            except MissingClaim as missing:
                self._set_status(vmi, {"phase": VMIPhase.PENDING.value, "conditions": [_not_synchronized(
                    "FailedPvcNotFound", str(missing))]}, VMIPhase.PENDING)
                return CLAIM_RETRY_SECONDS
            changes: Obj = _without_claim_wait((vmi.get("status") or {}).get("conditions") or [])
            if volume_status:
                changes["volumeStatus"] = volume_status
            if changes:
                # The launcher reads claim modes and capacities from here: written first.
                vmi = self._set_status(vmi, changes, phase)
            self._create_pod(key, vmi)
            if phase == VMIPhase.UNSET:
                self._set_status(vmi, {"phase": VMIPhase.PENDING.value}, VMIPhase.PENDING)
            return None
        # The pod went away under a scheduled or running VMI: the guest is gone.
        self._set_status(vmi, {"phase": VMIPhase.FAILED.value, "reason": "PodNotExists"}, VMIPhase.FAILED)
        return None

    def _create_pod(self, key: str, vmi: Obj) -> None:
        self.expectations.expect_creations(key, 1)
        try:
            call(self._core.create_namespaced_pod, vmi["metadata"]["namespace"], launcher_pod(vmi, self._image))
        except Exception:
            self.expectations.creation_observed(key)  # never to be seen: do not wait for it
            raise

    def _with_pod(self, vmi: Obj, phase: VMIPhase, pod: Obj) -> None:
        pod_phase = (pod.get("status") or {}).get("phase")
        if _migrated_away(vmi, pod):
            return  # the source launcher ends after a successful migration; the guest lives on
        if pod_phase in ("Failed", "Succeeded") and phase != VMIPhase.SUCCEEDED:
            self._set_status(vmi, {"phase": VMIPhase.FAILED.value, "reason": "PodTerminated"}, VMIPhase.FAILED)
            return
        if phase not in (VMIPhase.UNSET, VMIPhase.PENDING, VMIPhase.SCHEDULING):
            return  # Scheduled and later belong to the node's handler
        scheduled = _pod_condition(pod, "PodScheduled")
        node = (pod.get("spec") or {}).get("nodeName")
        if node and _pod_running(pod):
            vmi = self._label_node(vmi, node)
            self._set_status(vmi, {"phase": VMIPhase.SCHEDULED.value, "nodeName": node,
                                   "activePods": {pod["metadata"]["uid"]: node}}, VMIPhase.SCHEDULED)
            return
        condition = None
        if scheduled is not None and scheduled.get("status") == "False":
            condition = {"type": VMIConditionType.POD_SCHEDULED.value, "status": "False",
                         "reason": scheduled.get("reason", ""), "message": scheduled.get("message", ""),
                         "lastProbeTime": None, "lastTransitionTime": now_text()}
        status: Obj = {"phase": VMIPhase.SCHEDULING.value}
        if condition is not None:
            status["conditions"] = [condition]
        self._set_status(vmi, status, VMIPhase.SCHEDULING)

    def _delete_pods(self, pods: list[Obj]) -> None:
        for pod in pods:
            if not pod["metadata"].get("deletionTimestamp"):
                try:
                    call(self._core.delete_namespaced_pod, pod["metadata"]["name"], pod["metadata"]["namespace"])
                except client.ApiException as error:
                    if error.status != 404:
                        raise

    # --- writes ---------------------------------------------------------------------------

    def _set_finalizer(self, vmi: Obj, present: bool) -> Obj:
        """Returns the VMI as written, so later writes in this pass are not stale."""
        meta = vmi["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if (labels.VMI_FINALIZER in finalizers) == present:
            return vmi
        wanted = finalizers + [labels.VMI_FINALIZER] if present else [f for f in finalizers
                                                                      if f != labels.VMI_FINALIZER]
        try:
            return self._remember(vmi, call(
                self._custom.patch_namespaced_custom_object, VMIS.group, VMIS.version, meta["namespace"],
                VMIS.plural, meta["name"], {"metadata": {"finalizers": wanted, "resourceVersion": meta["resourceVersion"]}},
                _content_type=MERGE_PATCH))
        except client.ApiException as error:
            if error.status != 404:
                raise
            return vmi

    def _label_node(self, vmi: Obj, node: str) -> Obj:
        """Returns the VMI as written: the status write that follows carries its resourceVersion."""
        if ((vmi["metadata"].get("labels") or {}).get(labels.NODE_NAME_LABEL)) == node:
            return vmi
        meta = vmi["metadata"]
        return self._remember(vmi, call(self._custom.patch_namespaced_custom_object, VMIS.group, VMIS.version,
                                        meta["namespace"], VMIS.plural, meta["name"],
                                        {"metadata": {"labels": {labels.NODE_NAME_LABEL: node}}},
                                        _content_type=MERGE_PATCH))

    def _set_status(self, vmi: Obj, changes: Obj, phase: VMIPhase) -> Obj:
        """Returns the VMI as written (or as it was, when nothing changed)."""
        current = vmi.get("status") or {}
        if all(current.get(k) == v for k, v in changes.items()):
            return vmi
        status = {**current, **changes}
        if phase.value and current.get("phase") != phase.value:
            status["phaseTransitionTimestamps"] = [*(current.get("phaseTransitionTimestamps") or []),
                                                   {"phase": phase.value, "phaseTransitionTimestamp": now_text()}]
        return self._remember(vmi, patch_status_of_version(self._custom, VMIS, vmi, status))

    def _remember(self, before: Obj, after: Obj) -> Obj:
        return self._written.remember(object_key(before), before, after)
