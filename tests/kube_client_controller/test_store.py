"""The indexed store alone: indexes follow every write, late indexes cover what is held."""

from __future__ import annotations

import pytest

from kube_client.controller.store import (IndexedStore, controller_uid_index, label_index, node_name_index,
                                          owner_uid_index)


def _obj(name: str, namespace: str = "ns", labels: dict | None = None, owners: list | None = None,
         spec: dict | None = None, status: dict | None = None) -> dict:
    meta: dict = {"name": name, "namespace": namespace, "labels": labels or {}}
    if owners:
        meta["ownerReferences"] = owners
    return {"metadata": meta, "spec": spec or {}, "status": status or {}}


def test_indexes_follow_puts_and_removes() -> None:
    store = IndexedStore()
    store.add_index("app", label_index("app"))
    store.put(_obj("a", labels={"app": "web"}))
    store.put(_obj("b", labels={"app": "web"}))
    store.put(_obj("c", namespace="other", labels={"app": "db"}))
    assert [o["metadata"]["name"] for o in store.by_index("app", "web")] == ["a", "b"]
    store.put(_obj("a", labels={"app": "db"}))
    assert store.index_keys("app", "web") == ["ns/b"]
    assert store.index_keys("app", "db") == ["ns/a", "other/c"]
    store.remove(_obj("c", namespace="other"))
    assert store.index_keys("app", "db") == ["ns/a"]
    assert [o["metadata"]["name"] for o in store.list("ns")] == ["a", "b"]
    assert store.list("other") == []
    assert len(store) == 2
    assert store.by_index("app", "nothing") == []
    with pytest.raises(KeyError):
        store.by_index("missing", "x")


def test_a_late_index_covers_existing_objects_and_names_are_unique() -> None:
    store = IndexedStore()
    store.put(_obj("p", spec={"nodeName": "node-1"}))
    store.put(_obj("v", status={"nodeName": "node-1"}))
    store.put(_obj("q"))
    store.add_index("node", node_name_index)
    assert store.index_keys("node", "node-1") == ["ns/p", "ns/v"]
    with pytest.raises(ValueError):
        store.add_index("node", node_name_index)


def test_owner_indexes_file_an_object_under_every_owner() -> None:
    store = IndexedStore()
    store.add_index("owner", owner_uid_index)
    store.add_index("controller", controller_uid_index)
    store.put(_obj("pod", owners=[{"uid": "u-vmi", "controller": True, "kind": "VirtualMachineInstance"},
                                  {"uid": "u-other", "kind": "Thing"}]))
    assert store.index_keys("owner", "u-vmi") == ["ns/pod"]
    assert store.index_keys("owner", "u-other") == ["ns/pod"]
    assert store.index_keys("controller", "u-other") == []
    assert store.index_keys("controller", "u-vmi") == ["ns/pod"]


def test_a_failing_index_function_does_not_keep_an_object_out() -> None:
    store = IndexedStore()
    store.add_index("broken", lambda obj: [obj["spec"]["missing"]])
    store.put(_obj("a"))
    assert store.get("ns/a") is not None
    assert store.index_keys("broken", "x") == []
