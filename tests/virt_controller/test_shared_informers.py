"""A virt-controller replica follows each kind once, whatever number of controllers read it."""

from __future__ import annotations

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
    # The controllers only wait for the shared informers; the replica runs them.
    assert all(not part.controller._owned for part in replica.parts)
