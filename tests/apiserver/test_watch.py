"""Watch: resumption from a resourceVersion, bookmarks, selectors, 410 after compaction."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, watch

from local_cluster.apiserver.service_accounts import ROOT_CA_CONFIG_MAP
from tests.apiserver.conftest import raw


def _events(api, namespace: str, **kwargs) -> list[tuple[str, str, str]]:
    stream = watch.Watch().stream(client.CoreV1Api(api).list_namespaced_config_map, namespace, timeout_seconds=1,
                                  **kwargs)
    # Every namespace also holds the cluster's kube-root-ca.crt, published whenever it lands.
    return [(e["type"], e["object"].metadata.name, e["raw_object"]["metadata"]["resourceVersion"]) for e in stream
            if e["object"].metadata.name != ROOT_CA_CONFIG_MAP]


def _ours(config_maps) -> list[str]:
    return [c.metadata.name for c in config_maps if c.metadata.name != ROOT_CA_CONFIG_MAP]


def test_watch_without_version_lists_then_follows(api, namespace) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    assert [(t, n) for t, n, _ in _events(api, namespace)] == [("ADDED", "a")]


def test_watch_resumes_from_a_resource_version(api, namespace) -> None:
    core = client.CoreV1Api(api)
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    core.patch_namespaced_config_map("a", namespace, {"data": {"k": "v"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})
    core.delete_namespaced_config_map("a", namespace)
    events = _events(api, namespace, resource_version=first.metadata.resource_version)
    assert [(t, n) for t, n, _ in events] == [("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    versions = [int(rv) for _, _, rv in events]
    assert versions == sorted(versions) and versions[0] > int(first.metadata.resource_version)
    # Resuming from the middle replays only what came after.
    later = _events(api, namespace, resource_version=events[1][2])
    assert [(t, n) for t, n, _ in later] == [("DELETED", "a")]


def test_label_selector_watch_sees_objects_leave_and_enter(api, namespace) -> None:
    core = client.CoreV1Api(api)
    start = core.create_namespaced_config_map(namespace, {"metadata": {"name": "a", "labels": {"app": "x"}}})
    core.patch_namespaced_config_map("a", namespace, {"metadata": {"labels": {"app": "y"}}})
    core.patch_namespaced_config_map("a", namespace, {"metadata": {"labels": {"app": "x"}}})
    events = _events(api, namespace, resource_version=start.metadata.resource_version, label_selector="app=x")
    assert [(t, n) for t, n, _ in events] == [("DELETED", "a"), ("ADDED", "a")]


def test_bookmarks_carry_the_current_version(api, namespace) -> None:
    status, listed = raw(api, "GET", f"/api/v1/namespaces/{namespace}/configmaps")
    response = api.call_api("GET", api.configuration.host + f"/api/v1/namespaces/{namespace}/configmaps?watch=1"
                            f"&allowWatchBookmarks=true&timeoutSeconds=3&resourceVersion="
                            f"{listed['metadata']['resourceVersion']}",
                            header_params={"Authorization": api.configuration.auth_settings()["BearerToken"]["value"]})
    lines = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    bookmarks = [e for e in lines if e["type"] == "BOOKMARK"]
    assert bookmarks, lines
    assert int(bookmarks[-1]["object"]["metadata"]["resourceVersion"]) >= int(listed["metadata"]["resourceVersion"])
    assert bookmarks[-1]["object"]["kind"] == "ConfigMap"


def test_watch_from_a_compacted_version_is_410(control_plane, api, namespace) -> None:
    core = client.CoreV1Api(api)
    old = core.create_namespaced_config_map(namespace, {"metadata": {"name": "old"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "new"}})
    latest = core.create_namespaced_config_map(namespace, {"metadata": {"name": "newer"}})
    control_plane.call(control_plane.plane.store.compact(int(latest.metadata.resource_version)))
    with pytest.raises(client.ApiException) as gone:
        _events(api, namespace, resource_version=old.metadata.resource_version)
    assert gone.value.status == 410
    status, body = raw(api, "GET", f"/api/v1/namespaces/{namespace}/configmaps",
                       query=[("resourceVersion", old.metadata.resource_version), ("resourceVersionMatch", "Exact")])
    assert status == 410 and body["reason"] == "Expired"


def test_field_selectors_on_pods(api, namespace) -> None:
    core = client.CoreV1Api(api)
    for name, node in (("p1", "node01"), ("p2", "node02"), ("p3", "")):
        spec = {"containers": [{"name": "c", "image": "i"}]}
        if node:
            spec["nodeName"] = node
        core.create_namespaced_pod(namespace, {"metadata": {"name": name}, "spec": spec})
    names = lambda **kw: sorted(p.metadata.name for p in core.list_namespaced_pod(namespace, **kw).items)
    assert names(field_selector="spec.nodeName=node01") == ["p1"]
    assert names(field_selector="spec.nodeName=") == ["p3"]
    assert names(field_selector="spec.nodeName!=node01,status.phase=Pending") == ["p2", "p3"]
    assert names(field_selector="metadata.name=p2") == ["p2"]
    with pytest.raises(client.ApiException) as error:
        core.list_namespaced_pod(namespace, field_selector="spec.bogus=1")
    assert error.value.status == 400 and "not a known field selector" in error.value.body


def test_label_selectors(api, namespace) -> None:
    core = client.CoreV1Api(api)
    for name, labels in (("a", {"env": "prod", "tier": "web"}), ("b", {"env": "dev"}), ("c", {})):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": labels}})
    names = lambda sel: sorted(_ours(core.list_namespaced_config_map(namespace, label_selector=sel).items))
    assert names("env=prod") == ["a"]
    assert names("env!=prod") == ["b", "c"]
    assert names("env in (prod,dev)") == ["a", "b"]
    assert names("env notin (prod)") == ["b", "c"]
    assert names("tier") == ["a"]
    assert names("!tier") == ["b", "c"]
    assert names("env=prod,tier=web") == ["a"]
    with pytest.raises(client.ApiException) as error:
        core.list_namespaced_config_map(namespace, label_selector="env in prod")
    assert error.value.status == 400


def test_pagination_is_consistent(api, namespace) -> None:
    core = client.CoreV1Api(api)
    for i in range(7):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"cm{i}"}})
    page = core.list_namespaced_config_map(namespace, limit=3)
    seen = _ours(page.items)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm9"}})  # after the snapshot
    while page.metadata._continue:
        page = core.list_namespaced_config_map(namespace, limit=3, _continue=page.metadata._continue)
        seen += _ours(page.items)
    assert seen == [f"cm{i}" for i in range(7)]
