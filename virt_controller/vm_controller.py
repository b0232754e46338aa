"""The VM controller: a VMI from the VM's template when its run strategy wants one, none
when it does not, and the VM's status (printableStatus, ready, start back-off).

Run strategies, as upstream: Always (restart whatever ends), RerunOnFailure (restart
failures, keep a clean stop), Once (run to the end once), Manual (only start/stop
requests), Halted (never). The deprecated spec.running maps to Always / Halted.
"""

from __future__ import annotations

import copy
import datetime
import logging
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from kube_client import timestamps
from kube_client.controller import Controller, ControllerExpectations
from kube_client.controller.written import WrittenObjects
from kube_client.rawapi import call, object_key, patch_status_of_version
from kubevirt_api.groups import API_VERSION, VIRTUAL_MACHINE
from kubevirt_api.objects import SpecError, condition_true, run_strategy, vmi_phase
from kubevirt_api.phases import RunStrategy, VMIPhase
from virt_controller.informers import VMIS, VMS, ClusterInformers, ownership
from virt_controller.vm_status import BACKOFF_BASE_SECONDS, backoff_seconds, in_backoff, printable_status

Obj = dict[str, Any]
log = logging.getLogger(__name__)



def wants_vmi(strategy: RunStrategy, vmi: Obj | None) -> bool | None:
    """What the run strategy alone says. True: a VMI should run; False: none should;
    None: leave things as they are."""
    phase = vmi_phase(vmi) if vmi is not None else None
    if strategy == RunStrategy.HALTED:
        return False
    if strategy == RunStrategy.ALWAYS:
        return True
    if strategy == RunStrategy.RERUN_ON_FAILURE:
        # A clean stop (Succeeded) stays stopped; no VMI or a failed one means run (again).
        return None if phase == VMIPhase.SUCCEEDED else True
    return None  # Manual and Once: only requests (and Once's first start) start a VMI


@dataclass(frozen=True)
class RequestPlan:
    """What the head of stateChangeRequests asks for now, and the requests left after it."""
    want: bool | None
    remaining: list[Obj]
    start_paused: bool = False


def plan_requests(requests: list[Obj], vmi: Obj | None) -> RequestPlan:
    """Requests are served in order, as upstream does: a Stop for a VMI holds until that VMI
    is gone, so a restart ([Stop(uid), Start]) really replaces the guest."""
    remaining = list(requests)
    while remaining:
        head = remaining[0]
        action = head.get("action")
        if action == "Stop":
            target = head.get("uid")
            if vmi is not None and (not target or target == vmi["metadata"]["uid"]):
                return RequestPlan(False, remaining)
        elif action == "Start":
            if vmi is None:
                paused = str((head.get("data") or {}).get("startPaused", "")).lower() == "true"
                return RequestPlan(True, remaining[1:], paused)
            if vmi["metadata"].get("deletionTimestamp"):
                return RequestPlan(None, remaining)  # the old guest is still going away
        remaining.pop(0)  # served already (or unknown): drop it
    return RequestPlan(None, [])


