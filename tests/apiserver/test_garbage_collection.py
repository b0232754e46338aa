"""Owner references: background, foreground and orphan deletion; namespace deletion."""

from __future__ import annotations

from kubernetes import client

from tests.apiserver.conftest import raw
from tests.wait import eventually


def _owned(core, namespace: str, name: str, owner) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid,
        "blockOwnerDeletion": True}]}})


def _exists(core, namespace: str, name: str) -> bool:
    try:
        core.read_namespaced_config_map(name, namespace)
        return True
    except client.ApiException as error:
        assert error.status == 404
        return False


def test_background_deletion_collects_dependents(api, namespace) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    _owned(core, namespace, "child", owner)
    child = core.read_namespaced_config_map("child", namespace)
    _owned(core, namespace, "grandchild", child)
    core.delete_namespaced_config_map("owner", namespace)
    eventually(lambda: not _exists(core, namespace, "child") and not _exists(core, namespace, "grandchild"))


def test_dependent_of_a_missing_owner_is_collected(api, namespace) -> None:
    core = client.CoreV1Api(api)
    ghost = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="ghost", uid="00000000-0000-0000-0000-000000000000"))
    _owned(core, namespace, "stray", ghost)
    eventually(lambda: not _exists(core, namespace, "stray"))


def test_foreground_deletion_waits_for_dependents(api, namespace) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    _owned(core, namespace, "child", owner)
    # The child's own finalizer holds it, so the owner must wait in foreground deletion.
    core.patch_namespaced_config_map("child", namespace, {"metadata": {"finalizers": ["example.com/hold"]}})
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Foreground")
    waiting = eventually(lambda: (lambda o: o if "foregroundDeletion" in (o.metadata.finalizers or []) and
                                  o.metadata.deletion_timestamp else None)(
        core.read_namespaced_config_map("owner", namespace)))
    assert waiting
    eventually(lambda: core.read_namespaced_config_map("child", namespace).metadata.deletion_timestamp)
    assert _exists(core, namespace, "owner")
    core.patch_namespaced_config_map("child", namespace, {"metadata": {"finalizers": None}})
    eventually(lambda: not _exists(core, namespace, "child") and not _exists(core, namespace, "owner"))


def test_orphan_deletion_keeps_dependents(api, namespace) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    _owned(core, namespace, "child", owner)
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Orphan")
    eventually(lambda: not _exists(core, namespace, "owner"))
    child = core.read_namespaced_config_map("child", namespace)
    assert not child.metadata.owner_references


def test_deleting_a_namespace_deletes_its_content(api) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "a"}})
    core.create_namespaced_secret("doomed", {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    core.delete_namespace("doomed")
    terminating = core.read_namespace("doomed")
    assert terminating.status.phase == "Terminating" or terminating is None
    status, body = raw(api, "POST", "/api/v1/namespaces/doomed/configmaps",
                       {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}})
    assert status in (403, 404)

    def gone() -> bool:
        try:
            core.read_namespace("doomed")
            return False
        except client.ApiException as error:
            return error.status == 404
    eventually(gone)
    assert core.list_namespaced_config_map("doomed").items == []
