"""A node whose handler stops beating: its VMIs go Failed and it takes no new ones;
a VM with runStrategy Always then gets a new VMI."""

from __future__ import annotations

import uuid

from kubernetes import client

from kube_client.timestamps import now_text
from tests.wait import eventually
from virt_controller.node_controller import NodeController
from virt_controller.vm_controller import VMController

VMI = ("kubevirt.io", "v1", "default", "virtualmachineinstances")


def test_silent_handler_fails_its_vmis_and_vms_restart_them(control_plane, kubevirt_api) -> None:
    core, custom = client.CoreV1Api(kubevirt_api), client.CustomObjectsApi(kubevirt_api)
    node = f"silent-{uuid.uuid4().hex[:6]}"
    core.create_node({"metadata": {"name": node, "labels": {"kubevirt.io/schedulable": "true"},
                                   "annotations": {"kubevirt.io/heartbeat": now_text()}}})
    name = f"vm-{uuid.uuid4().hex[:6]}"
    custom.create_namespaced_custom_object("kubevirt.io", "v1", "default", "virtualmachines", {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name},
        "spec": {"runStrategy": "Always", "template": {"spec": {
            "domain": {"devices": {}, "resources": {"requests": {"memory": "64Mi"}}}}}}})
    vms = VMController(control_plane.api_client(), backoff_base=0.2)
    nodes = NodeController(control_plane.api_client(), heartbeat_timeout=2.0)
    vms.start()
    nodes.start()
    try:
        first = eventually(lambda: _get(custom, name))
        custom.patch_namespaced_custom_object(*VMI, name, {"metadata": {"labels": {"kubevirt.io/nodeName": node}}})
        custom.patch_namespaced_custom_object_status(*VMI, name, {"status": {"phase": "Running", "nodeName": node}})
        # The handler goes quiet: its last beat ages past the timeout.
        eventually(lambda: core.read_node(node).metadata.labels["kubevirt.io/schedulable"] == "false", timeout=15)
        replacement = eventually(lambda: (lambda v: v if v and v["metadata"]["uid"] != first["metadata"]["uid"]
                                          else None)(_get(custom, name)), timeout=30)
        assert replacement["metadata"]["ownerReferences"][0]["name"] == name
    finally:
        nodes.stop()
        vms.stop()


def _get(custom: client.CustomObjectsApi, name: str) -> dict | None:
    try:
        return custom.get_namespaced_custom_object(*VMI, name)
    except client.ApiException as error:
        assert error.status == 404
        return None
