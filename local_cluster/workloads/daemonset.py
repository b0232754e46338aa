"""The DaemonSet controller (apps/v1): one pod on every node that should run one.

Each reconcile claims the namespace's pods that match the selector, groups them by
the node they are on or pinned to (daemon_placement.py), and then, per node:

- a node that should run the daemon and has no live pod gets one, pinned to it;
- a failed (or finished) pod there is deleted, at most as often as FailureBackoff
  allows, and replaced;
- surplus pods on a node are deleted, the oldest kept;
- a node the daemon may no longer stay on has its pods deleted;
- pods on nodes that no longer exist are deleted at once (grace 0: no kubelet is
  left to confirm), which upstream's pod garbage collector would otherwise do and
  nothing here runs.

Only when that pass had nothing to do does a RollingUpdate proceed: old pods (whose
controller-revision-hash is not the template's) are deleted while no more than
maxUnavailable nodes are without an available daemon pod (a node with no live pod at
all counts as one), and the first pass then creates their replacements. OnDelete
leaves old pods until someone deletes them.

Expectations work as in the ReplicaSet controller, so a lagging watch never makes
a second pod for a node. The controller-revision-hash is the template's hash
(template_hash.py): this API server serves no ControllerRevisions, so none are
written, and pod-template-generation is the DaemonSet's generation (or the template
generation annotation an upstream API server keeps, when present).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from kube_client.controller import UIDTrackingControllerExpectations
from kube_client.rawapi import MERGE_PATCH, call, object_key, status_code
from kube_client.recorder import NORMAL, WARNING
from local_cluster.scheduler.labels import labels_of
from local_cluster.workloads.base import APPS_V1, WorkloadController, describe_error, namespace_terminating
from local_cluster.workloads.daemon_placement import pinned_spec, placement, target_node
from local_cluster.workloads.failure_backoff import FailureBackoff
from local_cluster.workloads.informers import WorkloadInformers
from local_cluster.workloads.intstr import scaled_value
from local_cluster.workloads.ownership import Claim, owner_reference, selector_problem
from local_cluster.workloads.pod_state import (FAILED, condition, created, is_active, is_ready, is_terminal,
                                               is_terminating, meta, phase, seconds_until_available)
from local_cluster.workloads.pod_template import generate_name, pod_from_template
from local_cluster.workloads.pod_tracking import OwnedPods
from local_cluster.workloads.template_hash import template_hash

Obj = dict[str, Any]
log = logging.getLogger(__name__)

KIND = "DaemonSet"
HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
ROLLING_UPDATE, ON_DELETE = "RollingUpdate", "OnDelete"
_AVAILABILITY_SLACK = 0.05


@dataclass
class _Plan:
    create_on: list[str] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    # Pods of nodes that are gone: deleted with grace 0, as no kubelet will confirm.
    force_delete: list[Obj] = field(default_factory=list)
    retry_after: float | None = None


def template_generation(ds: Obj) -> str:
    annotations = meta(ds).get("annotations") or {}
    return str(annotations.get(TEMPLATE_GENERATION_ANNOTATION) or meta(ds).get("generation") or 1)


def _oldest_first(pods: list[Obj]) -> list[Obj]:
    return sorted(pods, key=lambda p: (created(p), meta(p).get("name", "")))


def _soonest(*delays: float | None) -> float | None:
    present = [d for d in delays if d is not None]
    return min(present) if present else None


class DaemonSetController(WorkloadController):
    def __init__(self, api_client: client.ApiClient, informers: WorkloadInformers | None = None, *,
                 workers: int = 2, expectations_ttl: float = 300.0,
                 failure_backoff: FailureBackoff | None = None) -> None:
        super().__init__("daemonset", api_client, informers)
        self._pods = self.informers.pods
        self._nodes = self.informers.nodes
        self._sets = self.informers.daemonsets
        self.expectations = UIDTrackingControllerExpectations(expectations_ttl)
        self._backoff = failure_backoff or FailureBackoff()
        controller = self._make_controller(self._reconcile, workers)
        OwnedPods(KIND, self._sets, self.expectations).attach(controller, self._pods)
        controller.watch(self._sets)
        self._nodes.add_event_handler(on_add=self._node_event, on_update=self._node_updated,
                                      on_delete=self._node_event)
        self._reads(self._nodes)

    # --- what the watches report ------------------------------------------------------


    def _node_event(self, node: Obj) -> None:
        for key in self._sets.keys():
            self.enqueue(key)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        # Heartbeats change nothing a DaemonSet decides on; only placement inputs matter.
        if _node_view(old) != _node_view(new):
            self._node_event(new)

    # --- the reconcile ----------------------------------------------------------------

    def _reconcile(self, key: str) -> float | None:
        ds = self._sets.get(key)
        if ds is None:
            self.expectations.delete_expectations(key)
            self._backoff.forget_prefix(f"{key}|")
            return None
        spec = ds.get("spec") or {}
        problem = selector_problem(spec)
        if problem is not None:
            self._event(KIND, ds, WARNING, "InvalidSelector", problem)
            return None
        if is_terminating(ds):
            return None  # its pods go with it (garbage collection); nothing to make
        needs_sync = self.expectations.satisfied(key)
        nodes = self._nodes.list()
        pods = Claim(ds, KIND, APPS_V1, spec.get("selector"), self._patch_pod,
                     self._still_adoptable(self._apps.read_namespaced_daemon_set, ds)).run(
            self._pods.list(meta(ds).get("namespace", "")))
        by_node: dict[str, list[Obj]] = {}
        for pod in pods:
            node_name = target_node(pod)
            if node_name is not None:
                by_node.setdefault(node_name, []).append(pod)
        current_hash = template_hash(spec.get("template") or {})
        now = datetime.now(UTC)
        failure: Exception | None = None
        retry_after: float | None = None
        if needs_sync:
            plan = self._plan(key, ds, nodes, by_node)
            retry_after = plan.retry_after
            if plan.create_on or plan.delete or plan.force_delete:
                failure = self._carry_out(key, ds, plan, current_hash)
            elif ((spec.get("updateStrategy") or {}).get("type") or ROLLING_UPDATE) == ROLLING_UPDATE:
                # Only on a pass that changed nothing: the grouping above is then still
                # what the cluster looks like, as far as this controller knows.
                self._roll(key, ds, nodes, by_node, current_hash, now)
        status, waiting = daemon_set_status(ds, nodes, by_node, current_hash, now)
        self._write_status(ds, status)
        if failure is not None:
            raise failure
        return _soonest(retry_after, waiting)

    def _plan(self, key: str, ds: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]]) -> _Plan:
        template_spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
        plan = _Plan()
        for node in nodes:
            name = str(meta(node).get("name", ""))
            here = by_node.get(name, [])
            where = placement(template_spec, node)
            if where.should_run:
                running = []
                for pod in here:
                    if is_terminating(pod):
                        continue
                    if is_terminal(pod):
                        wait = self._backoff.remaining(f"{key}|{name}")
                        if wait > 0:
                            plan.retry_after = _soonest(plan.retry_after, wait)
                            continue
                        self._backoff.bump(f"{key}|{name}")
                        if phase(pod) == FAILED:
                            self._event(KIND, ds, WARNING, "FailedDaemonPod",
                                        f"Found failed daemon pod {object_key(pod)} on node {name}, "
                                        f"will try to kill it")
                        plan.delete.append(pod)
                    else:
                        running.append(pod)
                if not running:
                    plan.create_on.append(name)
                elif len(running) > 1:
                    plan.delete.extend(_oldest_first(running)[1:])
            elif not where.may_continue:
                plan.delete.extend(p for p in here if not is_terminating(p))
        known = {str(meta(n).get("name", "")) for n in nodes}
        for name, here in by_node.items():
            if name in known:
                continue
            for pod in here:
                if (pod.get("spec") or {}).get("nodeName"):
                    plan.force_delete.append(pod)
                elif not is_terminating(pod):
                    plan.delete.append(pod)  # never scheduled: deleted at once anyway
        return plan

    def _carry_out(self, key: str, ds: Obj, plan: _Plan, current_hash: str) -> Exception | None:
        victims = plan.delete + plan.force_delete
        # Deletions first: the uid tracker drops uids left from a lapsed expectation only
        # while nothing else is outstanding.
        self.expectations.expect_deletions(key, [str(meta(p).get("uid", "")) for p in victims])
        self.expectations.expect_creations(key, len(plan.create_on))
        failure = self._create_pods(key, ds, plan.create_on, current_hash)
        for pod in plan.delete:
            failure = self._delete_pod(key, ds, pod, None) or failure
        for pod in plan.force_delete:
            failure = self._delete_pod(key, ds, pod, 0) or failure
        return failure

    def _create_pods(self, key: str, ds: Obj, node_names: list[str], current_hash: str) -> Exception | None:
        ds_meta = meta(ds)
        namespace = ds_meta.get("namespace", "")
        template = (ds.get("spec") or {}).get("template") or {}
        labels = {HASH_LABEL: current_hash, GENERATION_LABEL: template_generation(ds)}
        reference = owner_reference(ds, KIND, APPS_V1)
        for index, node_name in enumerate(node_names):
            body = pod_from_template({**template, "spec": pinned_spec(template.get("spec") or {}, node_name)},
                                     namespace, generate_name(ds_meta["name"]), reference, labels)
            try:
                pod = call(self._core.create_namespaced_pod, namespace, body)
            except Exception as error:
                for _ in range(len(node_names) - index):
                    self.expectations.creation_observed(key)
                if namespace_terminating(error):
                    return None
                self._event(KIND, ds, WARNING, "FailedCreate", f"Error creating: {describe_error(error)}")
                return error
            self._event(KIND, ds, NORMAL, "SuccessfulCreate", f"Created pod: {meta(pod).get('name', '')}")
        return None

    def _delete_pod(self, key: str, ds: Obj, pod: Obj, grace: int | None) -> Exception | None:
        pod_meta = meta(pod)
        options: Obj = {"preconditions": {"uid": pod_meta.get("uid")}}
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        try:
            call(self._core.delete_namespaced_pod, pod_meta["name"], pod_meta.get("namespace", ""), body=options)
        except Exception as error:
            self.expectations.deletion_observed(key, str(pod_meta.get("uid", "")))
            if status_code(error) == 404:
                return None
            self._event(KIND, ds, WARNING, "FailedDelete", f"Error deleting: {describe_error(error)}")
            return error
        self._event(KIND, ds, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod_meta['name']}")
        return None

    def _roll(self, key: str, ds: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]], current_hash: str,
              now: datetime) -> None:
        """Delete old pods, keeping at most maxUnavailable nodes without an available daemon pod."""
        spec = ds.get("spec") or {}
        template_spec = (spec.get("template") or {}).get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        wanted = [n for n in nodes if placement(template_spec, n).should_run]
        rolling = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
        max_unavailable = max(1, scaled_value(rolling.get("maxUnavailable"), len(wanted), round_up=True,
                                              default=1))
        unavailable = 0
        broken: list[Obj] = []      # old and unavailable anyway: replacing them costs nothing
        candidates: list[Obj] = []  # old and available: replacing them costs availability
        for node in sorted(wanted, key=lambda n: str(meta(n).get("name", ""))):
            live = [p for p in by_node.get(str(meta(node).get("name", "")), []) if is_active(p)]
            if not live:
                unavailable += 1  # nothing serves there until its pod is made and ready
                continue
            fresh = [p for p in live if labels_of(p).get(HASH_LABEL) == current_hash]
            old = [p for p in live if labels_of(p).get(HASH_LABEL) != current_hash]
            if len(live) > 1:
                unavailable += 1  # the first pass sorts this node out
            elif fresh:
                if seconds_until_available(fresh[0], min_ready, now) != 0.0:
                    unavailable += 1
            elif seconds_until_available(old[0], min_ready, now) != 0.0:
                broken.append(old[0])
            else:
                candidates.append(old[0])
        victims = broken + candidates[:max(0, max_unavailable - unavailable)]
        if not victims:
            return
        self.expectations.expect_deletions(key, [str(meta(p).get("uid", "")) for p in victims])
        for pod in victims:
            error = self._delete_pod(key, ds, pod, None)
            if error is not None:
                raise error

    # --- API writes -------------------------------------------------------------------

    def _patch_pod(self, name: str, namespace: str, body: Obj) -> Obj:
        return call(self._core.patch_namespaced_pod, name, namespace, body, _content_type=MERGE_PATCH)

    def _write_status(self, ds: Obj, status: Obj) -> None:
        current = ds.get("status") or {}
        if current == status:
            return
        ds_meta = meta(ds)
        body = {"status": {**{k: None for k in current if k not in status}, **status}}
        try:
            call(self._apps.patch_namespaced_daemon_set_status, ds_meta["name"], ds_meta["namespace"], body,
                 _content_type=MERGE_PATCH)
        except Exception as error:
            if status_code(error) != 404:
                raise


def daemon_set_status(ds: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]], current_hash: str,
                      now: datetime) -> tuple[Obj, float | None]:
    """The status, and the seconds until a ready pod turns available (None if none waits).
    Each node is judged by its oldest live pod."""
    spec = ds.get("spec") or {}
    template_spec = (spec.get("template") or {}).get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    desired = current = misscheduled = ready = available = updated = 0
    waiting: float | None = None
    for node in nodes:
        # A failed pod kept for its back-off is not what the node runs: live pods first.
        here = sorted((p for p in by_node.get(str(meta(node).get("name", "")), []) if not is_terminating(p)),
                      key=lambda p: (is_terminal(p), created(p), meta(p).get("name", "")))
        if not placement(template_spec, node).should_run:
            misscheduled += 1 if here else 0
            continue
        desired += 1
        if not here:
            continue
        current += 1
        pod = here[0]
        ready += 1 if is_ready(pod) else 0
        wait = seconds_until_available(pod, min_ready, now)
        if wait == 0.0:
            available += 1
        elif wait is not None:
            waiting = _soonest(waiting, wait + _AVAILABILITY_SLACK)
        updated += 1 if labels_of(pod).get(HASH_LABEL) == current_hash else 0
    status: Obj = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                   "desiredNumberScheduled": desired, "numberReady": ready}
    optional = {"observedGeneration": int(meta(ds).get("generation") or 0), "updatedNumberScheduled": updated,
                "numberAvailable": available, "numberUnavailable": desired - available}
    status.update({k: v for k, v in optional.items() if v})
    conditions = (ds.get("status") or {}).get("conditions")
    if conditions:
        status["conditions"] = conditions
    return status, waiting


def _node_view(node: Obj) -> tuple[Any, ...]:
    """What placement depends on: labels, taints, cordoning and readiness (implied taints)."""
    spec = node.get("spec") or {}
    return (labels_of(node), spec.get("taints"), spec.get("unschedulable"),
            (condition(node, "Ready") or {}).get("status"))
