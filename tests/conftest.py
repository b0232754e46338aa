"""Shared fixtures: a private temporary directory for sockets (paths must stay short)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def sockdir() -> Iterator[Path]:
    # Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="kv-", dir="/tmp"))
    path.chmod(0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class RunningControlPlane:
    """A local control plane served from a background thread's event loop."""

    def __init__(self, state_dir: Path) -> None:
        import asyncio
        import threading

        from local_cluster.control_plane import ControlPlane

        self.state_dir = state_dir
        self.loop = asyncio.new_event_loop()
        self.plane = ControlPlane(state_dir)
        self._thread = threading.Thread(target=self.loop.run_forever, name="control-plane", daemon=True)
        self._thread.start()
        self.call(self.plane.start())

    def call(self, coroutine, timeout: float = 60.0):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    def api_client(self):
        from kube_client.config import load_api_client

        return load_api_client(self.kubeconfig)

    def restart_apiserver(self) -> None:
        """Stop the API server (keeping etcd) and start a fresh one on the same state."""
        self.call(self.plane.stop())
        self.call(self.plane.start())

    def close(self) -> None:
        try:
            self.call(self.plane.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@pytest.fixture(scope="module")
def control_plane() -> Iterator[RunningControlPlane]:
    state = Path(tempfile.mkdtemp(prefix="kv-cp-", dir="/tmp"))
    plane = RunningControlPlane(state)
    try:
        yield plane
    finally:
        plane.close()
        shutil.rmtree(state, ignore_errors=True)
