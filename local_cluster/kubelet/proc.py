"""Processes identified beyond their pid: a pid plus its start time in
/proc/<pid>/stat survives a kubelet restart and is never mistaken for an unrelated
process that later reused the number.

Standard library only, and not even dataclasses: the sandbox trampoline imports this
module on every container start."""

from __future__ import annotations

import os


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


class ProcessIdentity:
    """A pid and its start time; immutable, equal by value."""

    __slots__ = ("pid", "start_ticks")
    pid: int
    start_ticks: int

    def __init__(self, pid: int, start_ticks: int) -> None:
        object.__setattr__(self, "pid", pid)
        object.__setattr__(self, "start_ticks", start_ticks)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ProcessIdentity is immutable: cannot set {name}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProcessIdentity):
            return NotImplemented
        return (self.pid, self.start_ticks) == (other.pid, other.start_ticks)

    def __hash__(self) -> int:
        return hash((self.pid, self.start_ticks))

    def __repr__(self) -> str:
        return f"ProcessIdentity(pid={self.pid}, start_ticks={self.start_ticks})"

    def __reduce__(self) -> tuple[type[ProcessIdentity], tuple[int, int]]:
        # copy and pickle rebuild through __init__: they would otherwise set slots one by one.
        return ProcessIdentity, (self.pid, self.start_ticks)

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

