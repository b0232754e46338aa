"""configMap and secret volumes as ISOs: one file per key, labels, optional objects."""

from __future__ import annotations

import base64

import pytest

from virt_launcher.storage import StorageContext, StorageError

from .helpers import iso_joliet_files, iso_label, iso_rock_ridge_files, prepare_one


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_config_map_keys_become_files(workdir):
    config_maps = {"app-config": {
        "data": {"app.properties": "mode=fast\n", "Log-Level": "debug"},
        "binaryData": {"logo.png": b64(b"\x89PNG\x00\xff")},
    }}
    disk = prepare_one(
        {"name": "config", "configMap": {"name": "app-config"}}, workdir, StorageContext(config_maps=config_maps)
    )
    assert (disk.format, disk.type, disk.read_only, disk.device_hint) == ("raw", "file", True, "cdrom")
    assert iso_label(disk.path) == "cfgdata"
    files = iso_joliet_files(disk.path)
    assert files == {"/app.properties": b"mode=fast\n", "/Log-Level": b"debug", "/logo.png": b"\x89PNG\x00\xff"}
    assert iso_rock_ridge_files(disk.path) == files


def test_secret_values_are_decoded_and_labelled(workdir):
    secrets = {"db": {"data": {"password": b64(b"s3cr3t"), "tls.key": b64(b"\x00\x01")}}}
    disk = prepare_one({"name": "creds", "secret": {"secretName": "db"}}, workdir, StorageContext(secrets=secrets))
    assert iso_label(disk.path) == "secret"
    assert iso_joliet_files(disk.path) == {"/password": b"s3cr3t", "/tls.key": b"\x00\x01"}


def test_volume_label_overrides_the_default(workdir):
    context = StorageContext(config_maps={"c": {"data": {"k": "v"}}}, secrets={"s": {"data": {}}})
    disk = prepare_one({"name": "config", "configMap": {"name": "c", "volumeLabel": "MYCFG"}}, workdir, context)
    assert iso_label(disk.path) == "MYCFG"
    disk = prepare_one({"name": "creds", "secret": {"secretName": "s", "volumeLabel": "keys-1"}}, workdir, context)
    assert iso_label(disk.path) == "keys-1"


def test_invalid_volume_label_names_the_field(workdir):
    context = StorageContext(config_maps={"c": {"data": {}}})
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.configMap\.volumeLabel: "):
        prepare_one({"name": "config", "configMap": {"name": "c", "volumeLabel": "x" * 33}}, workdir, context)


def test_optional_missing_objects_give_empty_isos(workdir):
    disk = prepare_one({"name": "config", "configMap": {"name": "absent", "optional": True}}, workdir, StorageContext())
    assert iso_label(disk.path) == "cfgdata" and iso_joliet_files(disk.path) == {}
    volume = {"name": "creds", "secret": {"secretName": "absent", "optional": True}}
    disk = prepare_one(volume, workdir, StorageContext())
    assert iso_label(disk.path) == "secret" and iso_joliet_files(disk.path) == {}


def test_missing_objects_are_errors_naming_the_field(workdir):
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.configMap\.name: ConfigMap 'absent' does not exist"):
        prepare_one({"name": "config", "configMap": {"name": "absent"}}, workdir, StorageContext())
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.secret\.secretName: Secret 'absent' does not exist"):
        prepare_one({"name": "creds", "secret": {"secretName": "absent"}}, workdir, StorageContext())


def test_invalid_secret_data_and_keys_are_refused(workdir):
    bad_value = StorageContext(secrets={"s": {"data": {"k": "@@not base64@@"}}})
    with pytest.raises(StorageError, match=r"secret\.secretName: Secret 's' key 'k' is not valid base64"):
        prepare_one({"name": "creds", "secret": {"secretName": "s"}}, workdir, bad_value)
    bad_key = StorageContext(config_maps={"c": {"data": {"../escape": "x"}}})
    with pytest.raises(StorageError, match=r"configMap\.name: ConfigMap 'c' has key '\.\./escape'"):
        prepare_one({"name": "config", "configMap": {"name": "c"}}, workdir, bad_key)


def test_keys_that_collide_in_iso9660_names_stay_distinct(workdir):
    data = {f"very-long-key-{i}": str(i) for i in range(12)}
    data.update({"a-b": "dash", "a_b": "underscore", "A.B": "dot", "x" * 100: "long"})
    disk = prepare_one(
        {"name": "config", "configMap": {"name": "c"}}, workdir, StorageContext(config_maps={"c": {"data": data}})
    )
    rock_ridge = iso_rock_ridge_files(disk.path)
    assert rock_ridge == {f"/{key}": value.encode() for key, value in data.items()}
    joliet = iso_joliet_files(disk.path)
    assert len(joliet) == len(data)  # Joliet truncates the 100-character key, but keeps it apart
    assert joliet["/a-b"] == b"dash" and joliet["/a_b"] == b"underscore"
