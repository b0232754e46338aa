"""Nodes whose handler stopped beating: their VMIs can no longer be managed, so they go
Failed (and VMs that want to run start them again elsewhere); the node stops taking new
ones until its handler is back."""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

from kube_client.controller import Controller
from kube_client.rawapi import MERGE_PATCH, STRATEGIC_PATCH, call
from kube_client.timestamps import parse_time
from kubevirt_api import labels
from kubevirt_api.objects import vmi_phase
from kubevirt_api.phases import VMIPhase
from virt_controller.informers import BY_NODE, VMIS, ClusterInformers, ownership

Obj = dict[str, Any]
log = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT_SECONDS = 5 * 60.0
_ACTIVE = (VMIPhase.SCHEDULED, VMIPhase.RUNNING)


def _parse(stamp: str) -> datetime.datetime | None:
    try:
        return parse_time(stamp)
    except (TypeError, ValueError):
        return None


class NodeController:
    def __init__(self, api: client.ApiClient, *, heartbeat_timeout: float = HEARTBEAT_TIMEOUT_SECONDS,
                 leader: Any = None, stream_beats: Callable[[str], float | None] | None = None,
                 informers: ClusterInformers | None = None) -> None:
        # stream_beats: node -> wall-clock time of its handler's last NodeService heartbeat.
        self._stream_beats = stream_beats or (lambda _node: None)
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)
        self._timeout = heartbeat_timeout
        shared = informers or ClusterInformers(api)
        self.nodes = shared.nodes
        self.vmis = shared.vmis
        self.controller = Controller("node", self.reconcile, **ownership(informers, self.nodes, self.vmis),
                                     leader=leader)
        self.controller.watch(self.nodes)

    def start(self) -> None:
        self.controller.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.controller.stop(timeout)

    def reconcile(self, name: str) -> float | None:
        node = self.nodes.get(name)
        if node is None:
            return None
        meta = node["metadata"]
        stamp = _parse((meta.get("annotations") or {}).get(labels.HEARTBEAT_ANNOTATION, ""))
        if stamp is None:
            return None  # never ran a handler: not a kubevirt node
        # The freshest of the two signs of life: the annotation and the NodeService stream.
        last = max(stamp.timestamp(), self._stream_beats(name) or 0.0)
        age = time.time() - last
        if age < self._timeout:
            return self._timeout - age + 1.0  # look again when it would have expired
        self._mark_unschedulable(node)
        for vmi in self.vmis.by_index(BY_NODE, name):
            if vmi_phase(vmi) in _ACTIVE:
                self._fail(vmi, name)
        return self._timeout

    def _mark_unschedulable(self, node: Obj) -> None:
        if (node["metadata"].get("labels") or {}).get(labels.SCHEDULABLE_NODE_LABEL) == "false":
            return
        log.warning("node %s: no heartbeat from its handler; no new VMIs go there", node["metadata"]["name"])
        call(self._core.patch_node, node["metadata"]["name"],
             {"metadata": {"labels": {labels.SCHEDULABLE_NODE_LABEL: "false"}}}, _content_type=STRATEGIC_PATCH)

    def _fail(self, vmi: Obj, node: str) -> None:
        meta = vmi["metadata"]
        call(self._custom.patch_namespaced_custom_object_status, VMIS.group, VMIS.version, meta["namespace"],
             VMIS.plural, meta["name"], {"status": {
                 "phase": VMIPhase.FAILED.value,
                 "reason": f"NodeUnresponsive: the handler of node {node} stopped sending heartbeats"}},
             _content_type=MERGE_PATCH)
