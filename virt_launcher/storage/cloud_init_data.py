"""The user data and network data of a cloud-init volume, from whichever of its
sources is set: inline, base64, or a Secret (keys userdata/userData and
networkdata/networkData, base64 in the Secret's data as Kubernetes stores it).

Data stays bytes throughout: user data may legitimately be gzip-compressed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from virt_launcher.storage.context import StorageContext
from virt_launcher.storage.errors import StorageError
from virt_launcher.storage.kube_objects import decode_base64, secret_items
from virt_launcher.storage.volume_ref import VolumeRef

USER_DATA_KEYS = ("userdata", "userData")
NETWORK_DATA_KEYS = ("networkdata", "networkData")


@dataclass(frozen=True)
class CloudInitData:
    user_data: bytes
    network_data: bytes | None


def resolve_cloud_init(volume: VolumeRef, context: StorageContext) -> CloudInitData:
    user = _one_source(volume, "userData", "userDataBase64", "secretRef", context, USER_DATA_KEYS)
    network = _one_source(
        volume, "networkData", "networkDataBase64", "networkDataSecretRef", context, NETWORK_DATA_KEYS
    )
    if network is None and volume.source.get("secretRef"):
        # The user-data Secret may carry the network data too; used when nothing else gives it.
        network = _secret_value(volume, "secretRef", context, NETWORK_DATA_KEYS, required=False)
    if user is None and volume.source.get("secretRef") and network is None:
        raise StorageError(
            volume.field("secretRef", "name"), "the Secret has neither user data nor network data keys"
        )
    return CloudInitData(user_data=user or b"", network_data=network)


def _one_source(
    volume: VolumeRef, inline: str, encoded: str, secret_ref: str, context: StorageContext, keys: tuple[str, ...]
) -> bytes | None:
    given = [key for key in (inline, encoded, secret_ref) if volume.source.get(key) not in (None, "", {})]
    if len(given) > 1:
        raise StorageError(volume.field(), f"set only one of {', '.join(given)}")
    if not given:
        return None
    if given[0] == inline:
        value = volume.source[inline]
        if not isinstance(value, str):
            raise StorageError(volume.field(inline), "must be a string")
        return value.encode()
    if given[0] == encoded:
        return decode_base64(volume.source[encoded], volume.field(encoded), "the value")
    # The user-data Secret may hold only network data, so its user data key is optional
    # (resolve_cloud_init refuses a Secret holding neither); networkDataSecretRef exists
    # for nothing but network data, so there the key is required.
    return _secret_value(volume, secret_ref, context, keys, required=secret_ref == "networkDataSecretRef")


def _secret_value(
    volume: VolumeRef, ref_key: str, context: StorageContext, keys: tuple[str, ...], *, required: bool
) -> bytes | None:
    ref = volume.source.get(ref_key)
    field = volume.field(ref_key, "name")
    name = ref.get("name") if isinstance(ref, Mapping) else None
    if not isinstance(name, str) or not name:
        raise StorageError(field, "a Secret name is required")
    secret: Mapping[str, Any] | None = context.secrets.get(name)
    if secret is None:
        raise StorageError(field, f"Secret {name!r} does not exist")
    items = secret_items(secret, field, name)
    for key in keys:
        if key in items:
            return items[key]
    if required:
        raise StorageError(field, f"Secret {name!r} has no {' or '.join(keys)} key")
    return None
