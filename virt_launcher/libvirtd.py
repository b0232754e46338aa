"""The launcher's own libvirtd, in its own mount namespace, as upstream runs one per pod.

libvirt's state directories (/run/libvirt, /var/lib/libvirt, /var/log/libvirt) are
private tmpfs mounts in that namespace, and /etc/libvirt is our generated
configuration, so launchers on one machine never see each other's domains. The
control socket lives in the launcher's working directory, reachable from outside
the namespace. The QEMU capabilities cache is shared per node: probing QEMU costs
seconds, and every launcher would otherwise pay it again.

Standard library only at import: the launcher spawns its libvirtd before importing
anything heavy, so the daemon's start overlaps the launcher's own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import libvirt

LIBVIRTD = shutil.which("libvirtd") or "/usr/sbin/libvirtd"
DEFAULT_CAPS_CACHE = Path("/var/cache/kubevirt-py/libvirt")
START_TIMEOUT = 30.0
# libvirtd answers some 50 ms after its exec: a coarse poll would add most of that again.
READY_POLL_SECONDS = 0.005
STOP_TIMEOUT = 10.0

_LIBVIRTD_CONF = """\
unix_sock_dir = "{sock_dir}"
unix_sock_ro_perms = "0600"
unix_sock_rw_perms = "0600"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:{log}"
"""
# QEMU runs as root without a security driver: the pod is the isolation boundary.
# stdio_handler=file keeps virtlogd (a second daemon) out of the picture.
_QEMU_CONF = """\
user = "root"
group = "root"
security_driver = "none"
stdio_handler = "file"
"""
# The daemon's private state directories: empty tmpfs mounts in its own mount namespace.
_STATE_DIRS = ("/run/libvirt", "/var/lib/libvirt", "/var/log/libvirt")
_CACHE_DIR = "/var/cache/libvirt"
# One `mount -a` over a generated fstab, rather than a mkdir and a mount process per
# directory: eight process starts fewer before libvirtd's own (~10 ms of its start).
_MOUNT_SCRIPT = """\
set -e
mount -a -T "$CONF_DIR/fstab"
exec "$LIBVIRTD" --config "$CONF_DIR/libvirtd.conf" --pid-file "$SOCK_DIR/libvirtd.pid"
"""


def _fstab_field(path: str | Path) -> str:
    """A path as an fstab field: blanks and backslashes octal-escaped, as fstab(5) wants."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in str(path))


def _fstab(conf_dir: Path, caps_cache: Path) -> str:
    # A tmpfs source of our own: mount -a skips an entry whose source is already mounted
    # at its target, and the host's own "tmpfs" must never stand in for the private one.
    lines = [f"kubevirt-py-libvirt {target} tmpfs mode=0700 0 0" for target in _STATE_DIRS]
    lines.append(f"{_fstab_field(caps_cache)} {_CACHE_DIR} none bind 0 0")
    lines.append(f"{_fstab_field(conf_dir)} /etc/libvirt none bind 0 0")
    return "\n".join(lines) + "\n"


class LibvirtdError(RuntimeError):
    pass


class Libvirtd:
    def __init__(self, work_dir: Path, caps_cache: Path = DEFAULT_CAPS_CACHE) -> None:
        self.work_dir = Path(work_dir)
        self.conf_dir = self.work_dir / "libvirt-conf"
        self.sock_dir = self.work_dir / "libvirt"
        self.log_path = self.work_dir / "libvirtd.log"
        self.caps_cache = Path(caps_cache)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        """The read-write control socket: the launcher's, and a migration source's via relay."""
        return self.sock_dir / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu:///system?socket={self.socket}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        """Start the daemon without waiting for it (once; again only after stop)."""
        if self._process is not None:
            return
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.sock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.conf_dir / "libvirtd.conf").write_text(_LIBVIRTD_CONF.format(sock_dir=self.sock_dir,
                                                                            log=self.log_path))
        (self.conf_dir / "qemu.conf").write_text(_QEMU_CONF)
        (self.conf_dir / "fstab").write_text(_fstab(self.conf_dir, self.caps_cache))
        self.caps_cache.mkdir(parents=True, exist_ok=True)
        for mount_point in (*_STATE_DIRS, _CACHE_DIR):  # the same directories inside the namespace
            os.makedirs(mount_point, exist_ok=True)
        socket = self.socket
        socket.unlink(missing_ok=True)
        environment = {**os.environ, "CONF_DIR": str(self.conf_dir), "SOCK_DIR": str(self.sock_dir),
                       "LIBVIRTD": LIBVIRTD}
        with open(self.work_dir / "libvirtd.stdout", "ab") as output:
            self._process = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", _MOUNT_SCRIPT],
                env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> None:
        """Until the spawned daemon serves its socket; stopped and raised if it never does."""
        self.connect().close()

    def connect(self) -> libvirt.virConnect:
        """The spawned daemon's first accepted connection, once it serves its socket: the
        launcher's own, rather than a probe and then a second connect. Stopped and raised
        if it never answers."""
        import libvirt  # here, not at the top: see the module's docstring

        if self._process is None:
            raise LibvirtdError("libvirtd was not spawned")
        socket = self.socket
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise LibvirtdError(f"libvirtd exited with {self._process.returncode} while starting: "
                                    f"{self._tail()}")
            if socket.exists():
                try:
                    return libvirt.open(self.uri)
                except libvirt.libvirtError:
                    pass
            time.sleep(READY_POLL_SECONDS)
        self.stop()
        raise LibvirtdError(f"libvirtd did not answer within {START_TIMEOUT:.0f}s: {self._tail()}")

    def _tail(self) -> str:
        text = ""
        for path in (self.work_dir / "libvirtd.stdout", self.log_path):
            if path.exists():
                text += path.read_text(errors="replace")[-1500:]
        return text.strip() or "(no output)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
