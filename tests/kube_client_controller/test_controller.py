"""The Controller: reconcile outcomes, the leadership gate, and a toy controller against
the real API server that must never create a second copy, even with a slow cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from kube_client.controller.controller import Controller, controller_owner_keys
from kube_client.controller.expectations import ControllerExpectations
from kube_client.controller.informer import SharedInformer
from kube_client.controller.ratelimit import ItemExponentialBackoff
from kube_client.controller.resource import CONFIG_MAPS, ListMethod
from kube_client.controller.store import controller_uid_index
from kube_client.rawapi import MERGE_PATCH, call, object_key

from .helpers import wait_until

Obj = dict[str, Any]


# --- without a server -------------------------------------------------------------------


class Gate:
    def __init__(self) -> None:
        self.leading = threading.Event()

    def is_leader(self) -> bool:
        return self.leading.is_set()

    def wait_for_leadership(self, timeout: float) -> bool:
        return self.leading.wait(timeout)


def test_a_failing_key_backs_off_and_success_forgets_it() -> None:
    attempts: list[float] = []
    requeues_seen: list[int] = []

    def reconcile(key: str) -> None:
        attempts.append(time.monotonic())
        requeues_seen.append(controller.queue.num_requeues(key))
        if len(attempts) <= 4:
            raise RuntimeError("not yet")

    controller = Controller("flaky", reconcile, workers=2, rate_limiter=ItemExponentialBackoff(base=0.02, maximum=5))
    controller.start()
    try:
        controller.enqueue("ns/a")
        assert wait_until(lambda: len(attempts) == 5, timeout=3)
        assert wait_until(lambda: controller.queue.num_requeues("ns/a") == 0)
    finally:
        assert controller.stop()
    gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:])]
    assert requeues_seen == [0, 1, 2, 3, 4]
    # 20, 40, 80, 160 ms: each retry waits longer than the one before.
    assert all(gap >= expected * 0.9 for gap, expected in zip(gaps, [0.02, 0.04, 0.08, 0.16]))
    assert gaps == sorted(gaps)


def test_a_returned_delay_asks_for_another_look() -> None:
    seen: list[str] = []

    def reconcile(key: str) -> float | None:
        seen.append(key)
        return 0.05 if len(seen) < 3 else None

    controller = Controller("periodic", reconcile)
    controller.start()
    try:
        controller.enqueue("k")
        assert wait_until(lambda: len(seen) == 3, timeout=2)
        time.sleep(0.15)
        assert len(seen) == 3
    finally:
        assert controller.stop()


def test_workers_wait_for_leadership_and_stop_promptly_while_waiting() -> None:
    gate = Gate()
    seen: list[str] = []
    controller = Controller("gated", lambda key: seen.append(key), workers=3, leader=gate)
    controller.start()
    try:
        for key in ("a", "b", "c"):
            controller.enqueue(key)
        time.sleep(0.3)
        assert seen == []
        gate.leading.set()
        assert wait_until(lambda: sorted(seen) == ["a", "b", "c"], timeout=2)
        gate.leading.clear()
        controller.enqueue("d")
        time.sleep(0.3)
        assert "d" not in seen
    finally:
        started = time.monotonic()
        assert controller.stop()
        assert time.monotonic() - started < 1.0
    assert "d" not in seen


# --- the toy controller -------------------------------------------------------------------

SOURCE_LABEL = "role"
COPY_LABEL = "copy-of"


class _DelayedStream:
    """A watch response whose every chunk arrives `delay` seconds late: a slow cache."""

    def __init__(self, response: Any, delay: float) -> None:
        self._response = response
        self._delay = delay
        self._shut = threading.Event()

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        for chunk in self._response.stream(*args, **kwargs):
            if self._shut.wait(self._delay):
                return
            yield chunk

    def shutdown(self) -> None:
        self._shut.set()
        self._response.shutdown()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._response, name)


def _delayed(list_method: ListMethod, delay: float) -> ListMethod:
    def list_or_watch(**kwargs: Any) -> Any:
        response = list_method(**kwargs)
        return _DelayedStream(response, delay) if kwargs.get("watch") else response
    return list_or_watch


class CopyController:
    """Keeps one copy of every ConfigMap labelled role=source: same data, owned by it,
    named by the server (generateName), so nothing but expectations prevents a second
    copy when the cache has not yet shown the first."""

    def __init__(self, api: client.ApiClient, namespace: str, *, copy_delay: float = 0.0,
                 use_expectations: bool = True, resync: float = 0.0) -> None:
        self._core = client.CoreV1Api(api)
        self.expectations = ControllerExpectations()
        self._use_expectations = use_expectations
        self.sources = SharedInformer(api, CONFIG_MAPS, namespace, label_selector=f"{SOURCE_LABEL}=source",
                                      resync_period=resync)
        copies_lister = CONFIG_MAPS.lister(api, namespace)
        self.copies = SharedInformer(None, _delayed(copies_lister, copy_delay) if copy_delay else copies_lister,
                                     label_selector=COPY_LABEL, name=f"copies-{namespace}")
        self.copies.add_indexer("owner", controller_uid_index)
        self.created = 0
        self.controller = Controller("copy", self.reconcile, workers=2, informers=[self.sources, self.copies])
        self.controller.watch(self.sources)
        owner_of = controller_owner_keys("ConfigMap")

        def copy_added(obj: Obj) -> None:
            # Count the creation off before waking the owner, or its reconcile could
            # still find the expectation unmet and nothing would wake it again.
            for key in owner_of(obj):
                self.expectations.creation_observed(key)
                self.controller.enqueue(key)

        self.copies.add_event_handler(on_add=copy_added,
                                      on_update=lambda old, new: [self.controller.enqueue(k) for k in owner_of(new)],
                                      on_delete=lambda obj: [self.controller.enqueue(k) for k in owner_of(obj)])

    def reconcile(self, key: str) -> None:
        source = self.sources.get(key)
        if source is None:
            self.expectations.delete_expectations(key)
            return  # its copies go with it (garbage collection through the owner reference)
        if self._use_expectations and not self.expectations.satisfied(key):
            return  # a copy we made is not in the cache yet; its arrival wakes us
        meta = source["metadata"]
        copies = self.copies.by_index("owner", meta["uid"])
        if not copies:
            self._create_copy(key, source)
            return
        for copy in copies:
            if (copy.get("data") or {}) != (source.get("data") or {}):
                call(self._core.patch_namespaced_config_map, copy["metadata"]["name"], meta["namespace"],
                     {"data": source.get("data") or {}}, _content_type=MERGE_PATCH)

    def _create_copy(self, key: str, source: Obj) -> None:
        meta = source["metadata"]
        body = {"metadata": {"generateName": f"{meta['name']}-copy-", "labels": {COPY_LABEL: meta["name"]},
                             "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": meta["name"],
                                                  "uid": meta["uid"], "controller": True}]},
                "data": source.get("data") or {}}
        self.expectations.expect_creations(key, 1)
        try:
            call(self._core.create_namespaced_config_map, meta["namespace"], body)
        except Exception:
            self.expectations.creation_observed(key)  # it will never be seen: do not wait for it
            raise
        self.created += 1


def _copies(core: client.CoreV1Api, namespace: str, source: str) -> list[Obj]:
    listed = call(core.list_namespaced_config_map, namespace, label_selector=f"{COPY_LABEL}={source}")
    return listed.get("items") or []


def _source(name: str, data: dict[str, str]) -> Obj:
    return {"metadata": {"name": name, "labels": {SOURCE_LABEL: "source"}}, "data": data}


@pytest.fixture
def running() -> Iterator[list[CopyController]]:
    started: list[CopyController] = []
    try:
        yield started
    finally:
        for toy in started:
            assert toy.controller.stop()


def test_the_toy_controller_copies_and_follows_changes(api: client.ApiClient, core: client.CoreV1Api,
                                                       namespace: str, running: list[CopyController]) -> None:
    call(core.create_namespaced_config_map, namespace, _source("one", {"a": "1"}))
    toy = CopyController(api, namespace)
    running.append(toy)
    toy.controller.start()
    call(core.create_namespaced_config_map, namespace, _source("two", {"b": "2"}))
    assert wait_until(lambda: [c["data"] for c in _copies(core, namespace, "one")] == [{"a": "1"}])
    assert wait_until(lambda: [c["data"] for c in _copies(core, namespace, "two")] == [{"b": "2"}])
    call(core.patch_namespaced_config_map, "one", namespace, {"data": {"a": "changed"}}, _content_type=MERGE_PATCH)
    assert wait_until(lambda: [c["data"] for c in _copies(core, namespace, "one")] == [{"a": "changed"}])
    # Someone edits the copy by hand: the controller puts it back.
    copy_name = _copies(core, namespace, "two")[0]["metadata"]["name"]
    call(core.patch_namespaced_config_map, copy_name, namespace, {"data": {"b": "tampered"}},
         _content_type=MERGE_PATCH)
    assert wait_until(lambda: [c["data"] for c in _copies(core, namespace, "two")] == [{"b": "2"}])
    assert toy.created == 2
    call(core.delete_namespaced_config_map, "one", namespace)
    assert wait_until(lambda: toy.sources.get(f"{namespace}/one") is None)
    assert wait_until(lambda: toy.expectations.pending(f"{namespace}/one") == (0, 0))


def test_expectations_prevent_a_second_copy_behind_a_slow_cache(api: client.ApiClient, core: client.CoreV1Api,
                                                                 namespace: str,
                                                                 running: list[CopyController]) -> None:
    # The copies' cache lags a second behind the server while the source is
    # reconciled every 50 ms (resync) and changed several times meanwhile.
    toy = CopyController(api, namespace, copy_delay=1.0, resync=0.05)
    running.append(toy)
    toy.controller.start()
    source = call(core.create_namespaced_config_map, namespace, _source("src", {"n": "0"}))
    key = object_key(source)
    assert wait_until(lambda: toy.created == 1, timeout=3)
    for n in range(1, 4):
        call(core.patch_namespaced_config_map, "src", namespace, {"data": {"n": str(n)}}, _content_type=MERGE_PATCH)
        time.sleep(0.1)
    assert toy.expectations.pending(key) == (1, 0)  # still waiting for the slow cache
    assert wait_until(lambda: [c["data"] for c in _copies(core, namespace, "src")] == [{"n": "3"}], timeout=5)
    time.sleep(0.3)  # a few more resyncs with the cache now current
    assert len(_copies(core, namespace, "src")) == 1
    assert toy.created == 1
    assert toy.expectations.satisfied(key)


def test_without_expectations_the_slow_cache_does_cause_duplicates(api: client.ApiClient, core: client.CoreV1Api,
                                                                   namespace: str,
                                                                   running: list[CopyController]) -> None:
    """The control for the test above: the delay really is long enough to fool a
    controller that does not keep expectations."""
    toy = CopyController(api, namespace, copy_delay=1.0, resync=0.05, use_expectations=False)
    running.append(toy)
    toy.controller.start()
    call(core.create_namespaced_config_map, namespace, _source("src", {"n": "0"}))
    assert wait_until(lambda: len(_copies(core, namespace, "src")) >= 2, timeout=3)
