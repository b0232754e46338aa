"""Events (core/v1) about the objects a component acts on.

Repeats of the same event for the same object update one Event (count and
lastTimestamp) instead of piling up new ones, as client-go's recorder does, so a
pod retried every few seconds leaves one FailedScheduling event with a count.
Recording is best effort: a failure is logged and never reaches the caller.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
from collections import OrderedDict
from typing import Any

from kubernetes import client

from kube_client.rawapi import MERGE_PATCH, call, status_code
from kube_client.timestamps import now_text

Obj = dict[str, Any]
log = logging.getLogger(__name__)

NORMAL, WARNING = "Normal", "Warning"
# Cluster-scoped objects (nodes, volumes) get their events in "default", as upstream.
_CLUSTER_EVENT_NAMESPACE = "default"
_REMEMBERED = 1024


class EventRecorder:
    def __init__(self, api_client: client.ApiClient, component: str) -> None:
        self._core = client.CoreV1Api(api_client)
        self._component = component
        self._host = socket.gethostname()
        self._lock = threading.Lock()
        # (uid, type, reason, message) -> (namespace, event name, count)
        self._seen: OrderedDict[tuple[str, str, str, str], tuple[str, str, int]] = OrderedDict()

    def record(self, kind: str, obj: Obj, event_type: str, reason: str, message: str) -> None:
        """kind is passed in because listed items carry no kind of their own."""
        meta = obj.get("metadata") or {}
        key = (str(meta.get("uid", "")), event_type, reason, message)
        with self._lock:
            known = self._seen.get(key)
        try:
            if known is not None and self._bump(*known):
                self._remember(key, known[0], known[1], known[2] + 1)
                return
            namespace, name = self._create(kind, obj, event_type, reason, message)
            self._remember(key, namespace, name, 1)
        except Exception as error:
            log.warning("could not record event %s for %s: %s", reason, meta.get("name"), error)

    def _remember(self, key: tuple[str, str, str, str], namespace: str, name: str, count: int) -> None:
        with self._lock:
            self._seen[key] = (namespace, name, count)
            self._seen.move_to_end(key)
            while len(self._seen) > _REMEMBERED:
                self._seen.popitem(last=False)

    def _bump(self, namespace: str, name: str, count: int) -> bool:
        """Count one more occurrence on an existing event; False when it is gone."""
        try:
            call(self._core.patch_namespaced_event, name, namespace,
                 {"count": count + 1, "lastTimestamp": now_text()}, _content_type=MERGE_PATCH)
        except Exception as error:
            if status_code(error) == 404:
                return False
            raise
        return True

    def _create(self, kind: str, obj: Obj, event_type: str, reason: str, message: str) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or _CLUSTER_EVENT_NAMESPACE
        now = now_text()
        name = f"{meta.get('name', 'object')}.{secrets.token_hex(8)}"
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": _reference(kind, obj),
            "reason": reason, "message": message, "type": event_type,
            "source": {"component": self._component},
            "reportingComponent": self._component, "reportingInstance": f"{self._component}-{self._host}",
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        call(self._core.create_namespaced_event, namespace, body)
        return namespace, name


def _reference(kind: str, obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    reference = {"kind": kind, "apiVersion": obj.get("apiVersion") or "v1",
                 "name": meta.get("name", ""), "uid": meta.get("uid", ""),
                 "resourceVersion": meta.get("resourceVersion", "")}
    if meta.get("namespace"):
        reference["namespace"] = meta["namespace"]
    return reference
