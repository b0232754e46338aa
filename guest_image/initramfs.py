"""The initramfs: static busybox, the kernel modules the guest needs, /init.

The guest has no root filesystem beyond this archive; it lives in RAM, so it is
small (a few MiB) and the boot is fast under TCG.
"""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

from guest_image import init_script
from guest_image.cpio import Archive
from guest_image.kmod import Module, ModuleTree
from guest_image.reproducible import EPOCH

BUSYBOX = Path("/bin/busybox")  # from busybox-static: no libraries to copy

# What the guest must load to see its disks and data sources under QEMU's pc
# (i440fx: PIIX IDE for -cdrom) and q35 (ICH9 AHCI) machines, and KubeVirt's
# virtio and SATA disks. Built-in entries are skipped, their dependencies resolved.
GUEST_MODULES: tuple[str, ...] = (
    # virtio transport and devices: disks, SCSI (KubeVirt's "scsi" bus), NICs
    "virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net",
    # SATA (q35, KubeVirt's "sata" bus) and IDE (pc machine -cdrom) controllers
    "ahci", "ata_piix",
    # SCSI disks and CD-ROMs on those controllers
    "sd_mod", "sr_mod",
    # ext4 and jbd2 ask the crypto API for "crc32c" by name (their softdep names an
    # alias, not a module); the generic one runs on any CPU (TCG's default CPU lacks
    # the SSE4.2 that crc32c-intel needs). Listed before ext4 so it loads first.
    "crc32c_generic",
    # filesystems: ISO 9660 (cloud-init ISOs), FAT (vfat cidata, the boot disk), ext4
    # (vfat's default charsets here: codepage 437 and iocharset "ascii")
    "isofs", "vfat", "nls_cp437", "nls_ascii", "nls_iso8859_1", "nls_utf8", "ext4",
    # ACPI power button as an input event for acpid
    "button", "evdev",
)  # fmt: skip

MODULE_LIST_PATH = init_script.MODULE_LIST


def busybox_applets(busybox: Path = BUSYBOX) -> list[str]:
    """Applet paths as busybox lists them ("bin/sh", "sbin/poweroff", ...)."""
    out = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True, text=True).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def build_initramfs(tree: ModuleTree, busybox: Path = BUSYBOX) -> tuple[bytes, list[Module]]:
    """The gzip-compressed newc archive, and the modules it loads in order."""
    modules = tree.load_order(list(GUEST_MODULES))
    archive = Archive()
    for directory in ("proc", "sys", "dev", "run", "tmp", "mnt", "root", "etc/acpi", "var"):
        archive.directory(directory)
    archive.directory("tmp", 0o1777)
    archive.directory("root", 0o700)
    # The kernel opens /dev/console for PID 1's stdio before /init can mount devtmpfs.
    archive.char_device("dev/console", 5, 1)
    archive.symlink("var/run", "../run")
    archive.symlink("var/log", "../run/log")

    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in busybox_applets(busybox):
        if applet != "bin/busybox":
            depth = applet.count("/")
            archive.symlink(applet, "../" * depth + "bin/busybox")

    archive.file("init", init_script.init().encode(), 0o755)
    archive.file(init_script.POWER_BUTTON.lstrip("/"), init_script.power_button().encode(), 0o755)
    archive.file(init_script.ACPID_CONF.lstrip("/"), init_script.acpid_conf().encode())
    archive.file(init_script.UDHCPC_SCRIPT.lstrip("/"), init_script.udhcpc().encode(), 0o755)
    archive.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    archive.file("etc/group", b"root:x:0:\n")
    archive.file("etc/hostname", b"tiny-guest\n")

    moddir = f"lib/modules/{tree.version}"
    for module in modules:
        archive.file(f"{moddir}/{module.path}", (tree.root / module.path).read_bytes())
    archive.file(MODULE_LIST_PATH.lstrip("/"), "".join(f"{m.path}\n" for m in modules).encode())
    # A modules.dep for what is included, so scripts can `modprobe` them too.
    by_name = {m.name: m for m in modules}
    dep_lines = []
    for module in modules:
        deps = [by_name[d].path for d in module.depends if d in by_name]
        dep_lines.append(f"{module.path}: {' '.join(deps)}".rstrip() + "\n")
    archive.file(f"{moddir}/modules.dep", "".join(dep_lines).encode())

    raw = archive.to_bytes(mtime=EPOCH)
    # mtime=0 and no file name in the gzip header: the same archive gives the same bytes.
    return gzip.compress(raw, compresslevel=9, mtime=0), modules
