"""The lines the guest prints on its serial console (ttyS0), one per line.

They are the guest's whole protocol with the tests: a test boots the guest and
waits for these lines instead of logging in. The /init script prints them
(init_script.py builds it from these constants, so the two cannot drift apart).
"""

from __future__ import annotations

import re

PREFIX = "KUBEVIRT-PY-GUEST"

# After the kernel modules are loaded: userspace runs and can see its disks.
BOOTED = f"{PREFIX} BOOTED"
# "<PREFIX> DATASOURCE <label> <instance-id>" or "<PREFIX> DATASOURCE none".
DATASOURCE = f"{PREFIX} DATASOURCE"
# "<PREFIX> MOUNTED <device> <mountpoint>" for every extra disk with a filesystem.
MOUNTED = f"{PREFIX} MOUNTED"
# "<PREFIX> USERDATA DONE <exit code>" after a "#!" user-data script ran.
USERDATA_DONE = f"{PREFIX} USERDATA DONE"
# "<PREFIX> USERDATA SKIPPED <reason>" when there is no runnable user-data.
USERDATA_SKIPPED = f"{PREFIX} USERDATA SKIPPED"
# "<PREFIX> COUNTER <n>", n = 1, 2, ... once a second, forever: a guest that kept
# counting across a migration kept running.
COUNTER = f"{PREFIX} COUNTER"
# Printed by the ACPI power-button handler just before the guest powers off.
POWEROFF = f"{PREFIX} POWEROFF"

_COUNTER_LINE = re.compile(rf"{re.escape(COUNTER)} (\d+)\s*$")
_DATASOURCE_LINE = re.compile(rf"{re.escape(DATASOURCE)} (\S+)(?: (\S+))?\s*$")
_USERDATA_DONE_LINE = re.compile(rf"{re.escape(USERDATA_DONE)} (\d+)\s*$")


def counter_value(line: str) -> int | None:
    """The n of a COUNTER line, or None for any other line."""
    match = _COUNTER_LINE.search(line)
    return int(match.group(1)) if match else None


def datasource(line: str) -> tuple[str, str | None] | None:
    """(label, instance id or None) of a DATASOURCE line; label is "none" without one."""
    match = _DATASOURCE_LINE.search(line)
    return (match.group(1), match.group(2)) if match else None


def userdata_exit_code(line: str) -> int | None:
    """The exit code of a USERDATA DONE line, or None for any other line."""
    match = _USERDATA_DONE_LINE.search(line)
    return int(match.group(1)) if match else None
