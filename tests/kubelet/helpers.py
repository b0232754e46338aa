"""Helpers for the pod runtime tests: pod manifests, bounded waits, and a node
state directory with the runtimes opened over it."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

from local_cluster.kubelet.backoff import BackoffPolicy
from local_cluster.kubelet.proc import ProcessIdentity
from local_cluster.kubelet.runtime import NodeConfig, PodRuntime

COMPONENT_IMAGE = "quay.io/kubevirt-py/virt-launcher:v0.1.0"



def make_pod(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    for container in containers + spec.get("initContainers", []):
        container.setdefault("image", COMPONENT_IMAGE)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4()), "labels": {"app": name}},
        "spec": {"nodeName": "node-1", "containers": containers, **spec},
    }


def shell(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "command": ["/bin/sh", "-c", script], **extra}


class Node:
    """One simulated node's state directory and the runtimes opened over it."""

    def __init__(self, root: Path, image_store: Path) -> None:
        self.root = root
        self.image_store = image_store
        # Pod IPs are only unique per node index; a random one keeps concurrent
        # test runs on one machine from handing out the same loopback addresses.
        self.index = random.randint(100, 254)
        self.runtimes: list[PodRuntime] = []
        self.statuses: list[tuple[str, dict[str, Any]]] = []

    def runtime(self, **overrides: Any) -> PodRuntime:
        settings: dict[str, Any] = {
            "root": self.root,
            "node_name": "node-1",
            "node_index": self.index,
            "image_store": self.image_store,
            "backoff": BackoffPolicy(initial=0.3, cap=1.0, reset_after=600.0),
            "poll_interval": 0.03,
            "retry_interval": 0.2,
            "kill_timeout": 2.0,
        }
        settings.update(overrides)
        runtime = PodRuntime(NodeConfig(**settings), on_status=lambda uid, s: self.statuses.append((uid, s)))
        self.runtimes.append(runtime)
        return runtime

    def identities(self) -> list[ProcessIdentity]:
        found = []
        for name in ("shim.json", "started.json"):
            for path in self.root.glob(f"pods/*/containers/*/*/{name}"):
                value = json.loads(path.read_text())
                found.append(ProcessIdentity(value["pid"], value["startTicks"]))
        return found
