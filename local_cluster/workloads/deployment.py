"""The Deployment controller (apps/v1): roll pods out through ReplicaSets.

A Deployment owns ReplicaSets named <deployment>-<pod-template-hash>, the hash being
that of its pod template (template_hash.py), and carrying the hash as a label on
their selector and template so their pods never overlap. The set whose template is
the Deployment's is the new one; the others are old. Each reconcile:

- claims the namespace's ReplicaSets (adopts matching orphans, releases ours that no
  longer match);
- when paused, or when spec.replicas changed (the sets' desired-replicas annotation
  says so), only scales, spreading the change over the active sets (rollout.py);
- otherwise rolls out: RollingUpdate grows the new set and shrinks old ones within
  maxSurge / maxUnavailable, Recreate empties the old sets, waits for their pods to
  be gone, then fills the new one;
- once a rollout is complete, deletes the oldest empty sets beyond
  revisionHistoryLimit;
- writes the status (deployment_status.py).

Scaling a set pins the resourceVersion it decided on, so a decision taken on a stale
cache becomes a Conflict and a retry instead of a wrong size. Deleting the Deployment
takes its sets and their pods with it through the API server's garbage collector
(ownerReferences), as upstream.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from kube_client.rawapi import MERGE_PATCH, call, object_key, status_code
from kube_client.recorder import NORMAL, WARNING
from local_cluster.workloads.base import APPS_V1, WorkloadController
from local_cluster.workloads.conditions import find, set_condition
from local_cluster.workloads.deployment_status import (FOUND_NEW_RS, NEW_RS_CREATED, PROGRESSING,
                                                       calculate_status, condition, is_complete,
                                                       seconds_to_deadline, with_paused_condition,
                                                       with_rollout_conditions)
from local_cluster.workloads.informers import WorkloadInformers, by_controller
from local_cluster.workloads.ownership import (Claim, controlled_by, controller_of, owner_reference,
                                               selector_problem, selects)
from local_cluster.workloads.pod_state import created, is_terminal, is_terminating, meta
from local_cluster.workloads.rollout import (DESIRED_REPLICAS, HASH_LABEL, MAX_REPLICAS, REVISION,
                                             active_or_only, actual, annotated_int, desired, is_saturated,
                                             new_set_target, old_sets_scale_down, oldest_first,
                                             proportional_sizes, revision, same_template, strategy_of)
from local_cluster.workloads.template_hash import template_hash

Obj = dict[str, Any]
log = logging.getLogger(__name__)

KIND = "Deployment"
DEFAULT_HISTORY = 10
# Deployment annotations that describe the Deployment itself, not worth copying to its sets.
_NOT_COPIED = {REVISION, DESIRED_REPLICAS, MAX_REPLICAS, "deployment.kubernetes.io/revision-history",
               "kubectl.kubernetes.io/last-applied-configuration", "deprecated.deployment.rollback.to"}


class NameCollision(RuntimeError):
    """Another template already holds the new set's name: retried with a new hash."""


