"""Node-local facts the converter needs beside the VMI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class AttachableDisk(Protocol):
    """What storage preparation hands over for one volume."""

    path: Path
    format: str        # "raw" | "qcow2"
    type: str          # "file" | "block"
    read_only: bool


@dataclass(frozen=True)
class DomainOptions:
    domain_type: str                 # "kvm", or "qemu" for TCG emulation
    serial_socket: Path              # the console's unix socket (libvirt binds it)
    serial_log: Path | None = None   # also keep what the guest prints on its serial port
    emulator: str = "/usr/bin/qemu-system-x86_64"
    kernel: Path | None = None       # kernelBoot, already extracted from its image
    initrd: Path | None = None
    efi_code: Path | None = None     # OVMF code for EFI guests, when installed
    efi_vars_template: Path | None = None
    nvram: Path | None = None
