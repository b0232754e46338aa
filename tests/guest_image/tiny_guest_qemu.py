"""Booting the tiny test guest under plain QEMU (TCG), without libvirt: cloud-init
ISOs, a throw-away overlay of the built disk, serial output in a file, QMP.

A module with a name of its own (this directory has no __init__.py, so that it does
not shadow the real guest_image package).
"""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pycdlib

QEMU = "qemu-system-x86_64"


def _write_iso(path: Path, label: str, files: dict[str, bytes]) -> Path:
    """An ISO labelled label; Rock Ridge and Joliet keep names like user-data intact."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident=label, joliet=3, rock_ridge="1.09")
    made: set[str] = set()
    for relative in sorted(files):
        parts = relative.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in made:
                made.add(directory)
                iso.add_directory(
                    "/" + "/".join(_iso_name(p) for p in parts[:depth]),
                    rr_name=parts[depth - 1],
                    joliet_path="/" + directory,
                )
        data = files[relative]
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            "/" + "/".join(_iso_name(p) for p in parts) + ";1",
            rr_name=parts[-1],
            joliet_path="/" + relative,
        )
    iso.write(str(path))
    iso.close()
    return path


def _iso_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9_.]", "_", name.upper())


def nocloud_iso(path: Path, user_data: bytes, meta_data: bytes) -> Path:
    return _write_iso(path, "cidata", {"user-data": user_data, "meta-data": meta_data, "network-config": b""})


def config_drive_iso(path: Path, user_data: bytes, meta_data: dict[str, object]) -> Path:
    return _write_iso(
        path,
        "config-2",
        {
            "openstack/latest/user_data": user_data,
            "openstack/latest/meta_data.json": json.dumps(meta_data).encode(),
        },
    )


def overlay(base: Path, directory: Path) -> Path:
    """A qcow2 overlay of base: the guest writes there and never to the built image."""
    path = directory / f"{base.stem}-overlay.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base), str(path)], check=True
    )
    return path


class QemuGuest:
    """One QEMU process: serial console to a file, QMP on a unix socket.

    close() (the fixture calls it) kills the process whatever state it is in."""

    def __init__(self, workdir: Path, args: list[str], machine: str = "q35") -> None:
        self.serial_path = workdir / "serial.log"
        self.qmp_path = workdir / "qmp.sock"
        self.stderr_path = workdir / "qemu.stderr"
        argv = [
            QEMU, "-accel", "tcg", "-machine", machine, "-m", "128", "-nodefaults", "-display", "none",
            "-no-reboot", "-serial", f"file:{self.serial_path}",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off", *args,
        ]  # fmt: skip
        self.started = time.monotonic()
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr)
        self.seen: dict[str, float] = {}  # first line matching each waited-for pattern -> seconds since start

    def text(self) -> str:
        try:
            return self.serial_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def lines(self) -> list[str]:
        return [line.rstrip("\r") for line in self.text().split("\n")]

    def wait_for(self, pattern: str, timeout: float, count: int = 1) -> list[str]:
        """The first count serial lines matching pattern (a regex), waiting up to timeout s."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines() if regex.search(line)]
            if len(found) >= count:
                self.seen.setdefault(pattern, time.monotonic() - self.started)
                return found[:count]
            if self.process.poll() is not None:
                raise AssertionError(f"QEMU exited ({self.process.returncode}) before {pattern!r}:\n{self.diagnostics()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} within {timeout}s:\n{self.diagnostics()}")
            time.sleep(0.1)

    def qmp(self, command: str, timeout: float = 10) -> dict[str, object]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.qmp_path))
            stream = sock.makefile("rwb")
            json.loads(stream.readline())  # greeting
            for execute in ("qmp_capabilities", command):
                stream.write(json.dumps({"execute": execute}).encode() + b"\n")
                stream.flush()
                while True:  # skip asynchronous events until this command's answer
                    reply: dict[str, object] = json.loads(stream.readline())
                    if "return" in reply or "error" in reply:
                        break
                if "error" in reply:
                    raise AssertionError(f"QMP {execute}: {reply['error']}")
            return reply

    def wait_exit(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def diagnostics(self) -> str:
        tail = "\n".join(self.lines()[-40:])
        stderr = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return f"--- serial (last 40 lines) ---\n{tail}\n--- qemu stderr ---\n{stderr}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._stderr.close()
