"""A virt-controller replica follows each kind once, whatever number of controllers read it."""

from __future__ import annotations

import time

from tests.wait import eventually
from virt_controller.__main__ import VirtController


def test_every_controller_of_a_replica_reads_the_same_informer_per_kind(control_plane) -> None:
    replica = VirtController(control_plane.api_client(), "kubevirt", "kubevirt-py/virt-launcher:latest")
    shared = replica.informers
    readers = {"vmis": shared.vmis, "migrations": shared.migrations, "nodes": shared.nodes}
    for part in replica.parts:
        for attribute, informer in readers.items():
            if hasattr(part, attribute):
                assert getattr(part, attribute) is informer, (type(part).__name__, attribute)
    assert replica.migrations.pods is shared.launcher_pods
    # The controllers only wait for the shared informers; the replica runs them, once it leads.
    assert all(not part.controller._owned for part in replica.parts)


def test_a_standby_replica_follows_nothing_until_it_leads(control_plane, kubevirt_api, install_namespace) -> None:
    timing = {"lease_duration": 2.0, "renew_deadline": 1.2, "retry_period": 0.2}
    first = VirtController(control_plane.api_client(), "kubevirt", "kubevirt-py/virt-launcher:latest", **timing)
    second = VirtController(control_plane.api_client(), "kubevirt", "kubevirt-py/virt-launcher:latest", **timing)
    first.start()
    running = [first]
    try:
        eventually(first.leader.is_leader, timeout=10)
        eventually(first.ready, timeout=10, what="the leader's caches synced")
        second.start()
        running.append(second)
        time.sleep(1.0)  # several election rounds
        assert not second.leader.is_leader()
        assert second.ready()  # ready to take the lead, as upstream reports a standby
        assert not any(informer.has_synced() for informer in second.informers.all())
        running.remove(first)
        first.stop()
        eventually(second.leader.is_leader, timeout=10)
        eventually(lambda: all(informer.has_synced() for informer in second.informers.all()), timeout=10,
                   what="the new leader's caches synced")
    finally:
        for replica in running:
            replica.stop()
