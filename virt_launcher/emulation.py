"""KVM or TCG: decided at run time, as upstream's useEmulation does by configuration.

/dev/kvm can exist, open, create a VM and even run a BIOS on machines where guests
still cannot run (a nested host that loses the guest on its way into long mode), so
the probe boots a real Linux kernel under KVM and waits for its first console line;
without a kernel at hand it falls back to SeaBIOS announcing itself on the debug
console. The answer is cached per boot of the machine.
KUBEVIRT_PY_EMULATION=kvm|tcg overrides the probe, like upstream's useEmulation.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

# v2: answers of the BIOS-only probe (v1) are not trusted any more.
CACHE = Path("/var/cache/kubevirt-py/emulation-v2")
PROBE_SECONDS = 10.0
# The tiny guest's kernel, built by build.sh; any x86-64 bzImage will do.
PROBE_KERNEL = Path(os.environ.get("KUBEVIRT_PY_PROBE_KERNEL",
                                   Path(__file__).resolve().parents[1] / "build" / "guest" / "vmlinuz"))
_KERNEL_MARKER = b"Linux version"
_BIOS_MARKER = b"Running on KVM"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _guest_prints(qemu_args: list[str], marker: bytes) -> bool:
    """Run QEMU with KVM and the given guest; True once the guest's output shows marker."""
    with tempfile.TemporaryDirectory(prefix="kvm-probe-") as scratch:
        log = Path(scratch) / "console.log"
        process = subprocess.Popen(
            ["qemu-system-x86_64", "-accel", "kvm", "-m", "128", "-display", "none", "-nodefaults",
             "-no-user-config", "-no-reboot", *[arg.replace("{log}", str(log)) for arg in qemu_args]],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + PROBE_SECONDS
            while time.monotonic() < deadline and process.poll() is None:
                if log.exists() and marker in log.read_bytes():
                    return True
                time.sleep(0.05)
            return False
        finally:
            process.kill()
            process.wait()


def _probe_kvm() -> bool:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    if PROBE_KERNEL.is_file():
        return _guest_prints(["-kernel", str(PROBE_KERNEL), "-append", "console=ttyS0 earlyprintk=serial,ttyS0",
                              "-serial", "file:{log}"], _KERNEL_MARKER)
    return _guest_prints(["-chardev", "file,id=dbg,path={log}", "-device", "isa-debugcon,iobase=0x402,chardev=dbg"],
                         _BIOS_MARKER)


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
