"""VMI replica sets: scale up and down through the scale subresource, replace finished
VMIs, report replicas, readyReplicas and the selector for `kubectl scale`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.wait import eventually
from virt_controller.replicaset_controller import ReplicaSetController

RS = ("kubevirt.io", "v1", "default", "virtualmachineinstancereplicasets")
VMI = ("kubevirt.io", "v1", "default", "virtualmachineinstances")


@pytest.fixture(scope="module")
def custom(control_plane, kubevirt_api) -> Iterator[client.CustomObjectsApi]:
    api = kubevirt_api
    controller = ReplicaSetController(control_plane.api_client())
    controller.start()
    yield client.CustomObjectsApi(api)
    controller.stop()


def _vmis(custom, app: str) -> list[dict]:
    items = custom.list_namespaced_custom_object(*VMI, label_selector=f"app={app}")["items"]
    return [v for v in items if not v["metadata"].get("deletionTimestamp")]


def test_scale_3_to_5_to_1_and_replace_finished(custom) -> None:
    app = f"rs-{uuid.uuid4().hex[:6]}"
    custom.create_namespaced_custom_object(*RS[:3], RS[3], {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceReplicaSet", "metadata": {"name": app},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": app}},
                 "template": {"metadata": {"labels": {"app": app}}, "spec": {
                     "domain": {"devices": {}, "resources": {"requests": {"memory": "64Mi"}}}}}}})
    eventually(lambda: len(_vmis(custom, app)) == 3)
    custom.patch_namespaced_custom_object_scale(*RS, app, {"spec": {"replicas": 5}})
    eventually(lambda: len(_vmis(custom, app)) == 5)
    ready = _vmis(custom, app)[0]
    custom.patch_namespaced_custom_object_status(*VMI, ready["metadata"]["name"], {"status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
    status = eventually(lambda: (lambda s: s if s.get("readyReplicas") == 1 and s.get("replicas") == 5 else None)(
        custom.get_namespaced_custom_object(*RS, app).get("status") or {}))
    assert status["labelSelector"] == f"app={app}"
    custom.patch_namespaced_custom_object_scale(*RS, app, {"spec": {"replicas": 1}})
    eventually(lambda: len(_vmis(custom, app)) == 1)
    assert _vmis(custom, app)[0]["metadata"]["uid"] == ready["metadata"]["uid"]  # the ready one is kept
    custom.patch_namespaced_custom_object_status(*VMI, ready["metadata"]["name"], {"status": {"phase": "Failed"}})
    eventually(lambda: (lambda v: len(v) == 1 and v[0]["metadata"]["uid"] != ready["metadata"]["uid"])(
        _vmis(custom, app)))
    scale = custom.get_namespaced_custom_object_scale(*RS, app)
    assert scale["spec"]["replicas"] == 1 and scale["status"]["selector"] == f"app={app}"
