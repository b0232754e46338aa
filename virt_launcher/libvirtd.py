"""The launcher's own libvirtd, in its own mount namespace, as upstream runs one per pod.

libvirt's state directories (/run/libvirt, /var/lib/libvirt, /var/log/libvirt) are
private tmpfs mounts in that namespace, and /etc/libvirt is our generated
configuration, so launchers on one machine never see each other's domains. The
control socket lives in the launcher's working directory, reachable from outside
the namespace. The QEMU capabilities cache is shared per node: probing QEMU costs
seconds, and every launcher would otherwise pay it again.

Like upstream's virtqemud, the daemon loads the QEMU driver and nothing else: guests
use user-mode networking and plain file or block disks, so libvirt's network,
nwfilter, storage, secret, nodedev and interface drivers would only cost start-up
(they probe firewalls and helpers: half the daemon's start CPU) and memory.

Standard library only at import: the launcher spawns its libvirtd before importing
anything heavy, so the daemon's start overlaps the launcher's own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    import libvirt

LIBVIRTD = shutil.which("libvirtd") or "/usr/sbin/libvirtd"
DEFAULT_CAPS_CACHE = Path("/var/cache/kubevirt-py/libvirt")
START_TIMEOUT = 30.0
# libvirtd answers some 50 ms after its exec: a coarse poll would add most of that again.
READY_POLL_SECONDS = 0.005
STOP_TIMEOUT = 10.0
_QEMU_DRIVER_MODULE = "libvirt_driver_qemu.so"

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


def _system_driver_dirs() -> tuple[Path, ...]:
    """Where distributions install libvirt's connection-driver modules."""
    return tuple(Path(lib) / "libvirt" / "connection-driver"
                 for lib in (f"/usr/lib/{os.uname().machine}-linux-gnu", "/usr/lib64", "/usr/lib"))


def _qemu_driver_module() -> Path | None:
    for directory in _system_driver_dirs():
        if (directory / _QEMU_DRIVER_MODULE).is_file():
            return directory / _QEMU_DRIVER_MODULE
    return None


class LibvirtdError(RuntimeError):
    pass


class Libvirtd:
    def __init__(self, work_dir: Path, caps_cache: Path = DEFAULT_CAPS_CACHE) -> None:
        self.work_dir = Path(work_dir)
        self.conf_dir = self.work_dir / "libvirt-conf"
        self.sock_dir = self.work_dir / "libvirt"
        self.log_path = self.work_dir / "libvirtd.log"
        self.driver_dir = self.work_dir / "libvirt-drivers"
        self.caps_cache = Path(caps_cache)
        self._process: subprocess.Popen[bytes] | None = None
        self._ahead: _Connecting | None = None

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
                       "LIBVIRTD": LIBVIRTD, **self._driver_environment()}
        with open(self.work_dir / "libvirtd.stdout", "ab") as output:
            self._process = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", _MOUNT_SCRIPT],
                env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    def _driver_environment(self) -> dict[str, str]:
        """LIBVIRT_DRIVER_DIR naming a directory that holds the QEMU driver alone; none
        (every installed driver) where the module is not found."""
        module = _qemu_driver_module()
        if module is None:
            return {}
        self.driver_dir.mkdir(exist_ok=True)
        link = self.driver_dir / _QEMU_DRIVER_MODULE
        link.unlink(missing_ok=True)
        link.symlink_to(module)
        return {"LIBVIRT_DRIVER_DIR": str(self.driver_dir)}

    def wait_ready(self) -> None:
        """Until the spawned daemon serves its socket; stopped and raised if it never does."""
        self.connect().close()

    def connect_ahead(self) -> None:
        """Open the launcher's connection from a thread as soon as the daemon serves, and
        have the daemon load QEMU's capabilities on it (~15 ms of its CPU, which the first
        defineXML would otherwise wait for): both then overlap the caller's own start.
        connect() hands that connection over once both are done. Open libvirt's event loop
        before this if the connection should deliver events. Once per spawn."""
        import libvirt  # here, in the caller's thread: see the module's docstring

        if self._ahead is None and self._process is not None:
            self._ahead = _Connecting(self._open, libvirt.libvirtError)
            self._ahead.start()

    def connect(self) -> libvirt.virConnect:
        """The spawned daemon's first accepted connection, once it serves its socket (the
        one connect_ahead opened, if it was called): the launcher's own, rather than a
        probe and then a second connect. Stopped and raised if it never answers."""
        ahead, self._ahead = self._ahead, None
        try:
            return ahead.connection() if ahead is not None else self._open()
        except LibvirtdError:
            self.stop()
            raise

    def _open(self) -> libvirt.virConnect:
        import libvirt

        process = self._process
        if process is None:
            raise LibvirtdError("libvirtd was not spawned")
        socket = self.socket
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LibvirtdError(f"libvirtd exited with {process.returncode} while starting: {self._tail()}")
            if socket.exists():
                try:
                    return libvirt.open(self.uri)
                except libvirt.libvirtError:
                    pass
            time.sleep(READY_POLL_SECONDS)
        raise LibvirtdError(f"libvirtd did not answer within {START_TIMEOUT:.0f}s: {self._tail()}")

    def _tail(self) -> str:
        text = ""
        for path in (self.work_dir / "libvirtd.stdout", self.log_path):
            if path.exists():
                text += path.read_text(errors="replace")[-1500:]
        return text.strip() or "(no output)"

    def stop(self) -> None:
        process, self._process = self._process, None
        self._ahead = None  # its thread ends with the daemon: the open fails, or the load does
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class _Connecting(threading.Thread):
    """connect_ahead's thread: opens, loads QEMU's capabilities, then hands the connection
    over. Loaded before the hand-over, so that nothing else uses or closes the connection
    meanwhile; the caller's imports outlast the load anyway, and the first defineXML
    would wait for it too."""

    def __init__(self, open_connection: Callable[[], libvirt.virConnect],
                 libvirt_error: type[Exception]) -> None:
        super().__init__(name="libvirtd-connect", daemon=True)
        self._open_connection = open_connection
        self._libvirt_error = libvirt_error
        self._done = threading.Event()
        self._connection: libvirt.virConnect | None = None
        self._error: BaseException | None = None

    def connection(self) -> libvirt.virConnect:
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._connection is not None
        return self._connection

    def run(self) -> None:
        try:
            self._connection = self._open_connection()
            self._load_capabilities(self._connection)
        except BaseException as error:  # handed to the caller of connection()
            self._error = error
        finally:
            self._done.set()

    def _load_capabilities(self, connection: libvirt.virConnect) -> None:
        try:
            # No type: libvirt picks the one the host runs; either way it reads the caps.
            connection.getDomainCapabilities(None, None, None, None)
        except self._libvirt_error as error:
            import logging  # not at the top: see the module's docstring

            logging.getLogger(__name__).info("QEMU capabilities not loaded ahead of the domain: %s", error)
