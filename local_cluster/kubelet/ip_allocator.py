"""Pod IPs for one simulated node: every pod gets its own loopback address
127.<node-index>.<x>.<y>, since all nodes share one machine and all of 127/8 is
local. Allocations persist in the node's state directory, so a kubelet restart
keeps every pod's address and never hands one out twice."""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class AddressesExhausted(RuntimeError):
    pass


def node_host_ip(node_index: int) -> str:
    return f"127.{node_index}.0.1"


class LoopbackIPAllocator:
    def __init__(self, state_file: Path, node_index: int) -> None:
        if not 0 <= node_index <= 255:
            raise ValueError(f"node index {node_index} must be within 0..255")
        self.state_file = state_file
        self.node_index = node_index
        self._reserved = {node_host_ip(node_index), "127.0.0.1"}

    @contextmanager
    def _locked(self) -> Iterator[dict[str, object]]:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.state_file.with_name(self.state_file.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(self.state_file.read_text())
            except FileNotFoundError:
                state = {"allocations": {}, "last": None}
            yield state
            fd, temp = tempfile.mkstemp(prefix=".ips-", dir=self.state_file.parent)
            with os.fdopen(fd, "w") as out:
                json.dump(state, out, indent=1, sort_keys=True)
            os.replace(temp, self.state_file)

    def _candidates(self, after: str | None) -> Iterator[str]:
        # Round-robin from the last grant, so a released address is not reused at once.
        base = int(ipaddress.IPv4Address(f"127.{self.node_index}.0.0"))
        start = int(ipaddress.IPv4Address(after)) - base + 1 if after else 0
        for offset in range(1 << 16):
            low = (start + offset) % (1 << 16)
            if low & 0xFF in (0, 255):
                continue
            address = str(ipaddress.IPv4Address(base + low))
            if address not in self._reserved:
                yield address

    def allocate(self, owner: str) -> str:
        """The owner's address; the same one again if it already has one."""
        with self._locked() as state:
            allocations: dict[str, str] = state["allocations"]  # type: ignore[assignment]
            if owner in allocations:
                return allocations[owner]
            used = set(allocations.values())
            for address in self._candidates(state.get("last")):  # type: ignore[arg-type]
                if address not in used:
                    allocations[owner] = address
                    state["last"] = address
                    return address
        raise AddressesExhausted(f"no free pod address left on node {self.node_index}")

    def release(self, owner: str) -> None:
        with self._locked() as state:
            state["allocations"].pop(owner, None)  # type: ignore[union-attr]

    def allocations(self) -> dict[str, str]:
        with self._locked() as state:
            return dict(state["allocations"])  # type: ignore[arg-type]
