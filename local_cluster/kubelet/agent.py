"""The kubelet's API side: register the node, keep its lease, run the pods bound to it
through PodRuntime, and report their status.

Threads, each with one job: the heartbeat (node status and lease), the pod watch
(fills the cache and queues work), the sync worker (hands pods to the runtime and
completes deletions) and the status writer (patches pods/status as the runtime
reports). Nothing here is needed across a restart: the runtime keeps its pods on
disk and the API keeps the rest. Beside them, the kubelet's HTTPS server (log_server)
serves container logs to the API server.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kubernetes import client, watch

from kube_client.timestamps import now_text
from local_cluster.kubelet import node_status
from local_cluster.kubelet.container_logs import ContainerLogs
from local_cluster.kubelet.kubelet_auth import server_context, serving_certificate
from local_cluster.kubelet.log_server import KUBELET_PORT, KubeletServer
from local_cluster.kubelet.pod_sources import ClaimVolume, PodSources, pod_references
from local_cluster.kubelet.runtime import NodeConfig, PodRuntime

Obj = dict[str, Any]
log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
RESYNC_SECONDS = 5.0
WATCH_TIMEOUT_SECONDS = 60


class KubeletAgent:
    def __init__(self, api: client.ApiClient, config: NodeConfig, port: int = KUBELET_PORT) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._config = config
        self._node = config.node_name
        self._runtime = PodRuntime(config, on_status=self._on_status)
        self._pods: dict[str, Obj] = {}           # uid -> latest pod from the API
        self._pods_lock = threading.Lock()
        self._work: queue.Queue[str] = queue.Queue()
        self._statuses: dict[str, Obj] = {}       # uid -> status not yet written
        self._status_ready = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ready_since: str | None = None
        self._server = self._kubelet_server(port)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._server is not None:
            self._server.start()  # first: the Node reports the port it bound
        try:
            node_status.register(self._core, self._node, self._config.effective_host_ip)
            self._heartbeat_once(ready=True)
        except BaseException:
            if self._server is not None:
                self._server.stop()
            raise
        adopted = set(self._runtime.recover())
        pods = self._core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={self._node}")
        with self._pods_lock:
            for pod in pods.items:
                self._pods[pod.metadata.uid] = self._api.sanitize_for_serialization(pod)
        for uid in adopted - set(self._pods):
            self._forget(uid)  # its API object is gone: nothing should run it
        for uid in list(self._pods):
            self._work.put(uid)
        for target, name in ((self._heartbeat_loop, "heartbeat"), (self._watch_loop, "pod-watch"),
                             (self._sync_loop, "pod-sync"), (self._status_loop, "status-writer")):
            thread = threading.Thread(target=target, name=f"kubelet-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def shutdown(self, stop_pods: bool, timeout: float = 60.0) -> None:
        """Stop the agent; ``stop_pods`` is a node shutdown (pods end), otherwise pods keep
        running for the next kubelet process to adopt."""
        if stop_pods:
            self._runtime.stop_all(timeout=timeout)
            self._flush_statuses(timeout=10.0)
            try:
                node_status.report(self._core, self._node, self._config.effective_host_ip, False,
                                   "KubeletNotReady", "kubelet is shut down", None, self.port)
            except client.ApiException as error:
                log.warning("could not mark the node NotReady: %s", error.reason)
        self._stop.set()
        if self._server is not None:
            self._server.stop()
        with self._status_ready:
            self._status_ready.notify_all()
        for thread in self._threads:
            thread.join(5)
        self._runtime.close()

    # --- the kubelet's server ---------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port of the kubelet's server; 0 when it does not serve."""
        return self._server.port if self._server is not None else 0

    def _kubelet_server(self, port: int) -> KubeletServer | None:
        client_ca = self._api.configuration.ssl_ca_cert
        if not client_ca:
            log.warning("the kubeconfig names no CA to authenticate the API server with: not serving logs")
            return None
        host_ip = self._config.effective_host_ip
        cert, key = serving_certificate(self._config.root / "pki", self._node, host_ip)
        logs = ContainerLogs(self._runtime, self.find_pod)
        return KubeletServer(host_ip, port, server_context(cert, key, client_ca), logs.routes())

    def find_pod(self, namespace: str, name: str) -> str | None:
        """The uid of the pod of that name this node runs; a pod being replaced under the
        same name gives way to its successor."""
        with self._pods_lock:
            found = [(bool(p["metadata"].get("deletionTimestamp")), uid) for uid, p in self._pods.items()
                     if p["metadata"].get("namespace") == namespace and p["metadata"].get("name") == name]
        return min(found)[1] if found else None

    # --- heartbeat ------------------------------------------------------------------------

    def _heartbeat_once(self, ready: bool) -> None:
        if self._ready_since is None:
            self._ready_since = now_text()
        # The lease first: whoever sees the node Ready also finds its heartbeat.
        node_status.renew_lease(client.CoordinationV1Api(self._api), self._node)
        node_status.report(self._core, self._node, self._config.effective_host_ip, ready, "KubeletReady",
                           "kubelet is posting ready status", self._ready_since, self.port)

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._heartbeat_once(ready=True)
            except Exception as error:  # the API may be restarting: try again next beat
                log.warning("heartbeat failed: %s", error)

    # --- pods from the API ------------------------------------------------------------------

    def _watch_loop(self) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    version = self._relist()
                stream = watch.Watch().stream(self._core.list_pod_for_all_namespaces,
                                              field_selector=f"spec.nodeName={self._node}",
                                              resource_version=version, timeout_seconds=WATCH_TIMEOUT_SECONDS,
                                              allow_watch_bookmarks=True)
                for event in stream:
                    if self._stop.is_set():
                        return
                    raw = event["raw_object"]
                    version = raw.get("metadata", {}).get("resourceVersion", version)
                    if event["type"] == "BOOKMARK":
                        continue
                    self._observe(event["type"], raw)
            except client.ApiException as error:
                if error.status == 410:
                    version = ""  # too old: list again
                    continue
                log.warning("pod watch failed: %s", error.reason)
                self._stop.wait(1.0)
            except Exception as error:  # connection trouble: back off and resume
                log.warning("pod watch interrupted: %s", error)
                self._stop.wait(1.0)

    def _relist(self) -> str:
        listed = self._core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={self._node}")
        fresh = {p.metadata.uid: self._api.sanitize_for_serialization(p) for p in listed.items}
        with self._pods_lock:
            gone = set(self._pods) - set(fresh)
            self._pods.update(fresh)
        for uid in gone:
            self._observe("DELETED", {"metadata": {"uid": uid}})
        for uid in fresh:
            self._work.put(uid)
        return listed.metadata.resource_version

    def _observe(self, kind: str, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        with self._pods_lock:
            if kind == "DELETED":
                self._pods.pop(uid, None)
            else:
                self._pods[uid] = pod
        self._work.put(uid)

    # --- syncing pods -------------------------------------------------------------------------

    def _sync_loop(self) -> None:
        last_resync = time.monotonic()
        while not self._stop.is_set():
            try:
                uid = self._work.get(timeout=0.5)
            except queue.Empty:
                uid = None
            if time.monotonic() - last_resync > RESYNC_SECONDS:
                last_resync = time.monotonic()
                with self._pods_lock:
                    for known in list(self._pods):
                        self._work.put(known)
            if uid is None:
                continue
            try:
                self._sync(uid)
            except Exception as error:  # one bad pod must not stop the node
                log.warning("sync of pod %s failed: %s", uid, error)

    def _sync(self, uid: str) -> None:
        with self._pods_lock:
            pod = self._pods.get(uid)
        if pod is None:
            self._forget(uid)
            return
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            self._runtime.sync_pod(pod, PodSources())
            if self._runtime.status(uid) is None or self._runtime.is_terminated(uid):
                self._finish_deletion(pod)
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and self._runtime.status(uid) is None:
            return  # finished before this kubelet knew it: do not run it again
        sources = self._sources(pod)
        if sources is None:
            return  # a claim is not bound yet; the resync tries again
        try:
            self._runtime.sync_pod(pod, sources)
        except ValueError as error:
            self._write_status(uid, pod, {"phase": "Failed", "reason": "InvalidPod", "message": str(error)})

    def _finish_deletion(self, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            self._core.delete_namespaced_pod(meta["name"], meta["namespace"], grace_period_seconds=0,
                                             body=client.V1DeleteOptions(
                                                 grace_period_seconds=0,
                                                 preconditions=client.V1Preconditions(uid=meta["uid"])))
        except client.ApiException as error:
            if error.status not in (404, 409):
                raise
        self._forget(meta["uid"])

    def _forget(self, uid: str) -> None:
        if self._runtime.status(uid) is None:
            return
        if not self._runtime.is_terminated(uid):
            self._runtime.terminate_pod(uid)
            self._work.put(uid)  # come back when it has stopped
            return
        self._runtime.remove_pod(uid)
        with self._pods_lock:
            self._pods.pop(uid, None)

    def _sources(self, pod: Obj) -> PodSources | None:
        namespace = pod["metadata"]["namespace"]
        refs = pod_references(pod)
        sources = PodSources(service_env=self._service_env())
        for name in refs.config_maps:
            found = self._read(self._core.read_namespaced_config_map, name, namespace)
            if found is not None:
                sources.config_maps[name] = found
        for name in refs.secrets:
            found = self._read(self._core.read_namespaced_secret, name, namespace)
            if found is not None:
                sources.secrets[name] = found
        for name in refs.claims:
            claim = self._claim(name, namespace)
            if claim is None:
                return None
            sources.claims[name] = claim
        if refs.service_account_token:
            sources.service_account_token = self._token()
        return sources

    def _read(self, reader: Any, name: str, namespace: str) -> Obj | None:
        try:
            return self._api.sanitize_for_serialization(reader(name, namespace))
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def _claim(self, name: str, namespace: str) -> ClaimVolume | None:
        claim = self._read(self._core.read_namespaced_persistent_volume_claim, name, namespace)
        volume_name = ((claim or {}).get("spec") or {}).get("volumeName")
        if not volume_name or ((claim or {}).get("status") or {}).get("phase") != "Bound":
            return None
        volume = self._api.sanitize_for_serialization(self._core.read_persistent_volume(volume_name))
        spec = volume.get("spec") or {}
        path = (spec.get("hostPath") or {}).get("path") or (spec.get("local") or {}).get("path")
        if not path:
            return None
        return ClaimVolume(Path(path), block=spec.get("volumeMode") == "Block")

    def _service_env(self) -> dict[str, str]:
        url = urlparse(self._api.configuration.host)
        return {"KUBERNETES_SERVICE_HOST": url.hostname or "127.0.0.1",
                "KUBERNETES_SERVICE_PORT": str(url.port or 443),
                "KUBERNETES_SERVICE_PORT_HTTPS": str(url.port or 443)}

    def _token(self) -> str | None:
        value = (self._api.configuration.auth_settings().get("BearerToken") or {}).get("value", "")
        return value.removeprefix("Bearer ") or None

    # --- status -------------------------------------------------------------------------------

    def _on_status(self, uid: str, status: Obj) -> None:
        with self._status_ready:
            self._statuses[uid] = status
            self._status_ready.notify()

    def _status_loop(self) -> None:
        while not self._stop.is_set():
            with self._status_ready:
                while not self._statuses and not self._stop.is_set():
                    self._status_ready.wait(1.0)
                pending, self._statuses = self._statuses, {}
            for uid, status in pending.items():
                with self._pods_lock:
                    pod = self._pods.get(uid)
                if pod is not None:
                    self._write_status(uid, pod, status)
                    if pod["metadata"].get("deletionTimestamp") and self._runtime.is_terminated(uid):
                        self._work.put(uid)

    def _write_status(self, uid: str, pod: Obj, status: Obj) -> None:
        meta = pod["metadata"]
        try:
            self._core.patch_namespaced_pod_status(meta["name"], meta["namespace"], {
                "metadata": {"uid": uid}, "status": status})
        except client.ApiException as error:
            if error.status not in (404, 409):
                log.warning("status of pod %s/%s not written: %s", meta["namespace"], meta["name"], error.reason)
        except Exception as error:
            log.warning("status of pod %s/%s not written: %s", meta["namespace"], meta["name"], error)
            with self._status_ready:
                self._statuses.setdefault(uid, status)

    def _flush_statuses(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._status_ready:
                if not self._statuses:
                    return
            time.sleep(0.1)
