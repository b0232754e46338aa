"""The "local" StorageClass: the cluster's default class, served by this provisioner."""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client

from kube_client.rawapi import call, status_code

Obj = dict[str, Any]
log = logging.getLogger(__name__)

CLASS_NAME = "local"
PROVISIONER_NAME = "kubevirt-py/local-path"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def storage_class() -> Obj:
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": CLASS_NAME, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": PROVISIONER_NAME,
        "reclaimPolicy": "Delete",
        # The data is on the one disk every local node shares: no reason to wait for a pod.
        "volumeBindingMode": "Immediate",
    }


def ensure_storage_class(storage: client.StorageV1Api) -> bool:
    """Create the class unless it exists (an existing one is left as its owner made it); True if created."""
    try:
        call(storage.read_storage_class, CLASS_NAME)
        return False
    except client.ApiException as error:
        if status_code(error) != 404:
            raise
    try:
        call(storage.create_storage_class, storage_class())
    except client.ApiException as error:
        if status_code(error) == 409:  # created by someone else in between
            return False
        raise
    log.info("created StorageClass %s", CLASS_NAME)
    return True
