"""Workload controller fixtures: a private namespace with hand-made nodes, the real
scheduler, a stand-in for the kubelets, and the controllers under test, all stopped
(and checked to be stopped) at the end of each test."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from workload_testkit import Cluster, FakeKubelet

from kube_client.rawapi import call
from local_cluster.scheduler import Scheduler
from local_cluster.workloads import WorkloadControllers

_OUR_THREADS = ("scheduler", "reflector-", "controller-", "informer-resync-", "fake-kubelet")


def _running_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(_OUR_THREADS)]


@pytest.fixture
def api_client(control_plane) -> Iterator[client.ApiClient]:
    made = control_plane.api_client()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def cluster(api_client: client.ApiClient) -> Iterator[Cluster]:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    namespace = f"w-{uuid.uuid4().hex[:8]}"
    call(core.create_namespace, {"metadata": {"name": namespace}})
    made = Cluster(core, apps, namespace)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def scheduler(control_plane, cluster: Cluster) -> Iterator[Scheduler]:
    own_client = control_plane.api_client()
    running = Scheduler(own_client, retry_interval=2.0, initial_backoff=0.1, max_backoff=0.5)
    running.start()
    try:
        assert running.wait_synced(10), "the scheduler's caches never synced"
        yield running
    finally:
        running.stop()
        own_client.close()


@pytest.fixture
def kubelet(cluster: Cluster) -> Iterator[FakeKubelet]:
    fake = FakeKubelet(cluster.core, cluster.namespace).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def workloads(control_plane, cluster: Cluster, scheduler: Scheduler, kubelet: FakeKubelet
              ) -> Iterator[WorkloadControllers]:
    """The controllers, limited to the test's namespace (nodes are seen cluster-wide)."""
    own_client = control_plane.api_client()
    controllers = WorkloadControllers(own_client, namespace=cluster.namespace)
    controllers.start()
    try:
        assert controllers.wait_synced(10), "the controllers' caches never synced"
        yield controllers
    finally:
        assert controllers.stop(), "the workload controllers did not stop in time"
        own_client.close()


@pytest.fixture(autouse=True)
def no_threads_left() -> Iterator[None]:
    yield
    # Fixtures are torn down before this (it is requested first), so everything is stopped.
    left = _running_threads()
    assert not left, f"threads left running: {left}"
