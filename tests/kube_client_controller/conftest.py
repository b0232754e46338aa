"""Fixtures for the controller machinery: an API client, a private namespace per test,
and a check that every test leaves no thread of its own running."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from kube_client.rawapi import call


@pytest.fixture(autouse=True)
def no_threads_left() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    # The control plane's event loop may start executor threads of its own on demand.
    def left() -> list[threading.Thread]:
        return [t for t in threading.enumerate()
                if t not in before and t.is_alive() and not t.name.startswith("asyncio_")]
    deadline = time.monotonic() + 2.0
    while left() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not left(), f"threads left running: {[t.name for t in left()]}"


@pytest.fixture(scope="module")
def api(control_plane) -> Iterator[client.ApiClient]:
    api_client = control_plane.api_client()
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    name = f"c-{uuid.uuid4().hex[:8]}"
    call(core.create_namespace, {"metadata": {"name": name}})
    try:
        yield name
    finally:
        try:
            call(core.delete_namespace, name)
        except client.ApiException:
            pass
