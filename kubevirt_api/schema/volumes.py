"""spec.volumes of a VMI: where each disk's data comes from."""

from __future__ import annotations

from kubevirt_api.schema.builders import Schema, boolean, obj, quantity, string
from kubevirt_api.schema.domain import IMAGE_PULL_POLICIES


def _secret_ref() -> Schema:
    return obj("", {"name": string()})


def _cloud_init(description: str) -> Schema:
    return obj(description, {
        "userData": string("User data, inline."),
        "userDataBase64": string("User data, base64 encoded."),
        "secretRef": _secret_ref(),
        "networkData": string(),
        "networkDataBase64": string(),
        "networkDataSecretRef": _secret_ref(),
    })


def _claim(description: str) -> Schema:
    return obj(description, {
        "claimName": string("Name of the PersistentVolumeClaim in the VMI's namespace."),
        "readOnly": boolean(),
        "hotpluggable": boolean(),
    }, required=["claimName"])


def volume() -> Schema:
    return obj("A source of data for one disk.", {
        "name": string(),
        "containerDisk": obj("A disk image shipped in a container image; writes go to a throwaway overlay.", {
            "image": string(),
            "imagePullSecret": string(),
            "imagePullPolicy": string(enum=IMAGE_PULL_POLICIES),
            "path": string("Path of the disk image inside the container image."),
        }, required=["image"]),
        "persistentVolumeClaim": _claim("A PVC used as the disk (filesystem disk.img or block)."),
        "ephemeral": obj("A PVC used as a read-only base under a throwaway overlay.", {
            "persistentVolumeClaim": _claim(""),
        }),
        "emptyDisk": obj("A blank sparse disk that lives as long as the VMI.", {
            "capacity": quantity("Size of the disk."),
        }, required=["capacity"]),
        "hostDisk": obj("A disk image on the node.", {
            "path": string("Path of the image on the node."),
            "type": string("Disk: must exist. DiskOrCreate: created sparse if missing.",
                           enum=["Disk", "DiskOrCreate"]),
            "capacity": quantity(),
            "shared": boolean(),
        }, required=["path", "type"]),
        "cloudInitNoCloud": _cloud_init("cloud-init NoCloud data source (ISO labelled cidata)."),
        "cloudInitConfigDrive": _cloud_init("cloud-init ConfigDrive data source (ISO labelled config-2)."),
        "configMap": obj("A ConfigMap as an ISO disk.", {
            "name": string(), "optional": boolean(), "volumeLabel": string(),
        }),
        "secret": obj("A Secret as an ISO disk.", {
            "secretName": string(), "optional": boolean(), "volumeLabel": string(),
        }),
        "dataVolume": obj("A CDI DataVolume.", {"name": string(), "hotpluggable": boolean()}, required=["name"]),
        "serviceAccount": obj("", {"serviceAccountName": string()}),
    }, required=["name"], open_ended=True)
