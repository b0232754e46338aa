"""The heartbeat streams of every virt-handler, consumed over NodeService (mutual TLS).

Each handler pod gets one long-lived Heartbeats stream from its pod IP; the last beat
per node tells the node controller the handler is alive even between two of its
(slower) annotation heartbeats. Every replica consumes them, so a new leader starts
with fresh knowledge.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import grpc
from kubernetes import client

from kube_client.controller import SharedInformer
from kube_client.controller.resource import PODS
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2 as pb
from kubevirt_grpc.nodeservice.v1 import nodeservice_pb2_grpc as pb_grpc
from pki.cluster_ca import channel_credentials, ensure_ca

log = logging.getLogger(__name__)

NODE_SERVICE_PORT = 8186
HANDLER_SELECTOR = "kubevirt.io=virt-handler"
RECONCILE_SECONDS = 1.0
RETRY_SECONDS = 2.0

Obj = dict[str, Any]


def _target(pod: Obj, port: int) -> tuple[str, str] | None:
    """(node, address) of a running handler pod, else None."""
    status = pod.get("status") or {}
    node = (pod.get("spec") or {}).get("nodeName")
    if status.get("phase") != "Running" or not status.get("podIP") or not node:
        return None
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None
    return node, f"{status['podIP']}:{port}"


class HandlerHeartbeats:
    def __init__(self, api: client.ApiClient, namespace: str = "kubevirt", port: int = NODE_SERVICE_PORT) -> None:
        self._port = port
        self._core = client.CoreV1Api(api)
        self._namespace = namespace
        self.pods = SharedInformer(api, PODS, namespace, label_selector=HANDLER_SELECTOR, name="handler-pods")
        self._beats: dict[str, float] = {}              # node -> wall-clock time of its last beat
        self._streams: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="handler-heartbeats", daemon=True)
        self._main: asyncio.Future[None] | None = None

    def last_beat(self, node: str) -> float | None:
        return self._beats.get(node)

    def start(self) -> None:
        self.pods.start()
        self._thread.start()
        self._main = asyncio.run_coroutine_threadsafe(self._run(), self._loop)

    def stop(self, timeout: float = 5.0) -> None:
        if self._main is not None and self._loop.is_running():
            self._main = None  # stopping twice is stopping once
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout)
            except Exception as error:  # a stream that will not end must not keep us
                log.warning("heartbeat streams did not stop cleanly: %s", error)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self.pods.stop()

    async def _shutdown(self) -> None:
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        credentials = await self._credentials()
        while True:
            self._reconcile(credentials)
            await asyncio.sleep(RECONCILE_SECONDS)

    async def _credentials(self) -> grpc.ChannelCredentials:
        while True:
            try:
                ca = await asyncio.to_thread(ensure_ca, self._core)
                return channel_credentials(ca, "virt-controller")
            except Exception as error:  # the API may not answer yet; heartbeats can wait
                log.warning("cluster CA not available yet: %s", error)
                await asyncio.sleep(RETRY_SECONDS)

    def _reconcile(self, credentials: grpc.ChannelCredentials) -> None:
        wanted = {t for t in (_target(p, self._port) for p in self.pods.list()) if t is not None}
        for target in set(self._streams) - wanted:
            self._streams.pop(target).cancel()
        for target in wanted - set(self._streams):
            self._streams[target] = asyncio.ensure_future(self._follow(*target, credentials))

    async def _follow(self, node: str, address: str, credentials: grpc.ChannelCredentials) -> None:
        while True:
            try:
                async with grpc.aio.secure_channel(address, credentials) as channel:
                    beats = pb_grpc.NodeServiceStub(channel).Heartbeats(pb.HeartbeatRequest(client="virt-controller"))
                    async for beat in beats:
                        self._beats[beat.node_name or node] = time.time()
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as error:
                log.info("heartbeat stream of %s (%s) ended: %s", node, address, error.code().name)
            except Exception as error:  # a stream must never die for good while its pod lives
                log.warning("heartbeat stream of %s (%s) failed: %s", node, address, error)
            await asyncio.sleep(RETRY_SECONDS)
