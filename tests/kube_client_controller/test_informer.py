"""SharedInformer against the real API server, with ConfigMaps."""

from __future__ import annotations

import functools
import time
import uuid

from kubernetes import client

from kube_client.controller.informer import SharedInformer
from kube_client.controller.resource import CONFIG_MAPS, NODES, Resource
from kube_client.controller.store import label_index, owner_uid_index
from kube_client.rawapi import MERGE_PATCH, call

from .helpers import Recorder, name_of, wait_until


OURS = {"informer-test": "true"}
OURS_SELECTOR = "informer-test=true"


def _config_map(name: str, data: dict | None = None, labels: dict | None = None, owner: dict | None = None) -> dict:
    # Every test object carries OURS, so informers can ignore what the cluster itself puts
    # in a namespace (the kube-root-ca.crt ConfigMap).
    meta: dict = {"name": name, "labels": {**OURS, **(labels or {})}}
    if owner:
        # A real owner: the garbage collector removes dependents of owners that do not exist.
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"]}]
    return {"metadata": meta, "data": data or {}}


def _names(objs: list[dict]) -> list[str]:
    return sorted(name_of(obj) for obj in objs)


def test_adds_updates_and_deletes_reach_every_subscriber(api: client.ApiClient, core: client.CoreV1Api,
                                                          namespace: str) -> None:
    call(core.create_namespaced_config_map, namespace, _config_map("before", {"v": "0"}))
    informer = SharedInformer(api, CONFIG_MAPS, namespace, label_selector=OURS_SELECTOR)
    first, second = Recorder(), Recorder()
    for recorder in (first, second):
        informer.add_event_handler(on_add=recorder.on_add, on_update=recorder.on_update,
                                   on_delete=recorder.on_delete)
    # A failing subscriber must not keep the others from being told.
    informer.add_event_handler(on_add=lambda obj: 1 / 0, on_update=lambda old, new: 1 / 0)
    assert not informer.has_synced()
    informer.start()
    try:
        assert informer.wait_for_sync(5)
        # Synced means the first list is in the cache and was delivered.
        assert informer.get(f"{namespace}/before")["data"] == {"v": "0"}
        assert first.snapshot() == [("add", "before", None, {"v": "0"})]

        call(core.create_namespaced_config_map, namespace, _config_map("b", {"v": "1"}))
        call(core.patch_namespaced_config_map, "before", namespace, {"data": {"v": "2"}},
             _content_type=MERGE_PATCH)
        call(core.delete_namespaced_config_map, "b", namespace)
        expected = [("add", "before", None, {"v": "0"}), ("add", "b", None, {"v": "1"}),
                    ("update", "before", {"v": "0"}, {"v": "2"}), ("delete", "b", {"v": "1"}, None)]
        assert first.wait_for(lambda events: len(events) >= 4)
        assert second.wait_for(lambda events: len(events) >= 4)
        assert first.snapshot() == expected
        assert second.snapshot() == expected
        assert informer.get(f"{namespace}/b") is None
        assert _names(informer.list()) == ["before"]
        assert _names(informer.list(namespace)) == ["before"]
        assert informer.list("elsewhere") == []
        assert informer.keys() == [f"{namespace}/before"]
    finally:
        informer.stop()


def test_indexers_follow_label_and_owner_changes(api: client.ApiClient, core: client.CoreV1Api,
                                                 namespace: str) -> None:
    informer = SharedInformer(api, CONFIG_MAPS, namespace)
    informer.add_indexer("app", label_index("app"))
    one = call(core.create_namespaced_config_map, namespace, _config_map("owner-1"))
    two = call(core.create_namespaced_config_map, namespace, _config_map("owner-2"))
    u1, u2 = one["metadata"]["uid"], two["metadata"]["uid"]
    call(core.create_namespaced_config_map, namespace, _config_map("web-1", labels={"app": "web"}, owner=one))
    call(core.create_namespaced_config_map, namespace, _config_map("web-2", labels={"app": "web"}, owner=two))
    call(core.create_namespaced_config_map, namespace, _config_map("db-1", labels={"app": "db"}, owner=one))
    informer.start()
    try:
        assert informer.wait_for_sync(5)
        assert _names(informer.by_index("app", "web")) == ["web-1", "web-2"]
        # An index added after the cache filled covers what it already holds.
        informer.add_indexer("owner", owner_uid_index)
        assert _names(informer.by_index("owner", u1)) == ["db-1", "web-1"]

        call(core.patch_namespaced_config_map, "web-2", namespace, {"metadata": {"labels": {"app": "db"}}},
             _content_type=MERGE_PATCH)
        call(core.delete_namespaced_config_map, "db-1", namespace)
        assert wait_until(lambda: _names(informer.by_index("app", "db")) == ["web-2"])
        assert _names(informer.by_index("app", "web")) == ["web-1"]
        assert _names(informer.by_index("owner", u1)) == ["web-1"]
        assert informer.index_keys("owner", u2) == [f"{namespace}/web-2"]
    finally:
        informer.stop()


