"""Scheduler test fixtures: a running Scheduler and a private namespace with its own nodes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from scheduler_testkit import Cluster

from local_cluster.scheduler import Scheduler
from kube_client.rawapi import call
from tests.daemons import running


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


@pytest.fixture
def scheduler(control_plane, cluster: Cluster) -> Iterator[Scheduler]:
    api_client = control_plane.api_client()
    with running(Scheduler(api_client, retry_interval=5.0, initial_backoff=0.2, max_backoff=1.0), api_client,
                 "scheduler", lambda s: s.wait_synced(10), "the scheduler's caches never synced") as started:
        yield started

