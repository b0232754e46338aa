"""The node's liveness as the cluster sees it: labels and the heartbeat annotation that
virt-controller reads, refreshed periodically, withdrawn on a clean stop."""

from __future__ import annotations

import logging
import threading

from kubernetes import client

from kube_client.rawapi import STRATEGIC_PATCH, call
from kube_client.timestamps import now_text
from kubevirt_api import labels

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30.0


class NodeHeartbeat:
    def __init__(self, api: client.ApiClient, node_name: str, emulation: str,
                 interval: float = HEARTBEAT_SECONDS) -> None:
        self._core = client.CoreV1Api(api)
        self.node_name = node_name
        self.emulation = emulation
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, schedulable: bool = True) -> None:
        call(self._core.patch_node, self.node_name, {"metadata": {
            "labels": {labels.SCHEDULABLE_NODE_LABEL: "true" if schedulable else "false",
                       labels.EMULATION_NODE_LABEL: self.emulation},
            "annotations": {labels.HEARTBEAT_ANNOTATION: now_text()}}}, _content_type=STRATEGIC_PATCH)

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(target=self._run, name="node-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.beat()
            except Exception as error:  # the API may be restarting; the next beat retries
                log.warning("heartbeat of node %s failed: %s", self.node_name, error)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.beat(schedulable=False)  # no new guests for a node whose handler is gone
        except Exception as error:
            log.warning("could not mark node %s unschedulable: %s", self.node_name, error)
