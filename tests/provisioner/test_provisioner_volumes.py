"""The provisioner against the local API server: classes, volumes, binding and deletion."""

from __future__ import annotations

import os
import time
from pathlib import Path

from kubernetes import client
from provisioner_testkit import Claims

from tests.wait import eventually as wait_for

from local_cluster.provisioner import Provisioner
from kube_client.rawapi import call

MI = 1024 * 1024


def test_the_local_class_is_created_as_default(control_plane, provisioner) -> None:
    api_client = control_plane.api_client()
    try:
        local = call(client.StorageV1Api(api_client).read_storage_class, "local")
    finally:
        api_client.close()
    assert local["provisioner"] == "kubevirt-py/local-path"
    assert local["volumeBindingMode"] == "Immediate"
    assert local["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"


def test_filesystem_claim_is_bound_to_a_new_directory(claims: Claims, volume_root: Path) -> None:
    made = claims.create("data", "1Gi", access_modes=["ReadWriteOnce", "ReadOnlyMany"])
    bound = claims.wait_bound("data")
    uid = made["metadata"]["uid"]
    assert bound["spec"]["volumeName"] == f"pvc-{uid}"
    assert bound["spec"]["storageClassName"] == "local"  # no class given: the default one
    assert bound["status"]["capacity"] == {"storage": "1Gi"}
    assert bound["status"]["accessModes"] == ["ReadWriteOnce", "ReadOnlyMany"]

    volume = claims.volume(f"pvc-{uid}")
    assert volume is not None
    spec = volume["spec"]
    assert spec["capacity"] == {"storage": "1Gi"}
    assert spec["accessModes"] == ["ReadWriteOnce", "ReadOnlyMany"]
    assert spec["volumeMode"] == "Filesystem"
    assert spec["persistentVolumeReclaimPolicy"] == "Delete"
    assert spec["storageClassName"] == "local"
    assert {k: spec["claimRef"][k] for k in ("namespace", "name", "uid")} == {
        "namespace": claims.namespace, "name": "data", "uid": uid}
    assert volume["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "kubevirt-py/local-path"
    assert volume["status"]["phase"] == "Bound"
    assert spec["hostPath"]["type"] == "Directory"
    path = Path(spec["hostPath"]["path"])
    assert path.is_dir() and path.parent == volume_root.resolve()
    assert wait_for(lambda: [e for e in claims.events("data") if e.get("reason") == "ProvisioningSucceeded"],
                    what="a ProvisioningSucceeded event")


def test_block_claim_gets_a_sparse_file_of_its_size(claims: Claims, volume_root: Path) -> None:
    made = claims.create("disk", "64Mi", storage_class="local", block=True)
    bound = claims.wait_bound("disk")
    assert bound["status"]["capacity"] == {"storage": "64Mi"}
    volume = claims.volume(f"pvc-{made['metadata']['uid']}")
    assert volume is not None
    assert volume["spec"]["volumeMode"] == "Block"
    assert volume["spec"]["hostPath"]["type"] == "File"
    image = Path(volume["spec"]["hostPath"]["path"])
    assert image.parent == volume_root.resolve()
    info = image.stat()
    assert info.st_size == 64 * MI
    assert info.st_blocks * 512 < info.st_size  # sparse: the disk space is not taken up front


def test_deleting_the_claim_removes_the_volume_and_its_data(claims: Claims) -> None:
    made = claims.create("scratch", "10Mi")
    claims.wait_bound("scratch")
    name = f"pvc-{made['metadata']['uid']}"
    volume = claims.volume(name)
    assert volume is not None
    data = Path(volume["spec"]["hostPath"]["path"])
    (data / "nested").mkdir()
    (data / "nested" / "file").write_text("precious")
    claims.delete("scratch")
    wait_for(lambda: claims.volume(name) is None, what=f"volume {name} to be deleted")
    assert not data.exists()


def test_claims_of_other_classes_are_left_alone(claims: Claims) -> None:
    other = claims.create("elsewhere", "1Gi", storage_class="fast")
    static = claims.create("static", "1Gi", storage_class="local", volume_name="made-by-hand")
    claims.create("mine", "1Gi")
    claims.wait_bound("mine")  # by now the provisioner has seen the other two as well
    time.sleep(0.3)
    for made in (other, static):
        claim = claims.get(made["metadata"]["name"])
        assert claim["status"]["phase"] == "Pending"
        assert claim["spec"].get("volumeName", "") == made["spec"].get("volumeName", "")
        assert claims.volume(f"pvc-{made['metadata']['uid']}") is None


def test_a_claim_deleted_while_the_provisioner_is_down_is_cleaned_up_on_start(
        control_plane, provisioner, claims: Claims, volume_root: Path) -> None:
    made = claims.create("orphaned", "10Mi")
    claims.wait_bound("orphaned")
    name = f"pvc-{made['metadata']['uid']}"
    data = Path(claims.volume(name)["spec"]["hostPath"]["path"])
    provisioner.stop()
    claims.delete("orphaned")
    time.sleep(0.2)
    assert claims.volume(name) is not None and data.is_dir()
    api_client = control_plane.api_client()
    restarted = Provisioner(api_client, volume_root)
    restarted.start()
    try:
        wait_for(lambda: claims.volume(name) is None, what=f"volume {name} to be deleted after the restart")
        assert not data.exists()
    finally:
        restarted.stop()
        api_client.close()


def test_volume_paths_outside_the_root_are_never_deleted(claims: Claims, tmp_path: Path) -> None:
    outside = tmp_path / "not-yours"
    outside.mkdir()
    (outside / "keep").write_text("keep me")
    name = f"pvc-forged-{claims.namespace}"
    forged = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": "kubevirt-py/local-path"}},
              "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                       "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "local",
                       "claimRef": {"namespace": claims.namespace, "name": "gone", "uid": "no-such-uid"},
                       "hostPath": {"path": str(outside)}}}
    call(claims.core.create_persistent_volume, forged)
    try:
        failed = wait_for(lambda: (v := claims.volume(name)) and (v.get("status") or {}).get("phase") == "Failed"
                          and v, what="the forged volume to be marked Failed")
        assert "outside the provisioner's root" in failed["status"]["message"]
        assert (outside / "keep").read_text() == "keep me"
    finally:
        call(claims.core.delete_persistent_volume, name)
    assert os.path.isdir(outside)
