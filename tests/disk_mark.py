"""A guest that proves a disk's bytes moved: its user-data writes a mark to a raw disk of a
known size, then prints the disk's first bytes every second with its page cache dropped, so
each printed line shows what the disk under the guest holds at that moment."""

from __future__ import annotations

SIZE_MIB = 16
LINE = "SCRATCH [{}]"


def user_data(mark: str) -> str:
    sectors = SIZE_MIB * 2048
    return f"""#!/bin/sh
for d in /sys/block/vd*; do [ "$(cat $d/size)" = {sectors} ] && disk=/dev/${{d##*/}}; done
printf {mark} | dd of=$disk conv=notrunc 2>/dev/null && sync
(while sleep 1; do echo 3 > /proc/sys/vm/drop_caches; echo "SCRATCH [$(head -c {len(mark)} $disk)]"; done) \\
  </dev/null >/dev/console 2>&1 &
"""


def volume(name: str = "scratch") -> dict:
    return {"name": name, "emptyDisk": {"capacity": f"{SIZE_MIB}Mi"}}


def shows(text: str, mark: str) -> bool:
    """Whether the guest read the mark back (and never an empty disk) in ``text``."""
    return LINE.format(mark) in text and LINE.format("") not in text
