"""The local-path provisioner: a volume on the local disk for every claim of the "local" class.

Claims and volumes are followed with list+watch; one worker thread reconciles them
by key. A claim gets its data (a directory, or a sparse disk image for Block), then
its PersistentVolume (pvc-<claim uid>, reclaim policy Delete, claimRef to the
claim), then both are bound: the volume's phase, the claim's spec.volumeName, then
its status Bound with the capacity. Every step first checks what exists, so a crash
at any point is finished on the next pass. A volume of ours whose claim is gone is
Released and, with policy Delete, its data and then the object are removed.
Everything goes through the official kubernetes client.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from local_cluster.provisioner import claims
from local_cluster.provisioner.storage_class import CLASS_NAME, PROVISIONER_NAME, ensure_storage_class
from local_cluster.provisioner.volumes import LocalVolumes, UnsafePath
from local_cluster.provisioner.workqueue import WorkQueue
from kube_client.rawapi import MERGE_PATCH, call, object_key, status_code
from kube_client.recorder import NORMAL, WARNING, EventRecorder
from kube_client.reflector import DELETED, Change, Reflector, stop_and_join

Obj = dict[str, Any]
log = logging.getLogger(__name__)

CLAIM, VOLUME = "claim", "volume"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
_IDLE_WAIT = 1.0


class Provisioner:
    def __init__(self, api_client: client.ApiClient, root_dir: str | Path, *, resync_seconds: float = 60.0) -> None:
        self._core = client.CoreV1Api(api_client)
        self._storage = client.StorageV1Api(api_client)
        self._recorder = EventRecorder(api_client, PROVISIONER_NAME.replace("/", "-"))
        self._root = Path(root_dir)
        self._local: LocalVolumes | None = None
        self._resync_seconds = resync_seconds
        self._queue = WorkQueue()
        self._claims = Reflector("persistentvolumeclaims", self._core.list_persistent_volume_claim_for_all_namespaces,
                                 self._on_claim)
        self._volumes = Reflector("persistentvolumes", self._core.list_persistent_volume, self._on_volume)
        self._reflectors = (self._claims, self._volumes)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.class_ready = threading.Event()

    @property
    def root(self) -> Path:
        return self._volumes_on_disk().root

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None or self._stopping.is_set():
            raise RuntimeError("the provisioner is running or was stopped; make a new one")
        self._volumes_on_disk()
        for reflector in self._reflectors:
            reflector.start()
        self._thread = threading.Thread(target=self._run, name="provisioner", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """True once the StorageClass exists and claims and volumes have been listed."""
        deadline = time.monotonic() + timeout
        waits = [self.class_ready, *(r.synced for r in self._reflectors)]
        return all(event.wait(max(0.0, deadline - time.monotonic())) for event in waits)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._queue.close()
        stop_and_join(self._reflectors, self._thread, "the provisioner's worker", timeout)
        self._thread = None

    def _volumes_on_disk(self) -> LocalVolumes:
        if self._local is None:
            self._local = LocalVolumes(self._root)
        return self._local

    # --- what the watches report ------------------------------------------------------

    def _on_claim(self, change: Change) -> None:
        self._queue.add(f"{CLAIM}:{object_key(change.obj)}")
        if change.type == DELETED:
            # The volume is what is left to act on once its claim is gone.
            self._queue.add(f"{VOLUME}:{claims.volume_name(change.obj)}")

    def _on_volume(self, change: Change) -> None:
        self._queue.add(f"{VOLUME}:{object_key(change.obj)}")

    # --- the worker -------------------------------------------------------------------

    def _run(self) -> None:
        self._ensure_class()
        while not self._stopping.is_set() and not all(r.synced.is_set() for r in self._reflectors):
            self._stopping.wait(0.05)
        next_resync = time.monotonic() + self._resync_seconds
        while not self._stopping.is_set():
            if time.monotonic() >= next_resync:
                self._resync()
                next_resync = time.monotonic() + self._resync_seconds
            key = self._queue.get(_IDLE_WAIT)
            if key is not None:
                self._process(key)

    def _ensure_class(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            try:
                ensure_storage_class(self._storage)
                self.class_ready.set()
                return
            except Exception as error:  # the API server may not be up yet
                attempt += 1
                delay = min(0.2 * 2 ** attempt, 10.0)
                log.warning("could not ensure StorageClass %s (%s); retrying in %.1fs", CLASS_NAME, error, delay)
                self._stopping.wait(delay)

    def _resync(self) -> None:
        """Look at everything again now and then: a missed step is never left undone for long."""
        for claim in self._claims.items():
            self._queue.add(f"{CLAIM}:{object_key(claim)}")
        for volume in self._volumes.items():
            self._queue.add(f"{VOLUME}:{object_key(volume)}")

    def _process(self, key: str) -> None:
        kind, _, name = key.partition(":")
        try:
            if kind == CLAIM:
                self._reconcile_claim(name)
            else:
                self._reconcile_volume(name)
            self._queue.forget(key)
        except Exception as error:
            if not self._stopping.is_set():
                delay = self._queue.retry(key)
                log.warning("%s failed (%s); retrying in %.1fs", key, error, delay)
        finally:
            self._queue.done(key)

    # --- claims -----------------------------------------------------------------------

    def _reconcile_claim(self, key: str) -> None:
        claim = self._claims.get(key)
        if claim is None or not claims.wants_provisioning(claim) or claims.is_bound(claim):
            return
        problem = claims.unsupported(claim)
        if problem is not None:
            self._recorder.record("PersistentVolumeClaim", claim, WARNING, "ProvisioningFailed", problem)
            return
        volume = self._volumes.get(claims.volume_name(claim)) or self._provision(claim)
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        if ref.get("uid") != claim["metadata"].get("uid"):
            log.warning("volume %s belongs to claim uid %s, not %s; leaving it", claims.volume_name(claim),
                        ref.get("uid"), key)
            return
        self._bind(claim, volume)

    def _provision(self, claim: Obj) -> Obj:
        meta = claim["metadata"]
        name = claims.volume_name(claim)
        local = self._volumes_on_disk()
        path = local.path_for(name, meta["namespace"], meta["name"])
        try:
            if claims.is_block(claim):
                local.create_disk_image(path, claims.size_in_bytes(claims.requested_storage(claim) or "0"))
            else:
                local.create_directory(path)
        except (OSError, UnsafePath) as error:
            self._recorder.record("PersistentVolumeClaim", claim, WARNING, "ProvisioningFailed",
                                  f"could not create {path}: {error}")
            raise
        try:
            volume = call(self._core.create_persistent_volume, claims.persistent_volume(claim, path))
        except client.ApiException as error:
            if status_code(error) != 409:
                raise
            volume = call(self._core.read_persistent_volume, name)  # made by an earlier pass
        self._recorder.record("PersistentVolumeClaim", claim, NORMAL, "ProvisioningSucceeded",
                              f"Successfully provisioned volume {name}")
        log.info("provisioned %s for %s/%s at %s", name, meta["namespace"], meta["name"], path)
        return volume

    def _bind(self, claim: Obj, volume: Obj) -> None:
        # The volume first, as upstream's binder: whoever sees the claim Bound finds its
        # volume Bound too.
        self._set_volume_phase(volume, "Bound")
        meta, name = claim["metadata"], claims.volume_name(claim)
        if (claim.get("spec") or {}).get("volumeName") != name:
            spec: Obj = {"volumeName": name}
            if (claim.get("spec") or {}).get("storageClassName") is None:
                # What the DefaultStorageClass admission plugin would have written.
                spec["storageClassName"] = CLASS_NAME
            annotations = {BIND_COMPLETED: "yes", BOUND_BY_CONTROLLER: "yes", STORAGE_PROVISIONER: PROVISIONER_NAME}
            # Pinned to the version we looked at: a claim deleted and made again under
            # the same name in between must not be bound to this volume.
            claim = call(self._core.patch_namespaced_persistent_volume_claim, meta["name"], meta["namespace"],
                         {"metadata": {"resourceVersion": meta["resourceVersion"], "annotations": annotations},
                          "spec": spec}, _content_type=MERGE_PATCH)
        volume_spec = volume.get("spec") or {}
        if (claim.get("status") or {}).get("phase") != "Bound":
            call(self._core.patch_namespaced_persistent_volume_claim_status, meta["name"], meta["namespace"],
                 {"status": {"phase": "Bound", "accessModes": volume_spec.get("accessModes"),
                             "capacity": volume_spec.get("capacity")}}, _content_type=MERGE_PATCH)

    # --- volumes ----------------------------------------------------------------------

    def _reconcile_volume(self, name: str) -> None:
        volume = self._volumes.get(name)
        if volume is None or not _ours(volume) or (volume.get("metadata") or {}).get("deletionTimestamp"):
            return
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        claim = self._claims.get(f"{ref.get('namespace', '')}/{ref.get('name', '')}")
        if claim is not None and claim["metadata"].get("uid") == ref.get("uid"):
            if (claim.get("spec") or {}).get("volumeName") == name:
                self._set_volume_phase(volume, "Bound")
            return
        if (volume.get("status") or {}).get("phase") == "Failed":
            return  # a refused deletion waits for a person
        self._set_volume_phase(volume, "Released")
        if (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Delete":
            self._delete(volume)

    def _delete(self, volume: Obj) -> None:
        name = volume["metadata"]["name"]
        path = claims.volume_path(volume)
        try:
            self._volumes_on_disk().remove(path)
        except UnsafePath as error:
            message = f"refusing to delete the data of {name}: {error}"
            log.error("%s", message)
            self._recorder.record("PersistentVolume", volume, WARNING, "VolumeFailedDelete", message)
            self._set_volume_phase(volume, "Failed", message)
            return
        try:
            call(self._core.delete_persistent_volume, name)
        except client.ApiException as error:
            if status_code(error) != 404:
                raise
        log.info("deleted %s and its data at %s", name, path)

    def _set_volume_phase(self, volume: Obj, phase: str, message: str | None = None) -> None:
        status = volume.get("status") or {}
        if status.get("phase") == phase and status.get("message") == message:
            return
        call(self._core.patch_persistent_volume_status, volume["metadata"]["name"],
             {"status": {"phase": phase, "message": message}}, _content_type=MERGE_PATCH)


def _ours(volume: Obj) -> bool:
    annotations = (volume.get("metadata") or {}).get("annotations") or {}
    return annotations.get(claims.PROVISIONED_BY) == PROVISIONER_NAME
