"""The contract between the kubelet and the sandbox trampoline (sandbox_init): what
to mount and run, and the files through which the trampoline reports back.

Everything here is already resolved on the kubelet side (image, volumes, subPaths,
environment), so the trampoline only performs mounts and the exec. Files in the
run directory:
  spec          this spec, in marshal's format
  shim.json     {"pid", "startTicks"} of the trampoline, written first thing
  started.json  {"pid", "startTicks", "startedAt"} once the command was exec'd (and a
                byte on the STARTED_FD_ENV pipe, when the kubelet gave one)
  exit.json     {"exitCode", "signal", "reason", "message", "startedAt", "finishedAt"}
Standard library only, and not even json, pathlib, dataclasses or typing: the trampoline
imports this module on every container start, where each millisecond of import delays the
command. json alone would bring re, enum and functools (some 4 ms); the spec is read with
marshal (built in, and the kubelet and the trampoline run the same Python) and the reports,
flat records of numbers and text, are written by status_json below.
"""

from __future__ import annotations

import marshal
import os

from local_cluster.kubelet.record import Record

# typing's own import is what this avoids; annotations are never evaluated at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SPEC_FILE = "spec"
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

    def write(self) -> str:
        """Write the spec into its run directory (atomically); returns the file's path."""
        run_dir = os.open(self.run_dir, os.O_PATH | os.O_DIRECTORY)
        try:
            # 0600: the container's environment, Secrets' values among it, is in there.
            _write_atomic(SPEC_FILE, marshal.dumps(self.to_json()), run_dir, 0o600)
        finally:
            os.close(run_dir)
        return os.path.join(self.run_dir, SPEC_FILE)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> SandboxSpec:
        """ValueError if the file holds no spec (FileNotFoundError if there is none)."""
        with open(path, "rb") as spec_file:
            raw = spec_file.read()
        try:
            value = marshal.loads(raw)
            return cls.from_json(value)
        except (EOFError, ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path} holds no sandbox spec: {exc}") from None


# JSON's escapes for the characters a JSON string cannot hold as they are.
_ESCAPES = {code: f"\\u{code:04x}" for code in range(0x20)} | {ord('"'): '\\"', ord("\\"): "\\\\"}


def status_json(record: dict[str, object]) -> bytes:
    """A flat record of ints, None and text as JSON (UTF-8), which json.loads reads back as
    the same record."""
    items = []
    for key, value in record.items():
        if value is None:
            text = "null"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, str):
            text = '"' + value.translate(_ESCAPES) + '"'
        else:
            raise TypeError(f"status field {key!r}: {type(value).__name__} is not a status value")
        items.append(f'"{key}": {text}')
    # backslashreplace turns a lone surrogate (from an undecodable path) into its JSON escape.
    return ("{" + ", ".join(items) + "}\n").encode("utf-8", "backslashreplace")


def write_status(name: str, record: dict[str, object], dir_fd: int) -> None:
    """A report into the run directory dir_fd (by fd: mounts may hide its path)."""
    _write_atomic(name, status_json(record), dir_fd, 0o644)


def _write_atomic(name: str, raw: bytes, dir_fd: int, mode: int) -> None:
    """Write then rename, so that a reader sees the whole file or none."""
    temp_name = f".{name}.{os.getpid()}"
    fd = os.open(temp_name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode, dir_fd=dir_fd)
    with os.fdopen(fd, "wb") as out:
        out.write(raw)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp_name, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
