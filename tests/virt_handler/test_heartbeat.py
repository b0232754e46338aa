"""The handler labels its node schedulable with its emulation, beats, and withdraws on stop."""

from __future__ import annotations

from kubernetes import client

from tests.wait import eventually
from virt_handler.heartbeat import NodeHeartbeat


def test_labels_heartbeat_and_withdrawal(control_plane) -> None:
    core = client.CoreV1Api(control_plane.api_client())
    core.create_node({"metadata": {"name": "hbnode"}})
    heartbeat = NodeHeartbeat(control_plane.api_client(), "hbnode", "qemu", interval=0.2)
    heartbeat.start()
    first = core.read_node("hbnode").metadata
    assert first.labels["kubevirt.io/schedulable"] == "true" and first.labels["kubevirt.io/emulation"] == "qemu"
    stamp = first.annotations["kubevirt.io/heartbeat"]
    assert stamp.endswith("Z")
    eventually(lambda: core.read_node("hbnode").metadata.annotations["kubevirt.io/heartbeat"] != stamp, timeout=5)
    heartbeat.stop()
    assert core.read_node("hbnode").metadata.labels["kubevirt.io/schedulable"] == "false"
