"""The pure parts of the workload controllers: rollout arithmetic, daemon placement,
which pods go first, template hashes, int-or-percent values and failure back-off."""

from __future__ import annotations

from typing import Any

import pytest

from local_cluster.workloads.daemon_placement import pinned_spec, placement, target_node
from local_cluster.workloads.deletion_order import deletion_order
from local_cluster.workloads.failure_backoff import FailureBackoff
from local_cluster.workloads.intstr import scaled_value
from local_cluster.workloads.rollout import (active_or_only, new_set_target, old_sets_scale_down,
                                             proportional_sizes, same_template, strategy_of)
from local_cluster.workloads.template_hash import template_hash

Obj = dict[str, Any]


def rs(name: str, replicas: int, available: int = 0, created: str = "2024-01-01T00:00:00Z") -> Obj:
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"replicas": replicas}, "status": {"availableReplicas": available, "replicas": replicas}}


def test_int_or_percent() -> None:
    assert scaled_value("25%", 10, round_up=True, default=0) == 3
    assert scaled_value("25%", 10, round_up=False, default=0) == 2
    assert scaled_value(None, 4, round_up=True, default="25%") == 1
    assert scaled_value(2, 100, round_up=False, default=0) == 2
    with pytest.raises(ValueError):
        scaled_value("lots", 4, round_up=True, default=0)


