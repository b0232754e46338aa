"""The local cluster as one supervised process tree: the control plane in this process,
the scheduler, the workload controllers (ReplicaSets, Deployments, DaemonSets) and the
volume provisioner beside it, one kubelet process per node.

    python -m local_cluster.supervisor --state-dir DIR --nodes 2

Writes DIR/supervisor.pid, and DIR/ready once every node is Ready; SIGTERM shuts the
cluster down (kubelets stop their pods first, as a node shutdown does).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kubernetes import client

from kube_client.config import load_api_client
from local_cluster.apply import apply
from local_cluster.control_plane import ControlPlane
from local_cluster.provisioner import Provisioner
from local_cluster.scheduler import Scheduler
from local_cluster.workloads import WorkloadControllers

log = logging.getLogger("local_cluster")

DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy"
READY_TIMEOUT = 60.0
KUBELET_STOP_TIMEOUT = 60.0
RESTART_DELAY = 1.0


# Not applied: examples are for users; monitoring/ holds the prometheus-operator's kinds
# (ServiceMonitor, PrometheusRule), which a cluster serves only once that operator is in.
_NOT_APPLIED = {"examples", "monitoring"}


def deploy_manifests() -> list[Path]:
    """What a real cluster gets applied from deploy/."""
    return sorted(p for p in DEPLOY_DIR.iterdir() if p.name not in _NOT_APPLIED and p.suffix in ("", ".yaml", ".yml"))


def node_name(index: int) -> str:
    return f"node{index:02d}"


class _Adopted:
    """A kubelet left running by a previous supervisor that died (kill -9 of the control
    plane): not our child, so watched through /proc rather than waited for."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not _is_kubelet(self.pid):
            self.returncode = -1  # its real status went to its new parent
        return self.returncode

    def send_signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kubelet {self.pid}", timeout)
            time.sleep(0.1)
        return self.returncode or 0


def _is_kubelet(pid: int, root: Path | None = None) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and "local_cluster.kubelet" in argv and (root is None or str(root) in argv)


class Kubelets:
    """One kubelet process per node, restarted if it dies (as systemd would). A kubelet
    that outlived the previous supervisor is adopted, not doubled: the control plane going
    down does not stop a node."""

    def __init__(self, state_dir: Path, kubeconfig: Path, count: int) -> None:
        self._state_dir = state_dir
        self._kubeconfig = kubeconfig
        self._count = count
        self._processes: dict[int, subprocess.Popen[bytes] | _Adopted] = {}
        self._stopping = False

    def _root(self, index: int) -> Path:
        return self._state_dir / "nodes" / node_name(index)

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        name = node_name(index)
        root = self._root(index)
        root.mkdir(parents=True, exist_ok=True)
        log_file = open(root / "kubelet.log", "ab")  # noqa: SIM115 - owned by the child from here on
        process = subprocess.Popen(
            [sys.executable, "-m", "local_cluster.kubelet", "--kubeconfig", str(self._kubeconfig),
             "--node-name", name, "--node-index", str(index), "--root", str(root)],
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        (root / "kubelet.pid").write_text(str(process.pid))
        return process

    def _adopt_or_spawn(self, index: int) -> subprocess.Popen[bytes] | _Adopted:
        try:
            pid = int((self._root(index) / "kubelet.pid").read_text())
        except (OSError, ValueError):
            pid = 0
        if pid and _is_kubelet(pid, self._root(index)):
            log.info("kubelet of %s still runs (pid %d); adopting it", node_name(index), pid)
            return _Adopted(pid)
        return self._spawn(index)

    def start(self) -> None:
        for index in range(1, self._count + 1):
            self._processes[index] = self._adopt_or_spawn(index)

    def watch_once(self) -> None:
        for index, process in list(self._processes.items()):
            if not self._stopping and process.poll() is not None:
                log.warning("kubelet of %s exited with %s; restarting it", node_name(index), process.returncode)
                self._processes[index] = self._spawn(index)

    def stop(self) -> None:
        self._stopping = True
        for process in self._processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + KUBELET_STOP_TIMEOUT
        for process in self._processes.values():
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _wait_nodes_ready(api: client.ApiClient, count: int, timeout: float) -> None:
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = core.list_node().items
        # A node is listed between its registration and its kubelet's first status report.
        ready = [n for n in nodes if any(c.type == "Ready" and c.status == "True"
                                         for c in (n.status.conditions if n.status else None) or [])]
        if len(ready) >= count:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{count} nodes were not Ready within {timeout:.0f}s; see the kubelet logs under nodes/")


async def run(state_dir: Path, nodes: int) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "ready").unlink(missing_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    plane = ControlPlane(state_dir)
    await plane.start()
    api = load_api_client(plane.kubeconfig)
    scheduler = Scheduler(api)
    workloads = WorkloadControllers(load_api_client(plane.kubeconfig))
    provisioner = Provisioner(load_api_client(plane.kubeconfig), state_dir / "volumes")
    kubelets = Kubelets(state_dir, plane.kubeconfig, nodes)
    try:
        for line in await asyncio.to_thread(apply, api, deploy_manifests()):
            log.info("applied %s", line)
        scheduler.start()
        workloads.start()
        provisioner.start()
        kubelets.start()
        await asyncio.to_thread(_wait_nodes_ready, api, nodes, READY_TIMEOUT)
        (state_dir / "ready").write_text(plane.apiserver.url if plane.apiserver else "")
        log.info("local cluster ready with %d nodes; kubeconfig: %s", nodes, plane.kubeconfig)
        while not stop.is_set():
            kubelets.watch_once()
            await plane.restart_etcd_if_dead()
            try:
                async with asyncio.timeout(RESTART_DELAY):
                    await stop.wait()
            except TimeoutError:
                pass
    finally:
        (state_dir / "ready").unlink(missing_ok=True)
        # The controllers stop before the kubelets: pods stopped by a whole-cluster shutdown
        # must not be replaced on the nodes still going down; the next `up` resumes them.
        await asyncio.to_thread(workloads.stop)
        await asyncio.to_thread(kubelets.stop)
        scheduler.stop()
        provisioner.stop()
        await plane.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the local cluster (control plane and kubelets).")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args()
    if args.nodes < 1:
        parser.error("--nodes: must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    (args.state_dir).mkdir(parents=True, exist_ok=True)
    (args.state_dir / "supervisor.pid").write_text(str(os.getpid()))
    try:
        asyncio.run(run(args.state_dir, args.nodes))
    finally:
        (args.state_dir / "supervisor.pid").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
