"""CRUD with kube-apiserver semantics, through the official client."""

from __future__ import annotations

import re

import pytest
from kubernetes import client

from tests.apiserver.conftest import raw


def _pod(name: str = "", generate: str = "", labels: dict | None = None) -> dict:
    meta: dict = {"labels": labels or {}}
    if name:
        meta["name"] = name
    if generate:
        meta["generateName"] = generate
    return {"metadata": meta, "spec": {"containers": [{"name": "main", "image": "busybox"}]}}


def test_default_namespaces_exist(api) -> None:
    names = {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


def test_create_sets_system_fields_and_defaults(api, namespace) -> None:
    core = client.CoreV1Api(api)
    pod = core.create_namespaced_pod(namespace, _pod(generate="web-"))
    assert re.fullmatch(r"web-[a-z0-9]{5}", pod.metadata.name)
    assert pod.metadata.uid and pod.metadata.creation_timestamp and pod.metadata.namespace == namespace
    assert int(pod.metadata.resource_version) > 0
    assert pod.status.phase == "Pending" and pod.spec.restart_policy == "Always"
    fetched = core.read_namespaced_pod(pod.metadata.name, namespace)
    assert fetched.metadata.resource_version == pod.metadata.resource_version


def test_already_exists_and_not_found_are_status_objects(api, namespace) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    with pytest.raises(client.ApiException) as exists:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}})
    assert exists.value.status == 409 and '"reason":"AlreadyExists"' in exists.value.body
    assert 'configmaps \\"cm\\" already exists' in exists.value.body
    with pytest.raises(client.ApiException) as missing:
        core.read_namespaced_config_map("nope", namespace)
    assert missing.value.status == 404 and '"reason":"NotFound"' in missing.value.body


def test_create_in_a_missing_namespace_is_404(api) -> None:
    with pytest.raises(client.ApiException) as error:
        client.CoreV1Api(api).create_namespaced_config_map("no-such-ns", {"metadata": {"name": "x"}})
    assert error.value.status == 404 and 'namespaces \\"no-such-ns\\" not found' in error.value.body


def test_update_is_guarded_by_resource_version(api, namespace) -> None:
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    stale = cm.metadata.resource_version
    cm.data = {"a": "2"}
    updated = core.replace_namespaced_config_map("cm", namespace, cm)
    assert int(updated.metadata.resource_version) > int(stale)
    cm.data = {"a": "3"}
    cm.metadata.resource_version = stale
    with pytest.raises(client.ApiException) as conflict:
        core.replace_namespaced_config_map("cm", namespace, cm)
    assert conflict.value.status == 409 and '"reason":"Conflict"' in conflict.value.body
    assert "the object has been modified" in conflict.value.body
    # Built-in kinds accept an unconditional update (no resourceVersion).
    cm.metadata.resource_version = None
    assert core.replace_namespaced_config_map("cm", namespace, cm).data == {"a": "3"}


def test_noop_update_keeps_the_resource_version(api, namespace) -> None:
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    same = core.replace_namespaced_config_map("cm", namespace, cm)
    assert same.metadata.resource_version == cm.metadata.resource_version


def test_patch_types(api, namespace) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, _pod("p", labels={"a": "1"}))
    # strategic merge (the typed client's default for dict bodies): containers merge by name
    patched = core.patch_namespaced_pod("p", namespace, {"metadata": {"labels": {"b": "2"}}, "spec": {
        "containers": [{"name": "main", "image": "busybox:2"}]}})
    assert patched.metadata.labels == {"a": "1", "b": "2"}
    assert [(c.name, c.image) for c in patched.spec.containers] == [("main", "busybox:2")]
    # JSON patch
    patched = core.patch_namespaced_pod("p", namespace, [{"op": "remove", "path": "/metadata/labels/a"}])
    assert patched.metadata.labels == {"b": "2"}
    # merge patch with null deleting a key
    status, body = raw(api, "PATCH", f"/api/v1/namespaces/{namespace}/pods/p",
                       {"metadata": {"labels": {"b": None, "c": "3"}}},
                       headers={"Content-Type": "application/merge-patch+json"})
    assert status == 200 and body["metadata"]["labels"] == {"c": "3"}
    # a failing JSON patch test op is a clear 422, not a 500
    status, body = raw(api, "PATCH", f"/api/v1/namespaces/{namespace}/pods/p",
                       [{"op": "test", "path": "/metadata/name", "value": "other"}],
                       headers={"Content-Type": "application/json-patch+json"})
    assert status == 422 and "test failed" in body["message"]


