"""What the checks that look at the cluster need from it (the migration validator reads,
the launcher eviction check reads and marks), as plain callables, so tests pass
dictionaries and production goes through the Kubernetes API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from kube_client.rawapi import MERGE_PATCH, call
from kubevirt_api.groups import GROUP, MIGRATION, VERSION, VIRTUAL_MACHINE_INSTANCE
from virt_api.admission.migration_mutation import MIGRATION_SELECTOR_LABEL

Obj = dict[str, Any]

# kube-apiserver waits 10 s for a webhook by default; a lookup must fail well before that
# so the answer is ours ("cannot read the VMI"), not the API server's timeout.
LOOKUP_TIMEOUT = (2.0, 5.0)

# (namespace, name) -> the VMI, or None when it does not exist. Other failures raise.
VMIGetter = Callable[[str, str], Obj | None]
# (namespace, VMI name) -> the migrations labelled as migrating that VMI.
MigrationLister = Callable[[str, str], list[Obj]]
# (namespace, name) -> the pod, or None when it does not exist. Other failures raise.
PodGetter = Callable[[str, str], Obj | None]
# (namespace, VMI name, node, dry run): set the VMI's status.evacuationNodeName.
EvacuationMarker = Callable[[str, str, str, bool], None]


def _no_pod(_namespace: str, _name: str) -> Obj | None:
    return None


def _cannot_mark(namespace: str, name: str, _node: str, _dry_run: bool) -> None:
    raise RuntimeError(f"no way to mark VMI {namespace}/{name} here")


@dataclass(frozen=True)
class Lookups:
    vmi: VMIGetter
    migrations: MigrationLister
    pod: PodGetter = _no_pod
    mark_evacuation: EvacuationMarker = _cannot_mark


def kubernetes_lookups(api: client.ApiClient) -> Lookups:
    custom = client.CustomObjectsApi(api)

    def vmi(namespace: str, name: str) -> Obj | None:
        try:
            return call(custom.get_namespaced_custom_object, GROUP, VERSION, namespace,
                        VIRTUAL_MACHINE_INSTANCE.plural, name, _request_timeout=LOOKUP_TIMEOUT)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def migrations(namespace: str, vmi_name: str) -> list[Obj]:
        listed = call(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, MIGRATION.plural,
                      label_selector=f"{MIGRATION_SELECTOR_LABEL}={vmi_name}", _request_timeout=LOOKUP_TIMEOUT)
        return list(listed.get("items") or [])

    core = client.CoreV1Api(api)

    def pod(namespace: str, name: str) -> Obj | None:
        try:
            return call(core.read_namespaced_pod, name, namespace, _request_timeout=LOOKUP_TIMEOUT)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def mark_evacuation(namespace: str, name: str, node: str, dry_run: bool) -> None:
        extra = {"dry_run": "All"} if dry_run else {}
        call(custom.patch_namespaced_custom_object_status, GROUP, VERSION, namespace,
             VIRTUAL_MACHINE_INSTANCE.plural, name, {"status": {"evacuationNodeName": node}},
             _content_type=MERGE_PATCH, _request_timeout=LOOKUP_TIMEOUT, **extra)

    return Lookups(vmi=vmi, migrations=migrations, pod=pod, mark_evacuation=mark_evacuation)
