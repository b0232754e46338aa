"""A DOS (MBR) partition table with one bootable partition.

Written directly (it is 66 bytes of table) rather than with sfdisk, so the disk
signature is fixed and the result never depends on the host's util-linux.
"""

from __future__ import annotations

import struct

SECTOR = 512
BOOT_CODE_SIZE = 440  # what syslinux's mbr.bin may occupy, before the signature
TYPE_FAT16_LBA = 0x0E
# CHS fields say "use LBA" (maximum values): SeaBIOS and syslinux's MBR read by LBA.
_CHS_LBA = b"\xfe\xff\xff"


def mbr(boot_code: bytes, start_lba: int, sectors: int, part_type: int, signature: int) -> bytes:
    """Sector 0: boot code, disk signature, one active partition, 0x55AA."""
    if len(boot_code) > BOOT_CODE_SIZE:
        raise ValueError(f"MBR boot code is {len(boot_code)} bytes; at most {BOOT_CODE_SIZE} fit")
    entry = b"\x80" + _CHS_LBA + bytes([part_type]) + _CHS_LBA + struct.pack("<II", start_lba, sectors)
    sector = bytearray(SECTOR)
    sector[: len(boot_code)] = boot_code
    sector[440:444] = struct.pack("<I", signature)
    sector[446 : 446 + 16] = entry
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)
