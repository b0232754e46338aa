"""Where the build puts things and what the images are called.

Later code (tests, examples, the demo) finds the guest through these names rather
than repeating paths, so moving an output is a change in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "build" / "guest"

# A containerDisk: the disk at /disk/<file>, as upstream containerDisk images have it.
CONTAINER_DISK_REF = "kubevirt-py/tiny-guest:latest"
CONTAINER_DISK_PATH = "/disk/disk.img"
# A kernel-boot image for spec.domain.firmware.kernelBoot.container.
KERNEL_BOOT_REF = "kubevirt-py/tiny-guest-kernel:latest"
KERNEL_PATH = "/boot/vmlinuz"
INITRD_PATH = "/boot/initramfs.img"

# The command line the disk's boot loader passes; a kernel-boot VMI passes its own
# kernelArgs and should include console=ttyS0 to see the marker lines.
KERNEL_CMDLINE = "console=ttyS0"


@dataclass(frozen=True)
class Outputs:
    """The files one build produces, under out (and the image store next to it)."""

    out: Path

    @property
    def vmlinuz(self) -> Path:
        return self.out / "vmlinuz"

    @property
    def initramfs(self) -> Path:
        return self.out / "initramfs.cpio.gz"

    @property
    def disk(self) -> Path:
        return self.out / "disk.img"

    @property
    def stamp(self) -> Path:
        return self.out / "build-stamp.json"

    @property
    def store(self) -> Path:
        # DIR/../oci: the kubelet's local image store (an OCI image layout).
        return self.out.parent / "oci"

    @property
    def cache(self) -> Path:
        # Downloaded .deb files; kept so a rebuild needs no network.
        return self.out.parent / "cache"

    def files(self) -> tuple[Path, ...]:
        return (self.vmlinuz, self.initramfs, self.disk)


def default_outputs() -> Outputs:
    return Outputs(DEFAULT_OUT)
