"""The sandbox trampoline and supervisor of one container run:

    python -S -c "...sandbox_init import main..." <run dir>/spec   (see sandbox.launch)

It enters a new mount namespace (private propagation, so nothing it mounts is seen
by the node), builds the container's view of the filesystem, then forks the
container process, which starts its own session and execs the command. The
trampoline stays as the container's parent for one reason: a kubelet restart must
not lose the exit code, so it waits for the command and writes exit.json itself.

As a child subreaper it also inherits everything the command leaves behind, and
kills it when the command exits, as the end of a pid namespace would.

Standard library and a few stdlib-only sibling modules only: this runs once per
container start and must start fast: json, re, enum, pathlib and datetime once cost
~10 ms before every command. What it imports now is built in or nearly so (ctypes is the
largest), and a test keeps it that way.
"""

from __future__ import annotations

import _signal as signal  # the signal module is this plus enums, which import half of the stdlib
import os
import stat
import sys
import time

from local_cluster.kubelet import linux
from oci_layout.rooted_paths import absolute_parts, make_dirs_in_root, resolve_in_root
from local_cluster.kubelet.proc import children_of, start_ticks
from local_cluster.kubelet.sandbox_spec import (
    EXIT_FILE,
    SCRATCH_DIR,
    SHIM_FILE,
    STARTED_FD_ENV,
    STARTED_FILE,
    MountSpec,
    SandboxSpec,
    write_status,
)

START_ERROR_EXIT_CODE = 128
_TEARDOWN_SECONDS = 5.0
# Signals the trampoline itself shrugs off: it must outlive the command to report it.
_SHIELDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE)


class SetupError(Exception):
    pass


def _fd_path(fd: int) -> str:
    # Mount sources are opened before the first mount: a later mount (say /tmp) could
    # otherwise hide a source path that lies below it.
    return f"/proc/self/fd/{fd}"


def _now_text() -> str:
    """Now as the API writes times (kube_client.timestamps' form), without datetime."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _bind(source_fd: int, target: str, read_only: bool) -> None:
    linux.mount(_fd_path(source_fd), target, None, linux.MS_BIND | linux.MS_REC)
    if read_only:
        linux.mount(None, target, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)


def _mount_point(root: str, container_path: str, source_is_dir: bool) -> str:
    """Find or create the mount point, resolving symlinks inside root only."""
    parts = absolute_parts(container_path, "mount path")
    if not parts:
        raise SetupError("cannot mount over the container's root directory")
    make_dirs_in_root(root, parts[:-1])
    point = resolve_in_root(root, container_path)
    try:
        is_dir = stat.S_ISDIR(os.stat(point).st_mode)
    except FileNotFoundError:
        if source_is_dir:
            os.mkdir(point, 0o755)
        else:
            os.close(os.open(point, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644))
        return point
    if is_dir != source_is_dir:
        kind = "a directory" if source_is_dir else "a file"
        raise SetupError(f"mount point {container_path} exists and is not {kind}")
    return point


def _overlay_root(spec: SandboxSpec) -> str:
    """The image rootfs as a writable overlay whose upper layer lives in a tmpfs of
    this namespace: every run starts from the pristine image, and its writes vanish
    with the namespace instead of landing in the shared unpack cache."""
    assert spec.rootfs is not None
    scratch = os.path.join(spec.run_dir, SCRATCH_DIR)
    try:
        os.mkdir(scratch)
    except FileExistsError:
        pass
    for path in (spec.rootfs, scratch):
        if any(c in path for c in ",:\\"):
            raise SetupError(f"path {path!r} cannot be used in overlay mount options")
    linux.mount("tmpfs", scratch, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=0755")
    for name in ("upper", "work", "merged"):
        os.mkdir(os.path.join(scratch, name), 0o755)
    merged = os.path.join(scratch, "merged")
    options = f"lowerdir={spec.rootfs},upperdir={scratch}/upper,workdir={scratch}/work"
    linux.mount("overlay", merged, "overlay", 0, options)
    for system_dir in ("/proc", "/sys", "/dev"):
        fd = os.open(system_dir, os.O_PATH | os.O_DIRECTORY)
        try:
            _bind(fd, _mount_point(merged, system_dir, True), False)
        finally:
            os.close(fd)
    return merged


def prepare_filesystem(spec: SandboxSpec) -> str:
    """Enter a private mount namespace and mount everything; returns the new root."""
    flags = linux.CLONE_NEWNS | (linux.CLONE_NEWUTS if spec.hostname else 0)
    linux.unshare(flags)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    # Opened in the new namespace (a bind source must belong to it), before any mount.
    sources = [(m, os.open(m.source, os.O_PATH)) for m in spec.mounts]
    tmp_fd = os.open(spec.pod_tmp, os.O_PATH | os.O_DIRECTORY)
    kept = [] if spec.rootfs else [(path, os.open(path, os.O_PATH | os.O_DIRECTORY))
                                   for path in _under_tmp(spec.kept_host_paths)]
    if spec.hostname:
        linux.sethostname(spec.hostname)
    root = _overlay_root(spec) if spec.rootfs else "/"
    _bind(tmp_fd, _mount_point(root, "/tmp", True), False)
    for path, fd in kept:
        _bind(fd, _mount_point(root, path, True), False)
        os.close(fd)
    # Parents before children, so /a/b is not hidden by a later mount at /a.
    for mount, fd in sorted(sources, key=lambda item: len(absolute_parts(item[0].target, "mount path"))):
        _mount_one(root, mount, fd)
    for _, fd in sources:
        os.close(fd)
    os.close(tmp_fd)
    return root


def _under_tmp(paths: list[str]) -> list[str]:
    """The existing paths below /tmp, outermost first and without ones nested in another."""
    found: list[str] = []
    for path in sorted({os.path.realpath(p) for p in paths}, key=len):
        if path.startswith("/tmp/") and os.path.isdir(path) and not any(
                path == k or path.startswith(k + "/") for k in found):
            found.append(path)
    return found


def _mount_one(root: str, mount: MountSpec, fd: int) -> None:
    source_is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
    _bind(fd, _mount_point(root, mount.target, source_is_dir), mount.read_only)


def _exec_child(spec: SandboxSpec, root_fd: int | None, error_w: int) -> None:
    """In the forked child: become the container process. Never returns."""
    try:
        os.setsid()
        for signum in _SHIELDED:
            signal.signal(signum, signal.SIG_DFL)
        if root_fd is not None:
            os.fchdir(root_fd)
            os.chroot(".")
        workdir = spec.working_dir or "/"
        if spec.rootfs is not None or not os.path.isdir(workdir):
            make_dirs_in_root("/", absolute_parts(workdir, "workingDir"))
        os.chdir(workdir)
        os.execvpe(spec.argv[0], spec.argv, spec.env)
    except BaseException as exc:  # noqa: BLE001 - anything here must reach the parent
        try:
            os.write(error_w, f"{spec.argv[0] if spec.argv else '<no command>'}: {exc}".encode())
        finally:
            os._exit(127)


def _start(spec: SandboxSpec, root: str) -> tuple[int, str | None]:
    """Fork and exec; returns (pid, error). The pipe closes on a successful exec."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY) if spec.rootfs else None
    error_r, error_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(error_r)
        _exec_child(spec, root_fd, error_w)
    os.close(error_w)
    if root_fd is not None:
        os.close(root_fd)
    chunks = []
    while chunk := os.read(error_r, 4096):
        chunks.append(chunk)
    os.close(error_r)
    return pid, (b"".join(chunks).decode(errors="replace") or None)


