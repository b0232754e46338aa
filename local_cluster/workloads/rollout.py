"""The arithmetic of a Deployment rollout, kept apart from API calls so it can be read
(and tested) on its own. ReplicaSets are plain dicts as the API serves them.

RollingUpdate keeps the sum of the ReplicaSets' spec.replicas at most replicas +
maxSurge, and scales old sets down only as far as keeps replicas - maxUnavailable
pods available (old pods that are not available anyway go first, as removing them
costs nothing). Recreate scales every old set to zero and waits for their pods to be
gone before the new set is scaled up. A change of spec.replicas in the middle of a
rollout is spread over the active sets in proportion to their sizes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from local_cluster.workloads.intstr import scaled_value
from local_cluster.workloads.pod_state import created, meta

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
RECREATE, ROLLING_UPDATE = "Recreate", "RollingUpdate"
DEFAULT_SURGE = DEFAULT_UNAVAILABLE = "25%"


def desired(obj: Obj) -> int:
    """spec.replicas of a Deployment or ReplicaSet (1 when unset, the API default)."""
    replicas = (obj.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def available(rs: Obj | None) -> int:
    return int(((rs or {}).get("status") or {}).get("availableReplicas") or 0)


def ready(rs: Obj | None) -> int:
    return int(((rs or {}).get("status") or {}).get("readyReplicas") or 0)


def actual(rs: Obj | None) -> int:
    return int(((rs or {}).get("status") or {}).get("replicas") or 0)


def revision(rs: Obj) -> int:
    try:
        return int((meta(rs).get("annotations") or {}).get(REVISION) or 0)
    except ValueError:
        return 0


def annotated_int(rs: Obj, annotation: str) -> int | None:
    try:
        return int((meta(rs).get("annotations") or {})[annotation])
    except (KeyError, ValueError, TypeError):
        return None


def oldest_first(sets: list[Obj]) -> list[Obj]:
    return sorted(sets, key=lambda rs: (created(rs), meta(rs).get("name", "")))


@dataclass(frozen=True)
class Strategy:
    recreate: bool
    max_surge: int
    # Already capped at replicas; 0 for Recreate.
    max_unavailable: int


def strategy_of(deployment: Obj) -> Strategy:
    spec = deployment.get("spec") or {}
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == RECREATE:
        return Strategy(True, 0, 0)
    replicas = desired(deployment)
    rolling = strategy.get("rollingUpdate") or {}
    surge = scaled_value(rolling.get("maxSurge"), replicas, round_up=True, default=DEFAULT_SURGE)
    unavailable = scaled_value(rolling.get("maxUnavailable"), replicas, round_up=False, default=DEFAULT_UNAVAILABLE)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # a rollout that may neither add nor remove a pod could never move
    return Strategy(False, surge, min(unavailable, replicas))


def template_without_hash(template: Obj) -> Obj:
    stripped = copy.deepcopy(template)
    template_meta = stripped.get("metadata") or {}
    labels = template_meta.get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
        if not labels:
            template_meta.pop("labels")
    return stripped


def same_template(rs: Obj, deployment: Obj) -> bool:
    """Whether rs runs the deployment's current template (its own hash label aside)."""
    return (template_without_hash((rs.get("spec") or {}).get("template") or {})
            == template_without_hash((deployment.get("spec") or {}).get("template") or {}))


def new_set_target(replicas: int, max_surge: int, total_spec: int, new_spec: int) -> int:
    """How far the new set may grow now: up to replicas, within replicas + maxSurge in all."""
    room = replicas + max_surge - total_spec
    if room <= 0:
        return new_spec
    return new_spec + min(room, max(0, replicas - new_spec))


def old_sets_scale_down(replicas: int, max_unavailable: int, new_rs: Obj | None,
                        old_sets: list[Obj]) -> dict[str, int]:
    """New spec.replicas for the old sets that should shrink now (name -> size)."""
    sets = [rs for rs in oldest_first(old_sets) if desired(rs) > 0]
    everything = sets + ([new_rs] if new_rs is not None else [])
    min_available = replicas - max_unavailable
    new_unavailable = max(0, desired(new_rs) - available(new_rs)) if new_rs is not None else 0
    room = sum(desired(rs) for rs in everything) - min_available - new_unavailable
    if room <= 0:
        return {}
    original = {meta(rs)["name"]: desired(rs) for rs in sets}
    sizes = dict(original)
    # First the pods that are not available anyway.
    removed = 0
    for rs in sets:
        name = meta(rs)["name"]
        unhealthy = sizes[name] - available(rs)
        if removed >= room:
            break
        if unhealthy <= 0:
            continue
        cut = min(room - removed, unhealthy)
        sizes[name] -= cut
        removed += cut
    # Then available ones, as far as availability allows.
    budget = sum(available(rs) for rs in everything) - min_available
    taken = 0
    for rs in sets:
        name = meta(rs)["name"]
        if taken >= budget:
            break
        cut = min(sizes[name], budget - taken)
        sizes[name] -= cut
        taken += cut
    return {name: size for name, size in sizes.items() if size != original[name]}


def proportional_sizes(sizes: list[int], delta: int) -> list[int]:
    """Spread delta over sets of these sizes in proportion to each size; what rounding
    leaves over goes to the sets with the largest remainders, the earlier on a tie
    (callers put the set that should take leftovers first). Never below zero."""
    total = sum(sizes)
    if total <= 0 or delta == 0:
        shares = [0] * len(sizes)
        if sizes and delta > 0:
            shares[0] = delta
        return [s + d for s, d in zip(sizes, shares)]
    exact = [delta * s / total for s in sizes]
    shares = [int(e) for e in exact]  # towards zero
    leftover = delta - sum(shares)
    step = 1 if leftover > 0 else -1
    order = sorted(range(len(sizes)), key=lambda i: (-abs(exact[i] - shares[i]), i))
    for i in order[:abs(leftover)]:
        shares[i] += step
    return [max(0, s + d) for s, d in zip(sizes, shares)]


def active_or_only(new_rs: Obj | None, old_sets: list[Obj]) -> Obj | None:
    """The one set that runs pods, or the newest if none does; None when several do."""
    everything = ([new_rs] if new_rs is not None else []) + old_sets
    active = [rs for rs in everything if desired(rs) > 0]
    if len(active) == 1:
        return active[0]
    if active:
        return None
    if new_rs is not None:
        return new_rs
    return oldest_first(old_sets)[-1] if old_sets else None


def is_saturated(deployment: Obj, rs: Obj | None) -> bool:
    """The new set is fully scaled and all its pods available."""
    if rs is None:
        return False
    replicas = desired(deployment)
    return (desired(rs) == replicas and annotated_int(rs, DESIRED_REPLICAS) == replicas
            and available(rs) == replicas)
