"""Storage preparation for virt-launcher: every volume of a VMI made ready for
libvirt before the domain starts.

    disks = prepare_volumes(vmi, workdir, StorageContext(...))
    disks["rootdisk"]  # PreparedDisk(path, format, type, read_only, device_hint, ...)

One module per volume type (container_disk, persistent_volume_claim, ephemeral,
empty_disk, host_disk, cloud_init_nocloud, cloud_init_config_drive, object_volumes),
on top of small shared pieces (qemu_img, overlay, sparse, iso, workdir, host_paths).
"""

from virt_launcher.storage.context import ClaimMount, StorageContext
from virt_launcher.storage.disk import PreparedDisk
from virt_launcher.storage.errors import StorageError, UnsupportedVolume
from virt_launcher.storage.prepare import prepare_volumes

__all__ = ["ClaimMount", "PreparedDisk", "StorageContext", "StorageError", "UnsupportedVolume", "prepare_volumes"]
