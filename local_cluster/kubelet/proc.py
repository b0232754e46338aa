"""Processes identified beyond their pid: a pid plus its start time in
/proc/<pid>/stat survives a kubelet restart and is never mistaken for an unrelated
process that later reused the number.

Standard library only, and not even dataclasses (see record.py): the sandbox trampoline
imports this module on every container start."""

from __future__ import annotations

import os

from local_cluster.kubelet.record import Record


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses; it ends at the last ")".
    return raw[raw.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    # After the name: state is field 3, so starttime (field 22) is index 19 here.
    return int(fields[19]) if fields and len(fields) > 19 else None


class ProcessIdentity(Record):
    """A pid and its start time; immutable, equal by value."""

    __slots__ = ("pid", "start_ticks")
    pid: int
    start_ticks: int

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity | None:
        ticks = start_ticks(pid)
        return None if ticks is None else cls(pid, ticks)

    def alive(self) -> bool:
        """True while this very process exists and has not exited (zombies count as gone)."""
        fields = _stat_fields(self.pid)
        if not fields or len(fields) <= 19 or int(fields[19]) != self.start_ticks:
            return False
        return fields[0] not in ("Z", "X")

    def to_json(self) -> dict[str, int]:
        return {"pid": self.pid, "startTicks": self.start_ticks}

    @classmethod
    def from_json(cls, value: object) -> ProcessIdentity | None:
        if not isinstance(value, dict):
            return None
        return cls(int(value["pid"]), int(value["startTicks"]))


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields and len(fields) > 1 and fields[1] == str(pid):
                found.append(int(entry))
    return found


def descendants_of(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields and len(fields) > 1:
                parents.setdefault(int(fields[1]), []).append(int(entry))
    result: list[int] = []
    pending = list(parents.get(pid, []))
    while pending:
        child = pending.pop()
        result.append(child)
        pending.extend(parents.get(child, []))
    return result


def signal_group(pgid: int, signum: int) -> bool:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def signal_process(pid: int, signum: int) -> bool:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True

