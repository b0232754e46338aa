"""The "default" ServiceAccount in every namespace, as kube-controller-manager's
serviceaccount controller keeps it: pods that name no account run as this one."""

from __future__ import annotations

from typing import Any

from local_cluster.apiserver.service_accounts import DEFAULT_SERVICE_ACCOUNT
from local_cluster.controllers.per_namespace import PerNamespaceController

Obj = dict[str, Any]


class ServiceAccountsController(PerNamespaceController):
    name = "serviceaccount-controller"
    plural = "serviceaccounts"
    object_name = DEFAULT_SERVICE_ACCOUNT
    user = "system:serviceaccount:kube-system:service-account-controller"

    def desired(self, namespace: str) -> Obj:
        return {"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": namespace}}
