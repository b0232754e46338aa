"""KVM or TCG: decided at run time, as upstream's useEmulation does by configuration.

/dev/kvm can exist, open and even create a VM on machines where guests still cannot
run, so the probe runs real guest code: SeaBIOS under QEMU with KVM must announce
itself on the debug console. The answer is cached per boot of the machine.
KUBEVIRT_PY_EMULATION=kvm|tcg overrides the probe, like upstream's useEmulation.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

CACHE = Path("/var/cache/kubevirt-py/emulation")
PROBE_SECONDS = 10.0


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _probe_kvm() -> bool:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    with tempfile.TemporaryDirectory(prefix="kvm-probe-") as scratch:
        log = Path(scratch) / "debugcon.log"
        process = subprocess.Popen(
            ["qemu-system-x86_64", "-accel", "kvm", "-m", "32", "-display", "none", "-nodefaults",
             "-no-user-config", "-chardev", f"file,id=dbg,path={log}", "-device",
             "isa-debugcon,iobase=0x402,chardev=dbg"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + PROBE_SECONDS
            while time.monotonic() < deadline and process.poll() is None:
                if log.exists() and b"Running on KVM" in log.read_bytes():
                    return True
                time.sleep(0.05)
            return False
        finally:
            process.kill()
            process.wait()


def domain_type() -> str:
    """"kvm" when guests can run with KVM here, else "qemu" (TCG emulation)."""
    forced = os.environ.get("KUBEVIRT_PY_EMULATION", "").lower()
    if forced in ("kvm", "tcg"):
        return "kvm" if forced == "kvm" else "qemu"
    boot = _boot_id()
    try:
        cached_boot, answer = CACHE.read_text().split()
        if cached_boot == boot and answer in ("kvm", "qemu"):
            return answer
    except (OSError, ValueError):
        pass
    answer = "kvm" if _probe_kvm() else "qemu"
    try:
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        CACHE.write_text(f"{boot} {answer}\n")
    except OSError:
        pass  # a read-only cache only costs the probe next time
    return answer
