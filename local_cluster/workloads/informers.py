"""The caches the workload controllers share: one list+watch per kind, however many
controllers read it (the ReplicaSet, Deployment and DaemonSet controllers all read
pods; two of them read ReplicaSets).

Informers are made on first use, so a controller run on its own follows only the
kinds it needs. Every handler must be added before start(): kube_client's informers
tell a late subscriber about the cache as adds, but the controllers here count their
expectations off from the live stream and should see it from the beginning.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client

from kube_client.controller import SharedInformer, controller_uid_index
from kube_client.controller.resource import NODES, PODS, ListMethod, Resource

PODS_KIND, NODES_KIND = "pods", "nodes"
REPLICASETS_KIND, DEPLOYMENTS_KIND, DAEMONSETS_KIND = "replicasets", "deployments", "daemonsets"

REPLICASETS = Resource("apps", "v1", "replicasets")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
DAEMONSETS = Resource("apps", "v1", "daemonsets")

_RESOURCES = {PODS_KIND: PODS, NODES_KIND: NODES, REPLICASETS_KIND: REPLICASETS,
              DEPLOYMENTS_KIND: DEPLOYMENTS, DAEMONSETS_KIND: DAEMONSETS}

# Objects filed under the uid of the workload that manages them (controller ownerReference).
CONTROLLER_UID = "controller-uid"

# Informers keep a workload's objects in memory for the controllers' whole life; a watch
# re-established every five minutes is cheap and bounds how long a silently dead
# connection can go unnoticed.
_WATCH_SECONDS = 300


class WorkloadInformers:
    def __init__(self, api_client: client.ApiClient, *, namespace: str | None = None,
                 sources: Mapping[str, ListMethod] | None = None,
                 wrap: Callable[[str, ListMethod], ListMethod] | None = None) -> None:
        """namespace limits the namespaced kinds to one namespace (nodes are always all).
        sources replaces where a kind is listed and watched from; wrap interposes on every
        list and watch call of a kind (tests use it to make a watch lag behind)."""
        self._api_client = api_client
        self._namespace = namespace
        self._sources = dict(sources or {})
        self._wrap = wrap
        self._made: dict[str, SharedInformer] = {}
        self._started = False

    def _informer(self, kind: str) -> SharedInformer:
        informer = self._made.get(kind)
        if informer is not None:
            return informer
        if self._started:
            raise RuntimeError(f"the {kind} informer is needed after start(); make every controller first")
        resource = _RESOURCES[kind]
        method = self._sources.get(kind) or resource.lister(self._api_client,
                                                            self._namespace if resource.namespaced else None)
        if self._wrap is not None:
            method = self._wrap(kind, method)
        informer = SharedInformer(None, method, name=kind, watch_seconds=_WATCH_SECONDS)
        if kind in (PODS_KIND, REPLICASETS_KIND):
            informer.add_indexer(CONTROLLER_UID, controller_uid_index)
        self._made[kind] = informer
        return informer

    @property
    def pods(self) -> SharedInformer:
        return self._informer(PODS_KIND)

    @property
    def nodes(self) -> SharedInformer:
        return self._informer(NODES_KIND)

    @property
    def replicasets(self) -> SharedInformer:
        return self._informer(REPLICASETS_KIND)

    @property
    def deployments(self) -> SharedInformer:
        return self._informer(DEPLOYMENTS_KIND)

    @property
    def daemonsets(self) -> SharedInformer:
        return self._informer(DAEMONSETS_KIND)

    def made(self) -> list[SharedInformer]:
        return list(self._made.values())

    def start(self) -> None:
        self._started = True
        for informer in self._made.values():
            informer.start()

    def wait_for_sync(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(i.wait_for_sync(max(0.0, deadline - time.monotonic())) for i in self._made.values())

    def stop(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        stopped = True
        for informer in self._made.values():
            stopped = informer.stop(max(0.0, deadline - time.monotonic())) and stopped
        return stopped


def by_controller(informer: SharedInformer, owner_uid: str) -> list[Any]:
    """The cached objects whose controller ownerReference is owner_uid."""
    return informer.by_index(CONTROLLER_UID, owner_uid)