def test_invalid_pod_names_the_field(api, namespace) -> None:
    status, body = raw(api, "POST", f"/api/v1/namespaces/{namespace}/pods",
                       {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"},
                        "spec": {"containers": [{"name": "c"}]}})
    assert status == 422 and body["reason"] == "Invalid"
    fields = {cause["field"] for cause in body["details"]["causes"]}
    assert fields == {"metadata.name", "spec.containers[0].image"}


def test_malformed_bodies_are_400(api, namespace) -> None:
    status, body = raw(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps", "not an object")
    assert status == 400 and body["kind"] == "Status"
    status, body = raw(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps",
                       {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})
    assert status == 400 and "does not match" in body["message"]


def test_dry_run_stores_nothing(api, namespace) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "dry"}}, dry_run="All")
    assert created.metadata.uid
    with pytest.raises(client.ApiException):
        core.read_namespaced_config_map("dry", namespace)


def test_finalizers_hold_deletion_until_removed(api, namespace) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "held", "finalizers": ["example.com/x"]}})
    core.delete_namespaced_config_map("held", namespace)
    held = core.read_namespaced_config_map("held", namespace)
    assert held.metadata.deletion_timestamp is not None and held.metadata.finalizers == ["example.com/x"]
    core.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": None}})
    with pytest.raises(client.ApiException) as gone:
        core.read_namespaced_config_map("held", namespace)
    assert gone.value.status == 404


def test_delete_preconditions(api, namespace) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "pre"}})
    with pytest.raises(client.ApiException) as error:
        core.delete_namespaced_config_map("pre", namespace, body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid="not-the-uid")))
    assert error.value.status == 409 and "Precondition failed" in error.value.body


def test_bound_pod_is_deleted_gracefully(api, namespace) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, _pod("graceful"))
    core.create_namespaced_pod_binding("graceful", namespace, client.V1Binding(
        metadata=client.V1ObjectMeta(name="graceful"), target=client.V1ObjectReference(kind="Node", name="node01")),
        _preload_content=False)
    bound = core.read_namespaced_pod("graceful", namespace)
    assert bound.spec.node_name == "node01"
    assert any(c.type == "PodScheduled" and c.status == "True" for c in bound.status.conditions)
    core.delete_namespaced_pod("graceful", namespace, grace_period_seconds=30)
    pending = core.read_namespaced_pod("graceful", namespace)
    assert pending.metadata.deletion_timestamp and pending.metadata.deletion_grace_period_seconds == 30
    core.delete_namespaced_pod("graceful", namespace, grace_period_seconds=0)  # what the kubelet does
    with pytest.raises(client.ApiException):
        core.read_namespaced_pod("graceful", namespace)


def test_requests_without_the_token_are_refused(control_plane) -> None:
    api = control_plane.api_client()
    api.configuration.api_key = {}
    api.configuration.refresh_api_key_hook = None
    with pytest.raises(client.ApiException) as error:
        client.CoreV1Api(api).list_namespace()
    assert error.value.status == 401
    api.configuration.api_key = {"authorization": "Bearer wrong"}
    with pytest.raises(client.ApiException) as error:
        client.CoreV1Api(api).list_namespace()
    assert error.value.status == 401


def test_apps_defaults(api, namespace) -> None:
    apps = client.AppsV1Api(api)
    template = {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    deployment = apps.create_namespaced_deployment(namespace, {"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "d"}}, "template": template}})
    assert deployment.spec.replicas == 1 and deployment.spec.revision_history_limit == 10
    assert deployment.spec.strategy.type == "RollingUpdate"
    assert deployment.spec.strategy.rolling_update.max_surge == "25%"
    daemonset = apps.create_namespaced_daemon_set(namespace, {"metadata": {"name": "ds"}, "spec": {
        "selector": {"matchLabels": {"app": "d"}}, "template": template}})
    assert daemonset.spec.update_strategy.type == "RollingUpdate"
    assert daemonset.spec.update_strategy.rolling_update.max_unavailable == 1


def test_the_official_clients_slash_paths_answer(api) -> None:
    assert client.VersionApi(api).get_code().git_version
    assert "v1" in client.CoreApi(api).get_api_versions().versions
