"""Scheduler test fixtures: a running Scheduler and a private namespace with its own nodes."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from scheduler_testkit import Cluster

from local_cluster.scheduler import Scheduler
from kube_client.rawapi import call


@pytest.fixture
def core(control_plane) -> Iterator[client.CoreV1Api]:
    api_client = control_plane.api_client()
    try:
        yield client.CoreV1Api(api_client)
    finally:
        api_client.close()


@pytest.fixture
def cluster(core: client.CoreV1Api) -> Iterator[Cluster]:
    namespace = f"s-{uuid.uuid4().hex[:8]}"
    call(core.create_namespace, {"metadata": {"name": namespace}})
    made = Cluster(core, namespace)
    try:
        yield made
    finally:
        made.cleanup()


def _scheduler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "scheduler" or t.name.startswith("reflector-")]


@pytest.fixture
def scheduler(control_plane, cluster: Cluster) -> Iterator[Scheduler]:
    api_client = control_plane.api_client()
    running = Scheduler(api_client, retry_interval=5.0, initial_backoff=0.2, max_backoff=1.0)
    running.start()
    try:
        assert running.wait_synced(10), "the scheduler's caches never synced"
        yield running
    finally:
        started = time.monotonic()
        running.stop()
        elapsed = time.monotonic() - started
        api_client.close()
        assert not _scheduler_threads(), f"threads left running: {_scheduler_threads()}"
        assert elapsed < 3, f"stop() took {elapsed:.1f}s"

