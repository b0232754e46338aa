"""The contract between the kubelet and the sandbox trampoline (sandbox_init): what
to mount and run, and the files through which the trampoline reports back.

Everything here is already resolved on the kubelet side (image, volumes, subPaths,
environment), so the trampoline only performs mounts and the exec. Files in the
run directory:
  spec.json     this spec
  shim.json     {"pid", "startTicks"} of the trampoline, written first thing
  started.json  {"pid", "startTicks", "startedAt"} once the command was exec'd (and a
                byte on the STARTED_FD_ENV pipe, when the kubelet gave one)
  exit.json     {"exitCode", "signal", "reason", "message", "startedAt", "finishedAt"}
Standard library only, and not even dataclasses or typing: the trampoline imports this
module on every container start, where each millisecond of import delays the command.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from local_cluster.kubelet.record import Record

# typing's own import is what this avoids; annotations are never evaluated at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SPEC_FILE = "spec.json"
SHIM_FILE = "shim.json"
STARTED_FILE = "started.json"
EXIT_FILE = "exit.json"
SCRATCH_DIR = "scratch"
# The environment variable naming the trampoline's "started" pipe: it writes a byte there
# once the command was exec'd (started.json written), so the kubelet's pod worker wakes
# at once instead of finding the start at its next poll.
STARTED_FD_ENV = "SANDBOX_STARTED_FD"


class MountSpec(Record):
    __slots__ = ("source", "target", "read_only")
    _DEFAULTS = {"read_only": False}
    source: str
    # Absolute path as the container sees it.
    target: str
    read_only: bool

    def to_json(self) -> dict[str, object]:
        return self.fields()


class SandboxSpec(Record):
    __slots__ = ("argv", "env", "run_dir", "pod_tmp", "mounts", "working_dir", "rootfs", "hostname",
                 "kept_host_paths")
    _DEFAULTS = {"mounts": [], "working_dir": None, "rootfs": None, "hostname": None, "kept_host_paths": []}
    argv: list[str]
    env: dict[str, str]
    run_dir: str
    # Host directory bind-mounted at /tmp: private to the pod, shared by its containers.
    pod_tmp: str
    mounts: list[MountSpec]
    working_dir: str | None
    # The unpacked image to use as the root filesystem; None runs on the host's root.
    rootfs: str | None
    # Set for pods with their own network identity; None keeps the node's UTS namespace.
    hostname: str | None
    # Host-root containers only: host paths under /tmp that must stay visible through the
    # pod's private /tmp (this checkout and its Python, when they live there).
    kept_host_paths: list[str]

    def to_json(self) -> dict[str, Any]:
        value = self.fields()
        value["mounts"] = [mount.to_json() for mount in self.mounts]
        return value

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
        import tempfile  # only the kubelet's side writes by path: the trampoline never pays for it

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