def test_strategy_defaults_and_the_zero_zero_case() -> None:
    rolling = strategy_of({"spec": {"replicas": 10}})
    assert (rolling.recreate, rolling.max_surge, rolling.max_unavailable) == (False, 3, 2)
    stuck = strategy_of({"spec": {"replicas": 3, "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}})
    assert (stuck.max_surge, stuck.max_unavailable) == (0, 1)
    assert strategy_of({"spec": {"replicas": 0}}).max_unavailable == 0
    assert strategy_of({"spec": {"strategy": {"type": "Recreate"}}}).recreate


def test_template_hash_is_stable_and_sensitive() -> None:
    template = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    reordered = {"spec": {"containers": [{"image": "x", "name": "c"}]}, "metadata": {"labels": {"app": "a"}}}
    assert template_hash(template) == template_hash(reordered)
    assert template_hash(template) != template_hash(template, collision_count=1)
    changed = {**template, "spec": {"containers": [{"name": "c", "image": "y"}]}}
    assert template_hash(template) != template_hash(changed)
    assert set(template_hash(template)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_same_template_ignores_only_the_hash_label() -> None:
    deployment = {"spec": {"template": {"metadata": {"labels": {"app": "a"}}, "spec": {"x": 1}}}}
    owned = {"spec": {"template": {"metadata": {"labels": {"app": "a", "pod-template-hash": "h"}}, "spec": {"x": 1}}}}
    other = {"spec": {"template": {"metadata": {"labels": {"app": "a", "pod-template-hash": "h"}}, "spec": {"x": 2}}}}
    assert same_template(owned, deployment) and not same_template(other, deployment)


def test_new_set_grows_within_the_surge() -> None:
    assert new_set_target(replicas=4, max_surge=1, total_spec=4, new_spec=0) == 1
    assert new_set_target(replicas=4, max_surge=1, total_spec=5, new_spec=1) == 1
    assert new_set_target(replicas=4, max_surge=10, total_spec=4, new_spec=0) == 4


def test_old_sets_shrink_unavailable_pods_first_then_within_availability() -> None:
    old = [rs("old-a", 2, available=0, created="2024-01-01T00:00:00Z"),
           rs("old-b", 3, available=3, created="2024-01-02T00:00:00Z")]
    new = rs("new", 1, available=1, created="2024-01-03T00:00:00Z")
    # 4 wanted, 1 may be unavailable: 3 available are needed and 4 are (3 old-b + 1 new).
    plan = old_sets_scale_down(4, 1, new, old)
    assert plan == {"old-a": 0, "old-b": 2}
    # No availability to spare (and the new pod not up yet): one surplus pod may go, and
    # it is an unavailable one.
    assert old_sets_scale_down(4, 0, rs("new", 1, available=0), old) == {"old-a": 1}
    assert old_sets_scale_down(5, 0, rs("new", 1, available=0), old) == {}


def test_proportional_sizes() -> None:
    assert proportional_sizes([6, 4], 5) == [9, 6]
    assert proportional_sizes([5, 5], -3) == [3, 4]
    assert proportional_sizes([3, 1], -4) == [0, 0]
    assert sum(proportional_sizes([7, 2, 1], 4)) == 14


def test_active_or_only() -> None:
    new, old = rs("new", 0), [rs("old", 2)]
    assert active_or_only(new, old)["metadata"]["name"] == "old"
    assert active_or_only(rs("new", 1), old) is None
    assert active_or_only(new, [rs("old", 0)])["metadata"]["name"] == "new"


def pod(name: str, *, node: str = "", phase: str = "Running", ready: bool = False, created: str = "",
        restarts: int = 0) -> Obj:
    return {"metadata": {"name": name, "creationTimestamp": created or "2024-01-01T00:00:00Z"},
            "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                        "lastTransitionTime": "2024-01-01T00:00:00Z"}],
                       "containerStatuses": [{"restartCount": restarts}]}}


def test_deletion_order() -> None:
    pods = [
        pod("ready-old", node="n1", ready=True, created="2024-01-01T00:00:00Z"),
        pod("ready-new", node="n2", ready=True, created="2024-01-02T00:00:00Z"),
        pod("not-ready", node="n3"),
        pod("pending", node="n3", phase="Pending"),
        pod("unscheduled", phase="Pending"),
    ]
    order = [p["metadata"]["name"] for p in deletion_order(pods)]
    assert order == ["unscheduled", "pending", "not-ready", "ready-new", "ready-old"]
    crowded = [pod("alone", node="n1", ready=True), pod("shared-1", node="n2", ready=True),
               pod("shared-2", node="n2", ready=True)]
    assert deletion_order(crowded)[-1]["metadata"]["name"] == "alone"


def node(name: str, *, labels: dict[str, str] | None = None, taints: list[Obj] | None = None,
         ready: str = "True") -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def test_daemon_placement() -> None:
    spec = {"containers": [{"name": "c", "image": "x"}], "nodeSelector": {"role": "edge"}}
    assert placement(spec, node("n", labels={"role": "edge"})).should_run
    assert placement(spec, node("n", labels={"role": "core"})) == placement(spec, node("m"))
    assert not placement(spec, node("n")).may_continue
    no_schedule = placement(spec, node("n", labels={"role": "edge"}, taints=[{"key": "k", "effect": "NoSchedule"}]))
    assert (no_schedule.should_run, no_schedule.may_continue) == (False, True)
    no_execute = placement(spec, node("n", labels={"role": "edge"}, taints=[{"key": "k", "effect": "NoExecute"}]))
    assert (no_execute.should_run, no_execute.may_continue) == (False, False)
    # Not ready: no new pods (the implied not-ready NoSchedule taint), the old ones stay.
    not_ready = placement(spec, node("n", labels={"role": "edge"}, ready="False"))
    assert (not_ready.should_run, not_ready.may_continue) == (False, True)
    tolerant = {**spec, "tolerations": [{"operator": "Exists"}]}
    assert placement(tolerant, node("n", labels={"role": "edge"}, ready="Unknown",
                                    taints=[{"key": "k", "effect": "NoExecute"}])).should_run


def test_pinning_replaces_required_affinity_and_keeps_preferences() -> None:
    preferred = [{"weight": 1, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}]
    spec = {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["z1"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": preferred}}}
    pinned = pinned_spec(spec, "node-7")
    assert pinned["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == preferred
    assert target_node({"spec": pinned}) == "node-7"
    assert target_node({"spec": {**pinned, "nodeName": "node-8"}}) == "node-8"
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"]  # the template itself is untouched
    host_network = pinned_spec({"hostNetwork": True}, "n")
    assert {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
            "effect": "NoSchedule"} in host_network["tolerations"]


def test_failure_backoff_doubles_per_node() -> None:
    now = [100.0]
    backoff = FailureBackoff(initial=1.0, maximum=8.0, clock=lambda: now[0])
    assert backoff.remaining("ds|n1") == 0.0
    backoff.bump("ds|n1")
    assert backoff.remaining("ds|n1") == 1.0 and backoff.remaining("ds|n2") == 0.0
    now[0] += 1.0
    backoff.bump("ds|n1")
    assert backoff.remaining("ds|n1") == 2.0
    backoff.forget_prefix("ds|")
    assert backoff.remaining("ds|n1") == 0.0
