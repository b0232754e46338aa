"""The scheduler rides out an API server restart: its watches reconnect and resume."""

from __future__ import annotations

from scheduler_testkit import Cluster


def test_scheduling_continues_after_an_apiserver_restart(control_plane, cluster: Cluster, scheduler) -> None:
    node = cluster.node("steady")
    assert cluster.wait_bound(cluster.pod("before")) == node
    control_plane.restart_apiserver()
    cluster.pod("after")
    assert cluster.wait_bound("after", timeout=20) == node
