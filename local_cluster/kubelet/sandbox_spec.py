"""The contract between the kubelet and the sandbox trampoline (sandbox_init): what
to mount and run, and the files through which the trampoline reports back.

Everything here is already resolved on the kubelet side (image, volumes, subPaths,
environment), so the trampoline only performs mounts and the exec. Files in the
run directory:
  spec.json     this spec
  shim.json     {"pid", "startTicks"} of the trampoline, written first thing
  started.json  {"pid", "startTicks", "startedAt"} once the command was exec'd
  exit.json     {"exitCode", "signal", "reason", "message", "startedAt", "finishedAt"}
Standard library only: the trampoline imports this module.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SPEC_FILE = "spec.json"
SHIM_FILE = "shim.json"
STARTED_FILE = "started.json"
EXIT_FILE = "exit.json"
SCRATCH_DIR = "scratch"


@dataclass(frozen=True)
class MountSpec:
    source: str
    # Absolute path as the container sees it.
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class SandboxSpec:
    argv: list[str]
    env: dict[str, str]
    run_dir: str
    # Host directory bind-mounted at /tmp: private to the pod, shared by its containers.
    pod_tmp: str
    mounts: list[MountSpec] = field(default_factory=list)
    working_dir: str | None = None
    # The unpacked image to use as the root filesystem; None runs on the host's root.
    rootfs: str | None = None
    # Set for pods with their own network identity; None keeps the node's UTS namespace.
    hostname: str | None = None
    # Host-root containers only: host paths under /tmp that must stay visible through the
    # pod's private /tmp (this checkout and its Python, when they live there).
    kept_host_paths: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SandboxSpec:
        mounts = [MountSpec(**m) for m in value.get("mounts") or []]
        return cls(**{**value, "mounts": mounts})

    def write(self) -> Path:
        path = Path(self.run_dir) / SPEC_FILE
        write_json_atomic(path, self.to_json())
        return path

    @classmethod
    def read(cls, path: Path) -> SandboxSpec:
        return cls.from_json(json.loads(path.read_text()))


def write_json_atomic(path: Path, value: Any, *, dir_fd: int | None = None) -> None:
    """Write then rename, so a reader sees the whole file or none. With dir_fd, path
    is a bare name relative to that directory (used after mounts may hide paths)."""
    raw = json.dumps(value, indent=1, sort_keys=True).encode()
    if dir_fd is None:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
        return
    temp_name = f".{path.name}.{os.getpid()}"
    fd = os.open(temp_name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=dir_fd)
    with os.fdopen(fd, "wb") as out:
        out.write(raw)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp_name, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
