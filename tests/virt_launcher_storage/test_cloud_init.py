"""cloudInitNoCloud and cloudInitConfigDrive ISOs: labels, file names, contents, sources."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
import yaml

from virt_launcher.storage import StorageContext, StorageError

from .helpers import (
    iso_joliet_files, iso_label, iso_rock_ridge_files, prepare_one,
)

USER_DATA = "#cloud-config\npassword: fedora\nchpasswd: { expire: False }\n"
NETWORK_DATA = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n"


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def nocloud(**source) -> dict:
    return {"name": "cloudinit", "cloudInitNoCloud": source}


def config_drive(**source) -> dict:
    return {"name": "cloudinit", "cloudInitConfigDrive": source}


def test_nocloud_iso_layout_label_and_meta_data(workdir):
    disk = prepare_one(nocloud(userData=USER_DATA), workdir, StorageContext(), name="myvm")

    assert (disk.format, disk.type, disk.read_only, disk.device_hint) == ("raw", "file", True, "cdrom")
    assert disk.path == workdir.resolve() / "cloudinit.iso"
    assert iso_label(disk.path) == "cidata"
    joliet = iso_joliet_files(disk.path)
    assert set(joliet) == {"/user-data", "/meta-data"}
    assert iso_rock_ridge_files(disk.path) == joliet
    assert joliet["/user-data"] == USER_DATA.encode()
    assert yaml.safe_load(joliet["/meta-data"]) == {"instance-id": "myvm.ns1", "local-hostname": "myvm"}


def test_nocloud_hostname_and_network_config(workdir):
    disk = prepare_one(
        nocloud(userData=USER_DATA, networkData=NETWORK_DATA), workdir, StorageContext(), hostname="web-1"
    )
    files = iso_rock_ridge_files(disk.path)
    assert files["/network-config"] == NETWORK_DATA.encode()
    assert yaml.safe_load(files["/meta-data"])["local-hostname"] == "web-1"


def test_nocloud_meta_data_values_stay_strings_in_yaml(workdir):
    # "true" and "1e3" are valid host names that a plain YAML scalar would turn into a bool and a float.
    for name in ("true", "1e3"):
        disk = prepare_one(nocloud(userData=USER_DATA), workdir / name, StorageContext(), hostname=name)
        meta = yaml.safe_load(iso_rock_ridge_files(disk.path)["/meta-data"])
        assert meta["local-hostname"] == name


def test_nocloud_base64_sources_keep_binary_user_data(workdir):
    compressed = gzip.compress(USER_DATA.encode())
    disk = prepare_one(
        nocloud(userDataBase64=b64(compressed), networkDataBase64=b64(NETWORK_DATA)), workdir, StorageContext()
    )
    files = iso_joliet_files(disk.path)
    assert files["/user-data"] == compressed
    assert files["/network-config"] == NETWORK_DATA.encode()


@pytest.mark.parametrize("key", ["userDataBase64", "networkDataBase64"])
def test_invalid_base64_names_the_field(workdir, key):
    with pytest.raises(StorageError) as caught:
        prepare_one(nocloud(**{key: "not base64!"}), workdir, StorageContext())
    assert str(caught.value).startswith(f"spec.volumes[0].cloudInitNoCloud.{key}: ")
    assert "base64" in str(caught.value)


def test_secret_ref_user_data_and_network_data(workdir):
    secrets = {"vm-cloudinit": {"data": {"userdata": b64(USER_DATA), "networkdata": b64(NETWORK_DATA)}}}
    disk = prepare_one(nocloud(secretRef={"name": "vm-cloudinit"}), workdir, StorageContext(secrets=secrets))
    files = iso_joliet_files(disk.path)
    assert files["/user-data"] == USER_DATA.encode()
    assert files["/network-config"] == NETWORK_DATA.encode()


def test_secret_refs_with_camel_case_keys(workdir):
    secrets = {
        "user": {"data": {"userData": b64(USER_DATA)}},
        "net": {"data": {"networkData": b64(NETWORK_DATA)}},
    }
    disk = prepare_one(
        nocloud(secretRef={"name": "user"}, networkDataSecretRef={"name": "net"}),
        workdir, StorageContext(secrets=secrets),
    )
    files = iso_joliet_files(disk.path)
    assert files["/user-data"] == USER_DATA.encode()
    assert files["/network-config"] == NETWORK_DATA.encode()


def test_missing_secret_names_secret_ref(workdir):
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.cloudInitNoCloud\.secretRef\.name: .*'gone'"):
        prepare_one(nocloud(secretRef={"name": "gone"}), workdir, StorageContext())


def test_secret_without_cloud_init_keys_is_refused(workdir):
    secrets = {"other": {"data": {"password": b64("x")}}}
    with pytest.raises(StorageError, match=r"cloudInitNoCloud\.secretRef\.name: the Secret has neither"):
        prepare_one(nocloud(secretRef={"name": "other"}), workdir, StorageContext(secrets=secrets))


def test_network_data_secret_without_its_key_is_refused(workdir):
    secrets = {"net": {"data": {"userdata": b64("x")}}}
    with pytest.raises(StorageError, match=r"cloudInitNoCloud\.networkDataSecretRef\.name: .*networkdata"):
        prepare_one(
            nocloud(userData=USER_DATA, networkDataSecretRef={"name": "net"}), workdir, StorageContext(secrets=secrets)
        )


def test_two_user_data_sources_are_refused(workdir):
    expected = r"^spec\.volumes\[0\]\.cloudInitNoCloud: set only one of userData, userDataBase64"
    with pytest.raises(StorageError, match=expected):
        prepare_one(nocloud(userData=USER_DATA, userDataBase64=b64(USER_DATA)), workdir, StorageContext())


def test_config_drive_layout_label_and_meta_data(workdir):
    disk = prepare_one(
        config_drive(userData=USER_DATA, networkData='{"links": []}'), workdir, StorageContext(),
        name="cdvm", uid="5b5d3c1e-aaaa-4bbb-8ccc-123456789abc",
    )
    assert iso_label(disk.path) == "config-2"
    assert disk.device_hint == "cdrom" and disk.read_only
    files = iso_joliet_files(disk.path)
    assert set(files) == {
        "/openstack/latest/user_data", "/openstack/latest/meta_data.json", "/openstack/latest/network_data.json",
    }
    assert iso_rock_ridge_files(disk.path) == files
    assert files["/openstack/latest/user_data"] == USER_DATA.encode()
    assert json.loads(files["/openstack/latest/network_data.json"]) == {"links": []}
    assert json.loads(files["/openstack/latest/meta_data.json"]) == {
        "uuid": "5b5d3c1e-aaaa-4bbb-8ccc-123456789abc",
        "hostname": "cdvm",
        "name": "cdvm",
        "availability_zone": "",
        "launch_index": 0,
        "public_keys": {},
    }


def test_config_drive_from_secret_without_network_data(workdir):
    secrets = {"cd": {"data": {"userdata": b64(USER_DATA)}}}
    disk = prepare_one(config_drive(secretRef={"name": "cd"}), workdir, StorageContext(secrets=secrets))
    files = iso_rock_ridge_files(disk.path)
    assert set(files) == {"/openstack/latest/user_data", "/openstack/latest/meta_data.json"}
    assert files["/openstack/latest/user_data"] == USER_DATA.encode()


def test_config_drive_invalid_base64_names_the_field(workdir):
    with pytest.raises(StorageError, match=r"^spec\.volumes\[0\]\.cloudInitConfigDrive\.userDataBase64: "):
        prepare_one(config_drive(userDataBase64="%%%"), workdir, StorageContext())
