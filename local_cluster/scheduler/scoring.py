"""Choosing among the nodes that can take a pod.

Preferred node affinity decides first (the summed weights of matched terms), then
the node left with the most free cpu and memory; scores are whole numbers, as
kube-scheduler's are, so near-equal nodes tie and the tie is broken at random,
which spreads identical pods instead of stacking them on the first node listed.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from local_cluster.scheduler.node_affinity import preference_score
from local_cluster.scheduler.resources import CPU, MEMORY, Resources, allocatable, with_non_zero_defaults
from local_cluster.scheduler.snapshot import NodeInfo

Obj = dict[str, Any]
MAX_SCORE = 100


def least_allocated(requests: Resources, info: NodeInfo) -> int:
    """0..100: the mean share of cpu and memory still free once the pod is placed."""
    capacity = allocatable(info.node)
    wanted = with_non_zero_defaults(requests)
    shares = []
    for name in (CPU, MEMORY):
        total = capacity.get(name, Decimal(0))
        if total <= 0:
            shares.append(Decimal(0))
            continue
        used = info.scored.get(name, Decimal(0)) + wanted.get(name, Decimal(0))
        shares.append(max(Decimal(0), (total - used) / total))
    return int(sum(shares) / len(shares) * MAX_SCORE)


def choose_node(pod: Obj, requests: Resources, candidates: list[NodeInfo], rng: random.Random) -> NodeInfo:
    scored = [((preference_score(pod, info.node), least_allocated(requests, info)), info) for info in candidates]
    best = max(score for score, _ in scored)
    return rng.choice([info for score, info in scored if score == best])
