"""The bootable raw disk: an MBR with syslinux's boot code and one FAT16 partition
holding syslinux, the kernel and the initramfs.

BIOS (SeaBIOS) boots it from any disk bus QEMU offers, so a VMI whose only volume
is a containerDisk boots. FAT is chosen because syslinux installs onto it from an
image file with mtools, as an unprivileged file operation: no loop devices, no
mounts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from guest_image import mbr
from guest_image.reproducible import EPOCH, build_env

SIZE_MIB = 64
PART_START = 2048  # sectors: the partition starts at 1 MiB, as partitioners align
SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
FS_LABEL = "TINYGUEST"
VOLUME_ID = "4b565059"  # fixed (mkfs.fat would pick one from the clock)
DISK_SIGNATURE = 0x4B565059

# On the FAT partition.
KERNEL_FILE = "vmlinuz"
INITRD_FILE = "initrd.img"


def syslinux_cfg(cmdline: str) -> str:
    # PROMPT 0 + TIMEOUT 1 (tenths of a second): boot at once, nothing to choose.
    # SERIAL mirrors syslinux's own messages on ttyS0, where a failed boot shows.
    return (
        "SERIAL 0 115200\n"
        "PROMPT 0\n"
        "TIMEOUT 1\n"
        "DEFAULT tiny\n"
        "LABEL tiny\n"
        f"  KERNEL /{KERNEL_FILE}\n"
        f"  INITRD /{INITRD_FILE}\n"
        f"  APPEND {cmdline}\n"
    )


def _run(*argv: str) -> None:
    env = build_env()
    # mtools refuses images whose size is not a whole number of "tracks".
    env["MTOOLS_SKIP_CHECK"] = "1"
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")


def build_disk(target: Path, vmlinuz: Path, initramfs: Path, cmdline: str) -> None:
    """Write the disk image to target (atomically: a partial file never appears)."""
    total_sectors = SIZE_MIB * 1024 * 1024 // mbr.SECTOR
    part_sectors = total_sectors - PART_START
    offset = PART_START * mbr.SECTOR
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".disk-") as tmpdir:
        tmp = Path(tmpdir)
        image = tmp / "disk.img"
        with image.open("wb") as f:
            f.truncate(total_sectors * mbr.SECTOR)  # sparse: zeros cost nothing
            f.write(mbr.mbr(SYSLINUX_MBR.read_bytes(), PART_START, part_sectors, mbr.TYPE_FAT16_LBA, DISK_SIGNATURE))
        # --offset also records the partition start as the FAT's hidden sectors,
        # which syslinux's boot sector needs to find its files.
        _run(
            "mkfs.fat", "--invariant", f"--offset={PART_START}", "-F", "16", "-n", FS_LABEL, "-i", VOLUME_ID,
            str(image), str(part_sectors * mbr.SECTOR // 1024),
        )  # fmt: skip
        staged = tmp / "files"
        staged.mkdir()
        shutil.copyfile(vmlinuz, staged / KERNEL_FILE)
        shutil.copyfile(initramfs, staged / INITRD_FILE)
        (staged / "syslinux.cfg").write_text(syslinux_cfg(cmdline))
        for name in (KERNEL_FILE, INITRD_FILE, "syslinux.cfg"):
            os.utime(staged / name, (EPOCH, EPOCH))
        fat = f"{image}@@{offset}"
        # -m keeps the (fixed) mtimes; the rest of each entry comes from SOURCE_DATE_EPOCH.
        _run("mcopy", "-m", "-i", fat, *(str(staged / n) for n in (KERNEL_FILE, INITRD_FILE, "syslinux.cfg")), "::/")
        _run("syslinux", "--offset", str(offset), "--install", str(image))
        os.replace(image, target)
