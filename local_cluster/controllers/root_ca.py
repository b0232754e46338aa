"""The kube-root-ca.crt ConfigMap in every namespace, as kube-controller-manager's root CA
publisher keeps it: in-cluster clients verify the API server with its ca.crt."""

from __future__ import annotations

from typing import Any

from local_cluster.apiserver.service_accounts import ROOT_CA_CONFIG_MAP, ROOT_CA_KEY
from local_cluster.controllers.per_namespace import PerNamespaceController

Obj = dict[str, Any]

DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


class RootCAPublisher(PerNamespaceController):
    name = "root-ca-cert-publisher"
    plural = "configmaps"
    object_name = ROOT_CA_CONFIG_MAP
    user = "system:serviceaccount:kube-system:root-ca-cert-publisher"

    def __init__(self, apiserver: Any, ca_pem: str) -> None:
        super().__init__(apiserver)
        self._ca_pem = ca_pem

    def desired(self, namespace: str) -> Obj:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIG_MAP, "namespace": namespace,
                             "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                "data": {ROOT_CA_KEY: self._ca_pem}}

    def drifted(self, current: Obj) -> Obj | None:
        # As upstream, the publisher owns the whole of data and its description; anything
        # else written there is put back, so consumers never see a bundle they cannot trust.
        meta = current.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        if current.get("data") == {ROOT_CA_KEY: self._ca_pem} and annotations.get(DESCRIPTION_ANNOTATION):
            return None
        return {**current, "metadata": {**meta, "annotations": {**annotations, DESCRIPTION_ANNOTATION: DESCRIPTION}},
                "data": {ROOT_CA_KEY: self._ca_pem}}
