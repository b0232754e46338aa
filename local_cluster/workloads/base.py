"""What the three workload controllers have in common: API clients, events, the
kube_client Controller that runs their reconcile loop, and the informers they read.

A controller given no informers makes its own and runs them itself; one given shared
informers (WorkloadControllers does that) leaves starting and stopping them to their
owner. Either way a worker acts only once every cache it reads has been listed in
full, since a half-filled cache looks like missing pods.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from kubernetes import client

from kube_client.controller import Controller, SharedInformer
from kube_client.rawapi import call, status_code
from kube_client.recorder import EventRecorder
from local_cluster.workloads.informers import WorkloadInformers
from local_cluster.workloads.pod_state import meta

Obj = dict[str, Any]
log = logging.getLogger(__name__)

APPS_V1 = "apps/v1"


class WorkloadController:
    def __init__(self, name: str, api_client: client.ApiClient, informers: WorkloadInformers | None) -> None:
        self.name = name
        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._recorder = EventRecorder(api_client, f"{name}-controller")
        self._owns_informers = informers is None
        self.informers = informers or WorkloadInformers(api_client)
        self._controller: Controller | None = None

    def _make_controller(self, reconcile: Callable[[str], float | None], workers: int) -> Controller:
        """Called once the informers this controller reads exist (they are made on first use)."""
        owned = self.informers.made() if self._owns_informers else ()
        self._controller = Controller(self.name, reconcile, workers=workers, informers=owned)
        return self._controller

    @property
    def controller(self) -> Controller:
        if self._controller is None:
            raise RuntimeError(f"{self.name}: the controller was not made")
        return self._controller

    def _reads(self, informer: SharedInformer) -> None:
        """Declare a cache this controller reads but takes no keys from directly (its
        own handlers do), so the workers still wait for it to be listed."""
        self.controller.watch(informer, keys=lambda obj: ())

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self.controller.start()

    def stop(self, timeout: float = 5.0) -> bool:
        return self.controller.stop(timeout)

    def has_synced(self) -> bool:
        return self.controller.has_synced()

    def enqueue(self, key: str) -> None:
        self.controller.enqueue(key)

    # --- writes shared by all three -----------------------------------------------------

    def _event(self, kind: str, obj: Obj, event_type: str, reason: str, message: str) -> None:
        api_version = APPS_V1 if kind in ("ReplicaSet", "Deployment", "DaemonSet") else "v1"
        self._recorder.record(kind, {**obj, "apiVersion": api_version}, event_type, reason, message)

    def _still_adoptable(self, read: Callable[..., Any], owner: Obj) -> Callable[[], bool]:
        """Whether owner may still adopt, asked of the API server (not the cache): it must
        be the same object and not on its way out."""
        owner_meta = meta(owner)

        def check() -> bool:
            try:
                fresh = call(read, owner_meta["name"], owner_meta["namespace"])
            except Exception as error:
                if status_code(error) == 404:
                    return False
                raise
            fresh_meta = meta(fresh)
            return fresh_meta.get("uid") == owner_meta.get("uid") and not fresh_meta.get("deletionTimestamp")
        return check


def describe_error(error: BaseException) -> str:
    """The API server's own message when there is one (a Status body), else the error."""
    body = getattr(error, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            return str(message)
    reason = getattr(error, "reason", None)
    return str(reason or error)


def namespace_terminating(error: BaseException) -> bool:
    """A create refused because the namespace is being deleted: not worth a retry or a
    failure condition, everything in it is going away."""
    return status_code(error) == 403 and "being terminated" in describe_error(error)
