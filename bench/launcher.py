"""virt-launcher figures: its RSS without QEMU, and VMI-spec-to-running-domain time against a
direct libvirt start of the same domain XML, measured in one run. Prints figures only.

    .venv/bin/python -m bench.launcher [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import libvirt

from oci_layout.store import add_image
from virt_launcher.standalone import LauncherProcess, NotifyReceiver
from virt_launcher.libvirtd import Libvirtd

IMAGE = "kubevirt-py/bench-disk:latest"


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _vmi(index: int) -> dict:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": f"bench{index}", "namespace": "default", "uid": f"bench-{index}"},
            "spec": {"domain": {"devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]},
                                "resources": {"requests": {"memory": "64Mi"}}},
                     "terminationGracePeriodSeconds": 0,
                     "volumes": [{"name": "root", "containerDisk": {"image": IMAGE}}]}}


def _launcher_run(root: Path, store: Path, index: int) -> tuple[float, float, float, str]:
    work = root / f"l{index}"
    work.mkdir()
    receiver = NotifyReceiver(work / "notify.sock")
    vmi = _vmi(index)
    launcher = LauncherProcess(work, vmi, store, work / "notify.sock")

    async def sync() -> float:
        client = await launcher.client()
        start = time.perf_counter()
        await client.sync(vmi)
        receiver.wait_for("Running", timeout=60)
        elapsed = time.perf_counter() - start
        await client.close()
        return elapsed

    try:
        elapsed = asyncio.run(sync())
        rss = _rss_mib(launcher.process.pid)
        libvirtd_rss = _rss_mib(int((work / "vmi" / "libvirt" / "libvirtd.pid").read_text()))
        xml = (work / "vmi" / "domain.xml").read_text()
    finally:
        launcher.stop()
        receiver.close()
    return elapsed, rss, libvirtd_rss, xml


def _direct_run(root: Path, xml: str, index: int) -> float:
    daemon = Libvirtd(root / f"d{index}")
    daemon.start()
    try:
        connection = libvirt.open(daemon.uri)
        start = time.perf_counter()
        domain = connection.createXML(xml.replace(f"bench{index}", f"direct{index}"), 0)
        elapsed = time.perf_counter() - start
        domain.destroy()
        connection.close()
    finally:
        daemon.stop()
    return elapsed


def measure(runs: int) -> dict[str, list[float]]:
    """Per run: launcher spec -> running (s), launcher RSS, its libvirtd RSS (MiB) and the
    direct createXML of the same XML (s)."""
    root = Path(tempfile.mkdtemp(prefix="kv-bench-l-", dir="/tmp"))
    figures: dict[str, list[float]] = {"launched": [], "rss": [], "libvirtd_rss": [], "direct": []}
    try:
        (root / "rootfs" / "disk").mkdir(parents=True)
        with open(root / "rootfs" / "disk" / "disk.img", "wb") as disk:
            disk.truncate(1024 * 1024)
        add_image(root / "store", IMAGE, root / "rootfs")
        for index in range(runs):
            elapsed, launcher_rss, daemon_rss, xml = _launcher_run(root, root / "store", index)
            figures["launched"].append(elapsed)
            figures["rss"].append(launcher_rss)
            figures["libvirtd_rss"].append(daemon_rss)
            figures["direct"].append(_direct_run(root, xml, index))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures = measure(args.runs)
    spec_to_running, baseline = statistics.median(figures["launched"]), statistics.median(figures["direct"])
    print(f"{'figure':<52}{'value':>12}")
    print(f"{'launcher RSS without QEMU (MiB, median)':<52}{statistics.median(figures['rss']):>12.1f}")
    print(f"{'its libvirtd RSS (MiB, median)':<52}{statistics.median(figures['libvirtd_rss']):>12.1f}")
    print(f"{'VMI spec -> running domain (s, median)':<52}{spec_to_running:>12.3f}")
    print(f"{'direct libvirt createXML, same XML (s, median)':<52}{baseline:>12.3f}")
    print(f"{'ratio launcher / direct':<52}{spec_to_running / baseline:>12.2f}")

if __name__ == "__main__":
    main()
