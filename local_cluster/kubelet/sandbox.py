"""The kubelet side of a container's sandbox: turning a container spec, its
resolved image and the pod's prepared volumes into a SandboxSpec, and starting the
trampoline (sandbox_init) that runs it in a private mount namespace.

The trampoline starts in its own session, detached from the kubelet, so a kubelet
restart leaves containers running; the command itself gets a further session of its
own (its pid is its process group), which is what the kubelet signals.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from local_cluster.kubelet.env import expand
from local_cluster.kubelet.images import CHECKOUT_ROOT
from oci_layout.rooted_paths import UnsafePath, absolute_parts, relative_parts, resolve_in_root
from local_cluster.kubelet.proc import ProcessIdentity, descendants_of, signal_group, signal_process
from local_cluster.kubelet.sandbox_spec import STARTED_FD_ENV, MountSpec, SandboxSpec
from local_cluster.kubelet.volumes import PreparedVolume

TERMINATION_LOG = "termination-log"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
_MAX_TERMINATION_MESSAGE = 4096
_FALLBACK_LOG_LINES = 80


class MountConfigError(Exception):
    """A volumeMount or volumeDevice cannot be honoured: CreateContainerConfigError."""


def _sub_path_source(volume: PreparedVolume, sub_path: str) -> str:
    """The subPath inside the volume; it never leaves the volume, even via symlinks."""
    try:
        relative_parts(sub_path, "subPath")
    except UnsafePath as exc:
        raise MountConfigError(str(exc)) from None
    source = resolve_in_root(volume.host_path, sub_path)
    if not os.path.lexists(source):
        # As kubelet does, a missing subPath is created as a directory.
        source.mkdir(parents=True, mode=0o755)
    return str(source)


def container_mounts(
    container: dict[str, Any], volumes: dict[str, PreparedVolume], declared_env: dict[str, str]
) -> list[MountSpec]:
    mounts: list[MountSpec] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name", ""))
        if volume is None:
            raise MountConfigError(f"volumeMount {mount.get('name')!r}: no such volume in the pod")
        if volume.block:
            raise MountConfigError(f"volume {volume.name!r} is a block volume: use volumeDevices, not volumeMounts")
        try:
            absolute_parts(mount.get("mountPath"), "mountPath")
        except UnsafePath as exc:
            raise MountConfigError(str(exc)) from None
        sub_path = mount.get("subPath") or (
            expand(mount["subPathExpr"], declared_env) if mount.get("subPathExpr") else ""
        )
        source = _sub_path_source(volume, sub_path) if sub_path else str(volume.host_path)
        read_only = bool(mount.get("readOnly")) or volume.read_only
        mounts.append(MountSpec(source=source, target=mount["mountPath"], read_only=read_only))
    for device in container.get("volumeDevices") or []:
        volume = volumes.get(device.get("name", ""))
        if volume is None or not volume.block:
            raise MountConfigError(f"volumeDevice {device.get('name')!r}: no such block volume in the pod")
        try:
            absolute_parts(device.get("devicePath"), "devicePath")
        except UnsafePath as exc:
            raise MountConfigError(str(exc)) from None
        mounts.append(MountSpec(source=str(volume.host_path), target=device["devicePath"], read_only=volume.read_only))
    return mounts


def termination_log_mount(container: dict[str, Any], run_dir: Path) -> MountSpec:
    path = run_dir / TERMINATION_LOG
    path.touch(mode=0o666)
    target = container.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
    try:
        absolute_parts(target, "terminationMessagePath")
    except UnsafePath as exc:
        raise MountConfigError(str(exc)) from None
    return MountSpec(source=str(path), target=target)


def termination_message(container: dict[str, Any], run_dir: Path, log_file: Path, exit_code: int) -> str:
    """The message a container left in its termination log, or (policy
    FallbackToLogsOnError) the tail of its log when it failed without one."""
    try:
        with open(run_dir / TERMINATION_LOG, "rb") as log:
            message = log.read(_MAX_TERMINATION_MESSAGE).decode(errors="replace").strip()
    except FileNotFoundError:
        message = ""
    if message or exit_code == 0 or container.get("terminationMessagePolicy") != "FallbackToLogsOnError":
        return message
    try:
        with open(log_file, "rb") as log:
            log.seek(max(0, os.fstat(log.fileno()).st_size - _MAX_TERMINATION_MESSAGE))
            tail = log.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(tail.splitlines()[-_FALLBACK_LOG_LINES:])


# -c rather than -m: runpy and what it imports would add some 3 ms to every container start.
_TRAMPOLINE = "import sys; from local_cluster.kubelet.sandbox_init import main; sys.exit(main(sys.argv))"


def launch(spec: SandboxSpec, log_file: Path, python: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start the trampoline for spec; its stdout/stderr (and the command's) go to log_file.
    Returns it and the read end of its "started" pipe (readable once the command runs, or
    once the trampoline is gone), which the caller closes."""
    spec_path = spec.write()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    started_read, started_write = os.pipe()
    try:
        with open(log_file, "ab") as log:
            popen = subprocess.Popen(
                [python, "-S", "-c", _TRAMPOLINE, str(spec_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=spec.run_dir,
                env={"PYTHONPATH": str(CHECKOUT_ROOT), "PYTHONDONTWRITEBYTECODE": "1", "PATH": os.defpath,
                     STARTED_FD_ENV: str(started_write)},
                start_new_session=True,
                close_fds=True,
                pass_fds=(started_write,),
            )
    except BaseException:
        os.close(started_read)
        raise
    finally:
        os.close(started_write)
    return popen, started_read


def prune_runs(container_dir: Path, keep_from: int) -> None:
    """Drop the sandbox files of runs older than keep_from; logs are kept apart."""
    if not container_dir.is_dir():
        return
    for entry in container_dir.iterdir():
        if entry.name.isdigit() and int(entry.name) < keep_from:
            shutil.rmtree(entry, ignore_errors=True)


def prune_logs(log_dir: Path, keep_from: int) -> None:
    if not log_dir.is_dir():
        return
    for entry in log_dir.glob("*.log"):
        if entry.stem.isdigit() and int(entry.stem) < keep_from:
            entry.unlink(missing_ok=True)


def terminate(container: ProcessIdentity | None) -> None:
    """SIGTERM to the command's process group (its pid is the group id)."""
    if container is not None and container.alive():
        signal_group(container.pid, signal.SIGTERM)


def kill(shim: ProcessIdentity | None, container: ProcessIdentity | None) -> None:
    """SIGKILL the command's group and everything below the trampoline, which then
    reports the exit. Descendants that left the group (daemons) are found through
    the trampoline, their subreaper."""
    if container is not None and container.alive():
        signal_group(container.pid, signal.SIGKILL)
    if shim is not None and shim.alive():
        for pid in descendants_of(shim.pid):
            signal_process(pid, signal.SIGKILL)


def kill_trampoline(shim: ProcessIdentity | None) -> None:
    """Last resort when a trampoline does not report: take it down with everything
    below it. It is stopped first, so it cannot fork a container between the scan
    of its descendants and its own death (which would orphan that container)."""
    if shim is None or not shim.alive():
        return
    signal_process(shim.pid, signal.SIGSTOP)
    for pid in descendants_of(shim.pid):
        signal_process(pid, signal.SIGKILL)
    signal_process(shim.pid, signal.SIGKILL)


def wait_exit(identity: ProcessIdentity | None, timeout: float) -> bool:
    """Wait (bounded) for a process that is not our child to disappear."""
    deadline = time.monotonic() + timeout
    while identity is not None and identity.alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True

