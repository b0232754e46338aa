"""Helpers for the provisioner tests: claims in a private namespace, and waiting for outcomes."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from kube_client.rawapi import call, status_code
from tests.wait import eventually as wait_for

Obj = dict[str, Any]



class Claims:
    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self.core = core
        self.namespace = namespace

    def create(self, name: str, size: str = "1Gi", *, storage_class: str | None = None, block: bool = False,
               access_modes: list[str] | None = None, volume_name: str | None = None) -> Obj:
        spec: Obj = {"accessModes": access_modes or ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": size}}}
        if storage_class is not None:
            spec["storageClassName"] = storage_class
        if block:
            spec["volumeMode"] = "Block"
        if volume_name:
            spec["volumeName"] = volume_name
        body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}
        return call(self.core.create_namespaced_persistent_volume_claim, self.namespace, body)

    def get(self, name: str) -> Obj:
        return call(self.core.read_namespaced_persistent_volume_claim, name, self.namespace)

    def wait_bound(self, name: str, timeout: float = 10.0) -> Obj:
        def bound() -> Obj:
            claim = self.get(name)
            return claim if (claim.get("status") or {}).get("phase") == "Bound" else {}
        return wait_for(bound, timeout, f"claim {name} to be bound")

    def delete(self, name: str) -> None:
        call(self.core.delete_namespaced_persistent_volume_claim, name, self.namespace)

    def volume(self, name: str) -> Obj | None:
        try:
            return call(self.core.read_persistent_volume, name)
        except client.ApiException as error:
            if status_code(error) == 404:
                return None
            raise

    def events(self, name: str) -> list[Obj]:
        listed = call(self.core.list_namespaced_event, self.namespace)
        return [e for e in listed.get("items") or [] if (e.get("involvedObject") or {}).get("name") == name]

    def our_volumes(self) -> list[Obj]:
        listed = call(self.core.list_persistent_volume)
        return [v for v in listed.get("items") or []
                if ((v.get("spec") or {}).get("claimRef") or {}).get("namespace") == self.namespace]
