"""What the migration validator needs to read from the cluster, as plain callables, so
tests pass dictionaries and production reads through the Kubernetes API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from kube_client.rawapi import call
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


@dataclass(frozen=True)
class Lookups:
    vmi: VMIGetter
    migrations: MigrationLister


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

    return Lookups(vmi=vmi, migrations=migrations)