class VMController:
    def __init__(self, api: client.ApiClient, *, workers: int = 2, leader: Any = None,
                 backoff_base: float = BACKOFF_BASE_SECONDS, informers: ClusterInformers | None = None) -> None:
        self._custom = client.CustomObjectsApi(api)
        self._backoff_base = backoff_base
        self.expectations = ControllerExpectations()
        self._written = WrittenObjects()
        shared = informers or ClusterInformers(api)
        self.vms = shared.vms
        self.vmis = shared.vmis
        self.controller = Controller("vm", self.reconcile, workers=workers, **ownership(informers, self.vms, self.vmis),
                                     leader=leader)
        self.controller.watch(self.vms)
        self.controller.watch_owned(self.vmis, VIRTUAL_MACHINE.kind,
                                    created=lambda key, _vmi: self.expectations.creation_observed(key))

    def start(self) -> None:
        self.controller.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.controller.stop(timeout)

    def reconcile(self, key: str) -> float | None:
        vm = self._written.newest(key, self.vms.get(key))
        if vm is None:
            self.expectations.delete_expectations(key)
            return None
        if not self.expectations.satisfied(key):
            return None  # our new VMI is on its way into the cache
        vmi = self.vmis.get(key)
        if vmi is not None and not any(r.get("uid") == vm["metadata"]["uid"]
                                       for r in vmi["metadata"].get("ownerReferences") or []):
            vmi = None  # a VMI of the same name that this VM does not own
        try:
            strategy = run_strategy(vm)
        except SpecError as error:
            log.warning("VM %s: %s", key, error)
            return None
        requests = list((vm.get("status") or {}).get("stateChangeRequests") or [])
        plan = plan_requests(requests, vmi) if requests else None
        now = timestamps.now()
        failures = self._failures(vm, vmi)
        if failures.get("lastFailedVMIUID") != ((vm.get("status") or {}).get("startFailure") or {}).get(
                "lastFailedVMIUID"):
            # Count a failed VMI before deleting it: were the count written after the delete, a
            # conflicting write would retry with the VMI gone and the failure forgotten. The
            # VM's own update event brings us back to act.
            self._write_status(vm, vmi, failures, now, None)
            return None
        retry_in = self._act(key, vm, vmi, strategy, plan, now, failures)
        self._write_status(vm, self.vmis.get(key) if vmi is not None else None, failures, now,
                           plan.remaining if plan is not None else None)
        return retry_in

    def _failures(self, vm: Obj, vmi: Obj | None) -> Obj:
        """startFailure after looking at the current VMI: a failed run counts once."""
        failure = dict((vm.get("status") or {}).get("startFailure") or {})
        if vmi is not None and vmi_phase(vmi) == VMIPhase.FAILED \
                and failure.get("lastFailedVMIUID") != vmi["metadata"]["uid"]:
            count = int(failure.get("consecutiveFailCount", 0)) + 1
            failure = {"consecutiveFailCount": count, "retries": int(failure.get("retries", 0)) + 1,
                       "lastFailedVMIUID": vmi["metadata"]["uid"],
                       "retryAfterTimestamp": timestamps.format_time(timestamps.now() + datetime.timedelta(
                           seconds=backoff_seconds(count, self._backoff_base)))}
        elif vmi is not None and vmi_phase(vmi) == VMIPhase.RUNNING and condition_true(vmi, "Ready"):
            failure = {}
        return failure

    def _act(self, key: str, vm: Obj, vmi: Obj | None, strategy: RunStrategy, plan: RequestPlan | None,
             now: datetime.datetime, failures: Obj) -> float | None:
        want = plan.want if plan is not None else wants_vmi(strategy, vmi)
        if strategy == RunStrategy.ONCE and vmi is None and not (vm.get("status") or {}).get("created") \
                and not failures:
            want = True
        if vm["metadata"].get("deletionTimestamp"):
            want = False
        if vmi is not None and (want is False or (want and vmi_phase(vmi).is_final)):
            if not vmi["metadata"].get("deletionTimestamp"):
                self._delete_vmi(vmi)
            return None
        if vmi is None and want:
            probe = {**vm, "status": {**(vm.get("status") or {}), "startFailure": failures}}
            if in_backoff(probe, now):
                retry_after = timestamps.parse_time(failures["retryAfterTimestamp"])
                return max((retry_after - now).total_seconds(), 1.0)
            self._create_vmi(key, vm, paused=plan is not None and plan.start_paused)
        return None

    # --- writes ---------------------------------------------------------------------------

    def _create_vmi(self, key: str, vm: Obj, paused: bool = False) -> None:
        meta = vm["metadata"]
        template = copy.deepcopy(vm["spec"]["template"])
        if paused:  # virtctl start --paused
            template.setdefault("spec", {})["startStrategy"] = "Paused"
        template_meta = template.get("metadata") or {}
        body = {"apiVersion": API_VERSION, "kind": "VirtualMachineInstance",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                             "labels": template_meta.get("labels") or {},
                             "annotations": template_meta.get("annotations") or {},
                             "ownerReferences": [{"apiVersion": API_VERSION, "kind": VIRTUAL_MACHINE.kind,
                                                  "name": meta["name"], "uid": meta["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]},
                "spec": template["spec"]}
        self.expectations.expect_creations(key, 1)
        try:
            call(self._custom.create_namespaced_custom_object, VMIS.group, VMIS.version, meta["namespace"],
                 VMIS.plural, body)
        except Exception:
            self.expectations.creation_observed(key)
            raise

    def _delete_vmi(self, vmi: Obj) -> None:
        meta = vmi["metadata"]
        try:
            call(self._custom.delete_namespaced_custom_object, VMIS.group, VMIS.version, meta["namespace"],
                 VMIS.plural, meta["name"], body={"preconditions": {"uid": meta["uid"]}})
        except client.ApiException as error:
            if error.status not in (404, 409):
                raise

    def _write_status(self, vm: Obj, vmi: Obj | None, failures: Obj, now: datetime.datetime,
                      remaining_requests: list[Obj] | None) -> None:
        """remaining_requests: None leaves stateChangeRequests alone; a list replaces them."""
        current = vm.get("status") or {}
        ready = vmi is not None and vmi_phase(vmi) == VMIPhase.RUNNING and condition_true(vmi, "Ready")
        status = {**current, "created": vmi is not None, "ready": ready,
                  "printableStatus": printable_status({**vm, "status": {**current, "startFailure": failures}},
                                                      vmi, now).value,
                  "runStrategy": run_strategy(vm).value,
                  "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                  "lastProbeTime": None, "lastTransitionTime": None}]}
        if failures:
            status["startFailure"] = failures
        else:
            status.pop("startFailure", None)
        if remaining_requests is not None:
            if remaining_requests:
                status["stateChangeRequests"] = remaining_requests
            else:
                status.pop("stateChangeRequests", None)
        if status == current:
            return
        if not failures:
            status["startFailure"] = None  # merge patch: remove it
        if remaining_requests == []:
            status["stateChangeRequests"] = None
        self._written.remember(object_key(vm), vm, patch_status_of_version(self._custom, VMS, vm, status))
