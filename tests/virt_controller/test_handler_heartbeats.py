"""virt-controller consumes each handler's NodeService heartbeat stream (mutual TLS),
found through the handler pods, and a fresh stream keeps a node alive."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path

from kubernetes import client

from tests.wait import eventually
from virt_controller.handler_heartbeats import HANDLER_SELECTOR, HandlerHeartbeats
from virt_controller.node_controller import NodeController
from virt_handler.__main__ import VirtHandler

NAMESPACE = "kubevirt"


def _handler_pod(core: client.CoreV1Api, node: str) -> None:
    key, value = HANDLER_SELECTOR.split("=")
    name = f"virt-handler-{uuid.uuid4().hex[:5]}"
    core.create_namespaced_pod(NAMESPACE, {"metadata": {"name": name, "labels": {key: value}}, "spec": {
        "nodeName": node, "containers": [{"name": "virt-handler", "image": "kubevirt-py/virt-handler:latest"}]}})
    core.patch_namespaced_pod_status(name, NAMESPACE, {"status": {"phase": "Running", "podIP": "127.0.0.1"}})


def test_beats_arrive_over_the_stream_and_stop_with_the_handler(control_plane, kubevirt_api) -> None:
    core = client.CoreV1Api(kubevirt_api)
    node = f"beating-{uuid.uuid4().hex[:6]}"
    core.create_node({"metadata": {"name": node}})
    work = Path(tempfile.mkdtemp(prefix="kv-hb-", dir="/tmp"))
    handler = VirtHandler(control_plane.api_client(), node, work / "sockets", "127.0.0.1:0")
    handler.start()
    heartbeats = HandlerHeartbeats(control_plane.api_client(), NAMESPACE, port=handler.port)
    try:
        _handler_pod(core, node)
        heartbeats.start()
        first = eventually(lambda: heartbeats.last_beat(node), timeout=20, what="a beat over the stream")
        assert abs(first - time.time()) < 10
        handler.stop()
        handler = None
        silent_since = time.time()
        time.sleep(1.0)
        last = heartbeats.last_beat(node)
        assert last is not None and last <= silent_since + 0.5
    finally:
        heartbeats.stop()
        if handler is not None:
            handler.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_a_fresh_stream_keeps_a_node_with_a_stale_annotation_alive(control_plane, kubevirt_api) -> None:
    core = client.CoreV1Api(kubevirt_api)
    node = f"streaming-{uuid.uuid4().hex[:6]}"
    core.create_node({"metadata": {"name": node, "labels": {"kubevirt.io/schedulable": "true"},
                                   "annotations": {"kubevirt.io/heartbeat": "2020-01-01T00:00:00Z"}}})
    fresh = NodeController(control_plane.api_client(), heartbeat_timeout=2.0, stream_beats=lambda _n: time.time())
    silent = NodeController(control_plane.api_client(), heartbeat_timeout=2.0)
    informers = [fresh.nodes, fresh.vmis, silent.nodes, silent.vmis]
    for informer in informers:
        informer.start()
    try:
        assert all(informer.wait_for_sync(10) for informer in informers)
        assert fresh.reconcile(node) is not None
        assert core.read_node(node).metadata.labels["kubevirt.io/schedulable"] == "true"
        silent.reconcile(node)
        assert core.read_node(node).metadata.labels["kubevirt.io/schedulable"] == "false"
    finally:
        for informer in informers:
            informer.stop()
