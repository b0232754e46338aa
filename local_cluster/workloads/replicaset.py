"""The ReplicaSet controller (apps/v1): keep spec.replicas pods that match the selector.

Each reconcile claims the active pods of the namespace (adopting orphans whose labels
match, releasing ours whose labels no longer do), then creates pods from the template
or deletes the most expendable ones (deletion_order.py) to reach spec.replicas, and
writes the status.

Expectations keep a lagging cache from causing double work: before creating (deleting)
pods the controller records how many it expects to see arrive (which ones it expects
to see go), the pod handlers count them off as the watch delivers them, and until
they are all seen the controller only updates status. A failed write is counted off
at once, since the watch will never report it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from kube_client.controller import UIDTrackingControllerExpectations
from kube_client.rawapi import MERGE_PATCH, call, status_code
from kube_client.recorder import NORMAL, WARNING
from local_cluster.workloads.base import APPS_V1, WorkloadController, describe_error, namespace_terminating
from local_cluster.workloads.conditions import find, new_condition, set_condition, without
from local_cluster.workloads.deletion_order import deletion_order
from local_cluster.workloads.informers import WorkloadInformers
from local_cluster.workloads.ownership import Claim, owner_reference, selector_problem
from local_cluster.workloads.pod_state import (is_active, is_ready, is_terminating, meta,
                                               seconds_until_available)
from local_cluster.workloads.pod_template import generate_name, pod_from_template
from local_cluster.workloads.pod_tracking import OwnedPods

Obj = dict[str, Any]
log = logging.getLogger(__name__)

KIND = "ReplicaSet"
REPLICA_FAILURE = "ReplicaFailure"
# At most this many pods are created or deleted per reconcile, as upstream: a set
# scaled to thousands converges over several passes instead of one endless one.
BURST = 500
# A pod becomes available minReadySeconds after it turned ready; look again just after.
_AVAILABILITY_SLACK = 0.05


@dataclass(frozen=True)
class _Failure:
    reason: str
    message: str
    error: Exception


def desired_replicas(obj: Obj) -> int:
    replicas = (obj.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


class ReplicaSetController(WorkloadController):
    def __init__(self, api_client: client.ApiClient, informers: WorkloadInformers | None = None, *,
                 workers: int = 2, expectations_ttl: float = 300.0) -> None:
        super().__init__("replicaset", api_client, informers)
        self._pods = self.informers.pods
        self._sets = self.informers.replicasets
        self.expectations = UIDTrackingControllerExpectations(expectations_ttl)
        controller = self._make_controller(self._reconcile, workers)
        OwnedPods(KIND, self._sets, self.expectations).attach(controller, self._pods)
        controller.watch(self._sets)

    # --- what the watches report ------------------------------------------------------


    # --- the reconcile ----------------------------------------------------------------

    def _reconcile(self, key: str) -> float | None:
        rs = self._sets.get(key)
        if rs is None:
            self.expectations.delete_expectations(key)
            return None
        spec = rs.get("spec") or {}
        problem = selector_problem(spec)
        if problem is not None:
            self._event(KIND, rs, WARNING, "InvalidSelector", problem)
            return None
        rs_meta = meta(rs)
        # Read before looking at the cache: a pod that arrives in between is then
        # either in the cache or still expected, never neither.
        needs_sync = self.expectations.satisfied(key)
        candidates = [p for p in self._pods.list(rs_meta.get("namespace", "")) if is_active(p)]
        pods = Claim(rs, KIND, APPS_V1, spec.get("selector"), self._patch_pod,
                     self._still_adoptable(self._apps.read_namespaced_replica_set, rs)).run(candidates)
        failure = None
        if needs_sync and not is_terminating(rs):
            failure = self._manage(key, rs, pods)
        now = datetime.now(UTC)
        self._write_status(rs, replica_set_status(rs, pods, failure, now))
        if failure is not None:
            raise failure.error
        return _next_availability_check(pods, int(spec.get("minReadySeconds") or 0), now)

    def _manage(self, key: str, rs: Obj, pods: list[Obj]) -> _Failure | None:
        diff = len(pods) - desired_replicas(rs)
        if diff < 0:
            return self._create(key, rs, min(-diff, BURST))
        if diff > 0:
            return self._delete(key, rs, deletion_order(pods)[:min(diff, BURST)])
        return None

    def _create(self, key: str, rs: Obj, count: int) -> _Failure | None:
        rs_meta = meta(rs)
        namespace = rs_meta.get("namespace", "")
        body = pod_from_template((rs.get("spec") or {}).get("template") or {}, namespace,
                                 generate_name(rs_meta["name"]), owner_reference(rs, KIND, APPS_V1))
        self.expectations.expect_creations(key, count)
        for made in range(count):
            try:
                pod = call(self._core.create_namespaced_pod, namespace, body)
            except Exception as error:
                for _ in range(count - made):  # this one and the rest will never be seen
                    self.expectations.creation_observed(key)
                if namespace_terminating(error):
                    return None  # everything in it is going away anyway
                message = f"Error creating: {describe_error(error)}"
                self._event(KIND, rs, WARNING, "FailedCreate", message)
                return _Failure("FailedCreate", message, error)
            self._event(KIND, rs, NORMAL, "SuccessfulCreate", f"Created pod: {meta(pod).get('name', '')}")
        return None

    def _delete(self, key: str, rs: Obj, victims: list[Obj]) -> _Failure | None:
        self.expectations.expect_deletions(key, [str(meta(p).get("uid", "")) for p in victims])
        failure = None
        for pod in victims:
            pod_meta = meta(pod)
            try:
                call(self._core.delete_namespaced_pod, pod_meta["name"], pod_meta.get("namespace", ""),
                     body={"preconditions": {"uid": pod_meta.get("uid")}})
            except Exception as error:
                self.expectations.deletion_observed(key, str(pod_meta.get("uid", "")))
                if status_code(error) == 404:
                    continue  # already gone: what we wanted
                message = f"Error deleting: {describe_error(error)}"
                self._event(KIND, rs, WARNING, "FailedDelete", message)
                failure = _Failure("FailedDelete", message, error)
                continue
            self._event(KIND, rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod_meta['name']}")
        return failure

    # --- API writes -------------------------------------------------------------------

    def _patch_pod(self, name: str, namespace: str, body: Obj) -> Obj:
        return call(self._core.patch_namespaced_pod, name, namespace, body, _content_type=MERGE_PATCH)

    def _write_status(self, rs: Obj, status: Obj) -> None:
        current = rs.get("status") or {}
        if current == status:
            return
        rs_meta = meta(rs)
        body = {"status": {**{k: None for k in current if k not in status}, **status}}
        try:
            call(self._apps.patch_namespaced_replica_set_status, rs_meta["name"], rs_meta["namespace"], body,
                 _content_type=MERGE_PATCH)
        except Exception as error:
            if status_code(error) != 404:
                raise


def replica_set_status(rs: Obj, pods: list[Obj], failure: _Failure | None, now: datetime) -> Obj:
    """The status of rs given the active pods it manages (fields upstream omits when
    zero are left out, so an unchanged status compares equal to what the API holds)."""
    spec = rs.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    template_labels = (((spec.get("template") or {}).get("metadata") or {}).get("labels")) or {}
    status: Obj = {"replicas": len(pods)}
    counts = {
        "fullyLabeledReplicas": sum(1 for p in pods if _has_labels(p, template_labels)),
        "readyReplicas": sum(1 for p in pods if is_ready(p)),
        "availableReplicas": sum(1 for p in pods if seconds_until_available(p, min_ready, now) == 0.0),
        "observedGeneration": int(meta(rs).get("generation") or 0),
    }
    status.update({k: v for k, v in counts.items() if v})
    conditions = list((rs.get("status") or {}).get("conditions") or [])
    if failure is not None and find(conditions, REPLICA_FAILURE) is None:
        conditions = set_condition(conditions, new_condition(REPLICA_FAILURE, "True", failure.reason,
                                                             failure.message, with_update_time=False))
    elif failure is None:
        conditions = without(conditions, REPLICA_FAILURE)
    if conditions:
        status["conditions"] = conditions
    return status


def _has_labels(pod: Obj, labels: dict[str, str]) -> bool:
    have = meta(pod).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


def _next_availability_check(pods: list[Obj], min_ready_seconds: int, now: datetime) -> float | None:
    """Seconds until the next ready pod becomes available, when one is still waiting."""
    if min_ready_seconds <= 0:
        return None
    waits = [w for w in (seconds_until_available(p, min_ready_seconds, now) for p in pods) if w]
    return min(waits) + _AVAILABILITY_SLACK if waits else None
