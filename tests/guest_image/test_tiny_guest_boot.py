"""The tiny test guest really boots under QEMU TCG: from its disk (SeaBIOS +
syslinux) and from its kernel and initramfs directly; it finds NoCloud and
ConfigDrive data, runs user-data, mounts extra disks, counts, and powers off on
the ACPI power button."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from tiny_guest_qemu import QemuGuest, config_drive_iso, nocloud_iso, overlay

from guest_image import layout, markers

pytestmark = pytest.mark.slow

# Measured on the 2-core development machine: about 6 s from QEMU start to COUNTER 1.
BOOT_TIMEOUT = 60


def _index(lines: list[str], line: str) -> int:
    return next(i for i, candidate in enumerate(lines) if candidate.endswith(line))


def _assert_in_order(guest: QemuGuest, expected: list[str]) -> None:
    lines = guest.lines()
    positions = [_index(lines, line) for line in expected]
    assert positions == sorted(positions), f"out of order: {expected}\n{guest.diagnostics()}"


def _report(name: str, guest: QemuGuest) -> None:
    timings = ", ".join(f"{pattern!r} {seconds:.1f}s" for pattern, seconds in guest.seen.items())
    print(f"{name}: {timings}")


def _ext4_disk(path: Path, files: dict[str, str]) -> Path:
    content = path.with_suffix(".d")
    content.mkdir()
    for name, text in files.items():
        (content / name).write_text(text)
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-L", "data", "-d", str(content), str(path), "16M"], check=True, capture_output=True
    )
    return path


def test_disk_boots_nocloud_runs_user_data_and_counts(
    guest_outputs: layout.Outputs, guest_dir: Path, start_qemu: Callable[..., QemuGuest]
) -> None:
    # q35 as KubeVirt uses: the disk on virtio, the NoCloud ISO as a SATA (AHCI)
    # CD-ROM, and an extra ext4 virtio disk whose file the script reads.
    marker = f"echoed-{uuid.uuid4().hex}"
    secret = f"on-disk-{uuid.uuid4().hex}"
    iid = f"iid-{uuid.uuid4().hex[:12]}"
    user_data = f"#!/bin/sh\necho {marker}\ncat /mnt/vdb/hello.txt\n".encode()
    iso = nocloud_iso(guest_dir / "cidata.iso", user_data, f"instance-id: {iid}\nlocal-hostname: tiny\n".encode())
    data = _ext4_disk(guest_dir / "data.img", {"hello.txt": secret + "\n"})
    guest = start_qemu([
        "-drive", f"file={overlay(guest_outputs.disk, guest_dir)},if=virtio,format=qcow2",
        "-drive", f"file={data},if=virtio,format=raw",
        "-drive", f"file={iso},if=ide,media=cdrom,format=raw,readonly=on",
    ])  # fmt: skip

    guest.wait_for(markers.BOOTED, BOOT_TIMEOUT)
    [line] = guest.wait_for(markers.DATASOURCE, BOOT_TIMEOUT)
    assert markers.datasource(line) == ("cidata", iid)
    guest.wait_for(f"^{marker}$", BOOT_TIMEOUT)
    guest.wait_for(f"^{secret}$", BOOT_TIMEOUT)
    [done] = guest.wait_for(markers.USERDATA_DONE, BOOT_TIMEOUT)
    assert markers.userdata_exit_code(done) == 0
    counters = guest.wait_for(markers.COUNTER, BOOT_TIMEOUT, count=2)
    assert [markers.counter_value(c) for c in counters] == [1, 2]
    _assert_in_order(guest, [
        markers.BOOTED, f"{markers.DATASOURCE} cidata {iid}", f"{markers.MOUNTED} /dev/vdb /mnt/vdb",
        marker, secret, f"{markers.USERDATA_DONE} 0", f"{markers.COUNTER} 1", f"{markers.COUNTER} 2",
    ])  # fmt: skip
    _report("disk boot, NoCloud", guest)


def test_kernel_boot_with_config_drive(
    guest_outputs: layout.Outputs, guest_dir: Path, start_qemu: Callable[..., QemuGuest]
) -> None:
    # The pc machine this time: the ConfigDrive ISO sits on PIIX IDE. The script's
    # exit code is reported as it is.
    marker = f"echoed-{uuid.uuid4().hex}"
    instance = str(uuid.uuid4())
    user_data = f'#!/bin/sh\necho "{marker} $(hostname)"\nexit 3\n'.encode()
    iso = config_drive_iso(guest_dir / "config-2.iso", user_data, {"uuid": instance, "hostname": "cfgdrive"})
    guest = start_qemu(
        [
            "-kernel", str(guest_outputs.vmlinuz), "-initrd", str(guest_outputs.initramfs),
            "-append", f"{layout.KERNEL_CMDLINE} panic=-1",
            "-drive", f"file={iso},if=ide,media=cdrom,format=raw,readonly=on",
        ],
        machine="pc",
    )  # fmt: skip

    [line] = guest.wait_for(markers.DATASOURCE, BOOT_TIMEOUT)
    assert markers.datasource(line) == ("config-2", instance)
    guest.wait_for(f"^{marker} cfgdrive$", BOOT_TIMEOUT)
    [done] = guest.wait_for(markers.USERDATA_DONE, BOOT_TIMEOUT)
    assert markers.userdata_exit_code(done) == 3
    guest.wait_for(markers.COUNTER, BOOT_TIMEOUT, count=2)
    _report("kernel boot, ConfigDrive", guest)


def test_acpi_power_button_powers_off(
    guest_outputs: layout.Outputs, guest_dir: Path, start_qemu: Callable[..., QemuGuest]
) -> None:
    # No data source at all (and a short wait for one), then QMP system_powerdown,
    # which is what libvirt's ACPI shutdown (virsh shutdown) sends.
    guest = start_qemu([
        "-kernel", str(guest_outputs.vmlinuz), "-initrd", str(guest_outputs.initramfs),
        "-append", f"{layout.KERNEL_CMDLINE} panic=-1 kvpy.dswait=1",
    ])  # fmt: skip
    [line] = guest.wait_for(markers.DATASOURCE, BOOT_TIMEOUT)
    assert markers.datasource(line) == ("none", None)
    guest.wait_for(f"{markers.USERDATA_SKIPPED} none", BOOT_TIMEOUT)
    guest.wait_for(markers.COUNTER, BOOT_TIMEOUT)

    pressed = time.monotonic()
    guest.qmp("system_powerdown")
    assert guest.wait_exit(15) == 0, guest.diagnostics()
    print(f"ACPI power-off: QEMU exited {time.monotonic() - pressed:.1f}s after system_powerdown")
    assert markers.POWEROFF in guest.text()
    _report("kernel boot, power button", guest)
