"""A control plane served from a background thread's event loop, for synchronous callers
(tests, benchmarks, tools) that talk to it with the official blocking client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client

from kube_client.config import load_api_client
from local_cluster.control_plane import ControlPlane

T = TypeVar("T")


class ThreadedControlPlane:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.loop = asyncio.new_event_loop()
        self.plane = ControlPlane(state_dir)
        self._thread = threading.Thread(target=self.loop.run_forever, name="control-plane", daemon=True)
        self._thread.start()
        try:
            self.call(self.plane.start())
        except BaseException:
            self._stop_loop()
            raise

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    def api_client(self) -> client.ApiClient:
        return load_api_client(self.kubeconfig)

    def restart_apiserver(self) -> None:
        """Stop everything (etcd too) and start again on the same state directory."""
        self.call(self.plane.stop())
        self.call(self.plane.start())

    def close(self) -> None:
        try:
            self.call(self.plane.stop())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
