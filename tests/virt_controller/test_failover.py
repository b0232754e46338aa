"""Two virt-controller replicas: exactly one leads and acts; the other takes over when it stops."""

from __future__ import annotations

import uuid

from kubernetes import client

from tests.wait import eventually
from virt_controller.__main__ import VirtController



def test_two_replicas_one_leader_and_failover(control_plane, kubevirt_api, install_namespace) -> None:
    api = kubevirt_api
    timing = {"lease_duration": 2.0, "renew_deadline": 1.2, "retry_period": 0.2}  # short terms, quick test
    first = VirtController(control_plane.api_client(), "kubevirt", "kubevirt-py/virt-launcher:latest", **timing)
    second = VirtController(control_plane.api_client(), "kubevirt", "kubevirt-py/virt-launcher:latest", **timing)
    first.start()
    eventually(first.leader.is_leader, timeout=10)
    second.start()
    try:
        assert first.leader.is_leader() and not second.leader.is_leader()
        first.stop()
        eventually(second.leader.is_leader, timeout=10)
        # The new leader acts: a VM created now gets its VMI.
        custom = client.CustomObjectsApi(api)
        name = f"fo-{uuid.uuid4().hex[:6]}"
        custom.create_namespaced_custom_object("kubevirt.io", "v1", "default", "virtualmachines", {
            "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name},
            "spec": {"runStrategy": "Always", "template": {"spec": {
                "domain": {"devices": {}, "resources": {"requests": {"memory": "64Mi"}}}}}}})
        eventually(lambda: custom.list_namespaced_custom_object(
            "kubevirt.io", "v1", "default", "virtualmachineinstances", field_selector=f"metadata.name={name}")["items"],
            timeout=20)
    finally:
        second.stop()
        first.stop()