def _wait_for(pid: int) -> int:
    """Reap everything that dies until pid does; returns pid's wait status."""
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        if reaped == pid:
            return status


def _tear_down(pid: int) -> None:
    """Kill what the command left behind, including orphans reparented to us."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + _TEARDOWN_SECONDS
    while time.monotonic() < deadline:
        for child in children_of(os.getpid()):
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            reaped, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if reaped == 0:
            time.sleep(0.01)


def _exit_record(status: int, started_at: str) -> dict[str, object]:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        import signal as signals  # the names: only once the command is over

        code, message = 128 + signum, f"killed by signal {signals.Signals(signum).name}"
    else:
        signum, code, message = None, os.WEXITSTATUS(status), ""
    return {
        "exitCode": code,
        "signal": signum,
        "reason": "Completed" if code == 0 else "Error",
        "message": message,
        "startedAt": started_at,
        "finishedAt": _now_text(),
    }


def _start_error(message: str, started_at: str) -> dict[str, object]:
    return {
        "exitCode": START_ERROR_EXIT_CODE,
        "signal": None,
        "reason": "StartError",
        "message": message,
        "startedAt": started_at,
        "finishedAt": _now_text(),
    }


def _started_pipe() -> int | None:
    """The kubelet's "started" pipe, if it gave one; never inherited by the command."""
    value = os.environ.get(STARTED_FD_ENV)
    if not value or not value.isdigit():
        return None
    fd = int(value)
    try:
        os.set_inheritable(fd, False)
    except OSError:
        return None
    return fd


def _announce_started(fd: int | None) -> None:
    if fd is None:
        return
    try:
        os.write(fd, b"1")
    except OSError:
        pass  # a kubelet that restarted since holds no read end: it polls instead
    finally:
        os.close(fd)


def run(spec: SandboxSpec) -> int:
    started_pipe = _started_pipe()
    run_dir = os.open(spec.run_dir, os.O_PATH | os.O_DIRECTORY)
    # Announce ourselves before anything else: a kubelet that died between starting
    # us and recording our pid finds us here.
    write_status(SHIM_FILE, {"pid": os.getpid(), "startTicks": start_ticks(os.getpid())}, run_dir)
    for signum in _SHIELDED:
        signal.signal(signum, signal.SIG_IGN)
    linux.set_child_subreaper()
    started_at = _now_text()
    try:
        root = prepare_filesystem(spec)
    except (OSError, SetupError, ValueError) as exc:
        write_status(EXIT_FILE, _start_error(f"sandbox setup failed: {exc}", started_at), run_dir)
        return 0
    pid, error = _start(spec, root)
    if error is not None:
        _wait_for(pid)
        write_status(EXIT_FILE, _start_error(f"exec failed: {error}", started_at), run_dir)
        return 0
    started_at = _now_text()
    write_status(STARTED_FILE, {"pid": pid, "startTicks": start_ticks(pid), "startedAt": started_at}, run_dir)
    _announce_started(started_pipe)
    status = _wait_for(pid)
    record = _exit_record(status, started_at)
    _tear_down(pid)
    write_status(EXIT_FILE, record, run_dir)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: sandbox_init <spec>\n")
        return 2
    return run(SandboxSpec.read(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