def test_resync_redelivers_every_cached_object(api: client.ApiClient, core: client.CoreV1Api,
                                               namespace: str) -> None:
    for name in ("a", "b"):
        call(core.create_namespaced_config_map, namespace, _config_map(name, {"n": name}))
    resyncing = SharedInformer(api, CONFIG_MAPS, namespace, resync_period=0.2)
    quiet = SharedInformer(api, CONFIG_MAPS, namespace)
    resynced, unchanged = Recorder(), Recorder()
    resyncing.add_event_handler(on_update=resynced.on_update)
    quiet.add_event_handler(on_update=unchanged.on_update)
    resyncing.start()
    quiet.start()
    try:
        assert resyncing.wait_for_sync(5) and quiet.wait_for_sync(5)

        def rounds(events: list) -> int:
            return min(sum(1 for e in events if e[1] == name) for name in ("a", "b"))

        assert resynced.wait_for(lambda events: rounds(events) >= 2, timeout=3)
        # A resync is an update whose old and new are the same object.
        assert all(kind == "update" and old == new for kind, _, old, new in resynced.snapshot())
        assert unchanged.snapshot() == []
    finally:
        resyncing.stop()
        quiet.stop()


def test_a_late_subscriber_is_told_of_cached_objects_as_adds(api: client.ApiClient, core: client.CoreV1Api,
                                                             namespace: str) -> None:
    call(core.create_namespaced_config_map, namespace, _config_map("x"))
    call(core.create_namespaced_config_map, namespace, _config_map("y"))
    informer = SharedInformer(api, CONFIG_MAPS, namespace, label_selector=OURS_SELECTOR)
    informer.start()
    try:
        assert informer.wait_for_sync(5)
        late = Recorder()
        handler = informer.add_event_handler(on_add=late.on_add, on_update=late.on_update)
        assert sorted(e[1] for e in late.snapshot()) == ["x", "y"]
        assert {e[0] for e in late.snapshot()} == {"add"}
        informer.remove_event_handler(handler)
        call(core.create_namespaced_config_map, namespace, _config_map("z"))
        assert wait_until(lambda: informer.get(f"{namespace}/z") is not None)
        assert len(late.snapshot()) == 2
    finally:
        informer.stop()


def test_selectors_and_bound_list_methods(api: client.ApiClient, core: client.CoreV1Api, namespace: str) -> None:
    tag = uuid.uuid4().hex[:8]
    call(core.create_namespaced_config_map, namespace, _config_map("tagged", labels={"tag": tag}))
    call(core.create_namespaced_config_map, namespace, _config_map("plain"))
    # Across all namespaces, narrowed by a label selector.
    by_label = SharedInformer(api, CONFIG_MAPS, label_selector=f"tag={tag}")
    # A generated-client method bound to its namespace, narrowed by a field selector.
    by_field = SharedInformer(None, functools.partial(core.list_namespaced_config_map, namespace),
                              field_selector="metadata.name=plain", name="plain-only")
    cluster_scoped = SharedInformer(api, NODES)
    informers = [by_label, by_field, cluster_scoped]
    for informer in informers:
        informer.start()
    try:
        assert all(informer.wait_for_sync(5) for informer in informers)
        assert _names(by_label.list()) == ["tagged"]
        assert _names(by_field.list()) == ["plain"]
        call(core.create_namespaced_config_map, namespace, _config_map("later", labels={"tag": tag}))
        assert wait_until(lambda: _names(by_label.list()) == ["later", "tagged"])
        assert _names(by_field.list()) == ["plain"]
        assert all("namespace" not in obj["metadata"] for obj in cluster_scoped.list())
    finally:
        for informer in informers:
            informer.stop()


def test_stop_is_prompt_and_a_missing_kind_never_syncs(api: client.ApiClient) -> None:
    informer = SharedInformer(api, CONFIG_MAPS, resync_period=30)
    missing = SharedInformer(api, Resource("nothing.example.com", "v1", "widgets"))
    informer.start()
    missing.start()
    try:
        assert informer.wait_for_sync(5)
        assert not missing.wait_for_sync(0.3)
    finally:
        started = time.monotonic()
        assert informer.stop()
        assert missing.stop()
        assert time.monotonic() - started < 1.0