class DeploymentController(WorkloadController):
    def __init__(self, api_client: client.ApiClient, informers: WorkloadInformers | None = None, *,
                 workers: int = 2) -> None:
        super().__init__("deployment", api_client, informers)
        self._deployments = self.informers.deployments
        self._sets = self.informers.replicasets
        self._pods = self.informers.pods
        controller = self._make_controller(self._reconcile, workers)
        controller.watch(self._deployments)
        controller.watch(self._sets, keys=self._keys_for_set)
        # Recreate waits for the old pods to be gone: their deletion is worth a look.
        self._pods.add_event_handler(on_delete=self._pod_deleted)
        self._reads(self._pods)

    # --- what the watches report ------------------------------------------------------

    def _owner_key(self, obj: Obj, informer_kind: str) -> str | None:
        ref = controller_of(obj)
        if ref is None or ref.get("kind") != informer_kind:
            return None
        return f"{meta(obj).get('namespace', '')}/{ref.get('name', '')}"

    def _keys_for_set(self, rs: Obj) -> list[str]:
        key = self._owner_key(rs, KIND)
        if key is not None:
            owner = self._deployments.get(key)
            uid = (controller_of(rs) or {}).get("uid")
            return [key] if owner is not None and meta(owner).get("uid") == uid else []
        if controller_of(rs) is not None or is_terminating(rs):
            return []
        return [object_key(d) for d in self._deployments.list(meta(rs).get("namespace", ""))
                if selects((d.get("spec") or {}).get("selector"), rs)]

    def _pod_deleted(self, pod: Obj) -> None:
        set_key = self._owner_key(pod, "ReplicaSet")
        rs = self._sets.get(set_key) if set_key else None
        deployment_key = self._owner_key(rs, KIND) if rs is not None else None
        deployment = self._deployments.get(deployment_key) if deployment_key else None
        if deployment is not None and strategy_of(deployment).recreate:
            self.enqueue(deployment_key or "")

    # --- the reconcile ----------------------------------------------------------------

    def _reconcile(self, key: str) -> float | None:
        cached = self._deployments.get(key)
        if cached is None:
            return None
        # A working copy: conditions set along the way are written with the final status.
        deployment = copy.deepcopy(cached)
        spec = deployment.get("spec") or {}
        problem = selector_problem(spec)
        if problem is not None:
            self._event(KIND, deployment, WARNING, "SelectingAll" if "empty" in problem else "InvalidSelector",
                        problem)
            # Still acknowledge the generation, so nobody waits for a controller that has answered.
            generation = int(meta(deployment).get("generation") or 0)
            if int((deployment.get("status") or {}).get("observedGeneration") or 0) < generation:
                self._write_status(cached, {**(cached.get("status") or {}), "observedGeneration": generation})
            return None
        sets = Claim(deployment, KIND, APPS_V1, spec.get("selector"), self._patch_set,
                     self._still_adoptable(self._apps.read_namespaced_deployment, deployment)).run(
            self._sets.list(meta(deployment).get("namespace", "")))
        if is_terminating(deployment):
            # On its way out: report, but write nothing else (the collector is at work).
            new_rs, old_sets = _split(deployment, sets)
            return self._finish(cached, deployment, old_sets, new_rs, progress=False)
        paused_conditions = with_paused_condition(deployment)
        if paused_conditions is not None:
            deployment.setdefault("status", {})["conditions"] = paused_conditions
        if spec.get("paused") or self._is_scaling_event(deployment, sets):
            return self._scale_only(cached, deployment, sets)
        if strategy_of(deployment).recreate:
            return self._recreate(cached, deployment, sets)
        return self._rolling_update(cached, deployment, sets)

    def _is_scaling_event(self, deployment: Obj, sets: list[Obj]) -> bool:
        """spec.replicas changed since the active sets were last sized for it."""
        new_rs, old_sets = _split(deployment, sets)
        replicas = desired(deployment)
        for rs in ([new_rs] if new_rs is not None else []) + old_sets:
            wanted = annotated_int(rs, DESIRED_REPLICAS)
            if desired(rs) > 0 and wanted is not None and wanted != replicas:
                return True
        return False

    def _scale_only(self, cached: Obj, deployment: Obj, sets: list[Obj]) -> float | None:
        new_rs, old_sets = self._new_and_old(deployment, sets)
        new_rs, old_sets = self._scale(deployment, new_rs, old_sets)
        if (deployment.get("spec") or {}).get("paused"):
            self._clean_up(deployment, old_sets)
        return self._finish(cached, deployment, old_sets, new_rs, progress=False)

    def _rolling_update(self, cached: Obj, deployment: Obj, sets: list[Obj]) -> float | None:
        new_rs, old_sets = self._new_made_if_missing(deployment, sets)
        strategy = strategy_of(deployment)
        replicas = desired(deployment)
        if desired(new_rs) != replicas:
            if desired(new_rs) > replicas:
                target = replicas
            else:
                target = new_set_target(replicas, strategy.max_surge,
                                        sum(desired(rs) for rs in old_sets) + desired(new_rs), desired(new_rs))
            scaled, new_rs = self._scale_set(new_rs, target, deployment)
            if scaled:
                return self._finish(cached, deployment, old_sets, new_rs)
        plan = old_sets_scale_down(replicas, strategy.max_unavailable, new_rs, old_sets)
        if plan:
            old_sets = [self._scale_set(rs, plan[meta(rs)["name"]], deployment)[1] if meta(rs)["name"] in plan
                        else rs for rs in old_sets]
            return self._finish(cached, deployment, old_sets, new_rs)
        if is_complete(deployment, deployment.get("status") or {}):
            self._clean_up(deployment, old_sets)
        return self._finish(cached, deployment, old_sets, new_rs)

    def _recreate(self, cached: Obj, deployment: Obj, sets: list[Obj]) -> float | None:
        new_rs, old_sets = self._new_and_old(deployment, sets)
        emptied = [self._scale_set(rs, 0, deployment) if desired(rs) > 0 else (False, rs) for rs in old_sets]
        old_sets = [rs for _, rs in emptied]
        if any(scaled for scaled, _ in emptied) or self._old_pods_running(old_sets):
            return self._finish(cached, deployment, old_sets, new_rs)
        if new_rs is None:
            new_rs = self._create_set(deployment, old_sets, _next_revision(old_sets))
            self._annotate_revision(deployment, str(revision(new_rs)))
        _, new_rs = self._scale_set(new_rs, desired(deployment), deployment)
        if is_complete(deployment, deployment.get("status") or {}):
            self._clean_up(deployment, old_sets)
        return self._finish(cached, deployment, old_sets, new_rs)

    def _old_pods_running(self, old_sets: list[Obj]) -> bool:
        """Pods of old sets that still exist and have not finished (being deleted counts)."""
        if any(actual(rs) > 0 for rs in old_sets):
            return True
        return any(not is_terminal(pod) for rs in old_sets
                   for pod in by_controller(self._pods, str(meta(rs).get("uid", ""))))

    def _scale(self, deployment: Obj, new_rs: Obj | None, old_sets: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        """Resize for a changed spec.replicas without moving the rollout along."""
        replicas = desired(deployment)
        only = active_or_only(new_rs, old_sets)
        if only is not None:
            scaled = self._scale_set(only, replicas, deployment)[1] if desired(only) != replicas else only
            return _replaced(new_rs, old_sets, scaled)
        if is_saturated(deployment, new_rs):
            return new_rs, [self._scale_set(rs, 0, deployment)[1] if desired(rs) > 0 else rs for rs in old_sets]
        strategy = strategy_of(deployment)
        if strategy.recreate:
            return new_rs, old_sets
        active = [rs for rs in ([new_rs] if new_rs is not None else []) + old_sets if desired(rs) > 0]
        allowed = replicas + strategy.max_surge if replicas > 0 else 0
        delta = allowed - sum(desired(rs) for rs in active)
        # Growth goes to the largest and newest first, shrinking to the largest and oldest.
        newer_first = delta > 0
        ordered = sorted(active, key=lambda rs: (-desired(rs), -_age_key(rs) if newer_first else _age_key(rs)))
        for rs, size in zip(ordered, proportional_sizes([desired(rs) for rs in ordered], delta)):
            new_rs, old_sets = _replaced(new_rs, old_sets, self._scale_set(rs, size, deployment)[1])
        return new_rs, old_sets

    # --- the sets ---------------------------------------------------------------------

    def _new_and_old(self, deployment: Obj, sets: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        """The set running the current template, brought up to date, and the others.
        The new set's revision is one more than any old set's, and the Deployment's
        revision annotation follows it."""
        new_rs, old_sets = _split(deployment, sets)
        if new_rs is not None:
            new_rs = self._refresh_new_set(deployment, new_rs, _next_revision(old_sets))
            if find((deployment.get("status") or {}).get("conditions") or [], PROGRESSING) is None:
                self._set_condition(deployment, condition(PROGRESSING, "True", FOUND_NEW_RS,
                                                          f'Found new replica set "{meta(new_rs)["name"]}"'))
            self._annotate_revision(deployment, str(revision(new_rs)))
        return new_rs, old_sets

    def _new_made_if_missing(self, deployment: Obj, sets: list[Obj]) -> tuple[Obj, list[Obj]]:
        new_rs, old_sets = self._new_and_old(deployment, sets)
        if new_rs is None:
            new_rs = self._create_set(deployment, old_sets, _next_revision(old_sets))
            self._annotate_revision(deployment, str(revision(new_rs)))
        return new_rs, old_sets

    def _refresh_new_set(self, deployment: Obj, rs: Obj, next_revision: int) -> Obj:
        """Bring the new set's revision, replica annotations and minReadySeconds up to date."""
        strategy = strategy_of(deployment)
        replicas = desired(deployment)
        annotations = meta(rs).get("annotations") or {}
        wanted: dict[str, str] = {}
        if revision(rs) < next_revision:
            wanted[REVISION] = str(next_revision)
        if annotations.get(DESIRED_REPLICAS) != str(replicas):
            wanted[DESIRED_REPLICAS] = str(replicas)
        if annotations.get(MAX_REPLICAS) != str(replicas + strategy.max_surge):
            wanted[MAX_REPLICAS] = str(replicas + strategy.max_surge)
        min_ready = (deployment.get("spec") or {}).get("minReadySeconds")
        body: Obj = {}
        if wanted:
            body["metadata"] = {"annotations": wanted}
        if (rs.get("spec") or {}).get("minReadySeconds") != min_ready:
            body["spec"] = {"minReadySeconds": min_ready}
        if not body:
            return rs
        body.setdefault("metadata", {})["resourceVersion"] = meta(rs).get("resourceVersion")
        return self._patch_set(meta(rs)["name"], meta(rs)["namespace"], body)

    def _create_set(self, deployment: Obj, old_sets: list[Obj], next_revision: int) -> Obj:
        d_meta = meta(deployment)
        spec = deployment.get("spec") or {}
        status = deployment.get("status") or {}
        collisions = status.get("collisionCount")
        template = copy.deepcopy(spec.get("template") or {})
        hash_value = template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = hash_value
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = hash_value
        strategy = strategy_of(deployment)
        replicas = desired(deployment)
        size = replicas if strategy.recreate else new_set_target(
            replicas, strategy.max_surge, sum(desired(rs) for rs in old_sets), 0)
        annotations = {k: v for k, v in (d_meta.get("annotations") or {}).items() if k not in _NOT_COPIED}
        annotations.update({REVISION: str(next_revision), DESIRED_REPLICAS: str(replicas),
                            MAX_REPLICAS: str(replicas + strategy.max_surge)})
        name = f"{d_meta['name']}-{hash_value}"
        rs_spec: Obj = {"replicas": size, "selector": selector, "template": template}
        if spec.get("minReadySeconds") is not None:
            rs_spec["minReadySeconds"] = spec["minReadySeconds"]
        body = {"apiVersion": APPS_V1, "kind": "ReplicaSet",
                "metadata": {"name": name, "namespace": d_meta["namespace"],
                             "labels": dict(template["metadata"]["labels"]), "annotations": annotations,
                             "ownerReferences": [owner_reference(deployment, KIND, APPS_V1)]},
                "spec": rs_spec}
        try:
            created = call(self._apps.create_namespaced_replica_set, d_meta["namespace"], body)
        except Exception as error:
            if status_code(error) != 409:
                raise
            existing = call(self._apps.read_namespaced_replica_set, name, d_meta["namespace"])
            if controlled_by(existing, str(d_meta.get("uid", ""))) and same_template(existing, deployment):
                return existing  # made by an earlier pass the cache had not caught up with
            self._write_status(deployment, {**status, "collisionCount": int(collisions or 0) + 1})
            raise NameCollision(f"replica set {name} exists with another template; hashing again") from None
        self._event(KIND, deployment, NORMAL, "ScalingReplicaSet",
                    f"Scaled up replica set {name} from 0 to {size}")
        self._set_condition(deployment, condition(PROGRESSING, "True", NEW_RS_CREATED,
                                                  f'Created new replica set "{name}"'))
        return created

    def _scale_set(self, rs: Obj, size: int, deployment: Obj) -> tuple[bool, Obj]:
        """Set rs's size (and the replica annotations); True when the size changed."""
        strategy = strategy_of(deployment)
        replicas = desired(deployment)
        annotations = meta(rs).get("annotations") or {}
        resize = desired(rs) != size
        stale = (annotations.get(DESIRED_REPLICAS) != str(replicas)
                 or annotations.get(MAX_REPLICAS) != str(replicas + strategy.max_surge))
        if not resize and not stale:
            return False, rs
        body = {"metadata": {"annotations": {DESIRED_REPLICAS: str(replicas),
                                             MAX_REPLICAS: str(replicas + strategy.max_surge)},
                             "resourceVersion": meta(rs).get("resourceVersion")},
                "spec": {"replicas": size}}
        scaled = self._patch_set(meta(rs)["name"], meta(rs)["namespace"], body)
        if resize:
            direction = "up" if size > desired(rs) else "down"
            self._event(KIND, deployment, NORMAL, "ScalingReplicaSet",
                        f"Scaled {direction} replica set {meta(rs)['name']} from {desired(rs)} to {size}")
        return resize, scaled

    def _clean_up(self, deployment: Obj, old_sets: list[Obj]) -> None:
        """Delete the oldest empty sets beyond revisionHistoryLimit."""
        limit = (deployment.get("spec") or {}).get("revisionHistoryLimit")
        limit = DEFAULT_HISTORY if limit is None else int(limit)
        kept = [rs for rs in old_sets if not is_terminating(rs)]
        excess = len(kept) - limit
        if excess <= 0:
            return
        for rs in sorted(kept, key=lambda rs: (revision(rs), _age_key(rs)))[:excess]:
            rs_meta = meta(rs)
            observed = int((rs.get("status") or {}).get("observedGeneration") or 0)
            if actual(rs) or desired(rs) or int(rs_meta.get("generation") or 0) > observed:
                continue  # still running, or not yet seen by its controller
            try:
                call(self._apps.delete_namespaced_replica_set, rs_meta["name"], rs_meta["namespace"],
                     body={"preconditions": {"uid": rs_meta.get("uid")}})
            except Exception as error:
                if status_code(error) != 404:
                    raise

    # --- status -----------------------------------------------------------------------

    def _set_condition(self, deployment: Obj, new: Obj) -> None:
        status = deployment.setdefault("status", {})
        status["conditions"] = set_condition(list(status.get("conditions") or []), new)

    def _finish(self, cached: Obj, deployment: Obj, old_sets: list[Obj], new_rs: Obj | None, *,
                progress: bool = True) -> float | None:
        sets = old_sets + ([new_rs] if new_rs is not None else [])
        now = datetime.now(UTC)
        status = calculate_status(deployment, sets, new_rs, strategy_of(deployment).max_unavailable)
        if progress:
            status = with_rollout_conditions(deployment, status, new_rs, sets, now)
        self._write_status(cached, status)
        return seconds_to_deadline(deployment, status, now)

    # --- API writes -------------------------------------------------------------------

    def _annotate_revision(self, deployment: Obj, value: str) -> None:
        d_meta = meta(deployment)
        if (d_meta.get("annotations") or {}).get(REVISION) == value:
            return
        call(self._apps.patch_namespaced_deployment, d_meta["name"], d_meta["namespace"],
             {"metadata": {"annotations": {REVISION: value}}}, _content_type=MERGE_PATCH)
        d_meta.setdefault("annotations", {})[REVISION] = value

    def _patch_set(self, name: str, namespace: str, body: Obj) -> Obj:
        return call(self._apps.patch_namespaced_replica_set, name, namespace, body, _content_type=MERGE_PATCH)

    def _write_status(self, deployment: Obj, status: Obj) -> None:
        current = deployment.get("status") or {}
        if current == status:
            return
        d_meta = meta(deployment)
        body = {"status": {**{k: None for k in current if k not in status}, **status}}
        try:
            call(self._apps.patch_namespaced_deployment_status, d_meta["name"], d_meta["namespace"], body,
                 _content_type=MERGE_PATCH)
        except Exception as error:
            if status_code(error) != 404:
                raise


def _age_key(rs: Obj) -> float:
    return created(rs).timestamp()


def _split(deployment: Obj, sets: list[Obj]) -> tuple[Obj | None, list[Obj]]:
    """The set running the deployment's template (the oldest such, should there be two)
    and the others, oldest first."""
    ordered = oldest_first(sets)
    new_rs = next((rs for rs in ordered if same_template(rs, deployment)), None)
    return new_rs, [rs for rs in ordered if rs is not new_rs]


def _next_revision(old_sets: list[Obj]) -> int:
    return max((revision(rs) for rs in old_sets), default=0) + 1


def _replaced(new_rs: Obj | None, old_sets: list[Obj], changed: Obj) -> tuple[Obj | None, list[Obj]]:
    """new_rs and old_sets with the set named like changed replaced by it."""
    name = meta(changed).get("name")
    if new_rs is not None and meta(new_rs).get("name") == name:
        return changed, old_sets
    return new_rs, [changed if meta(rs).get("name") == name else rs for rs in old_sets]
