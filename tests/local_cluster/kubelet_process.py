"""A process kubelet (``python -m local_cluster.kubelet``) for tests against the real
API server: started, killed and restarted like the one a node runs."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from kubernetes import client

REPO = Path(__file__).resolve().parents[2]


class Kubelet:
    def __init__(self, kubeconfig: Path, root: Path, name: str = "node01", index: int = 1) -> None:
        self._args = [sys.executable, "-m", "local_cluster.kubelet", "--kubeconfig", str(kubeconfig),
                      "--node-name", name, "--node-index", str(index), "--root", str(root)]
        self._log = open(root.parent / f"{name}.log", "ab")  # noqa: SIM115 - closed by stop()
        self.process = self.spawn()

    def spawn(self) -> subprocess.Popen:
        self.process = subprocess.Popen(self._args, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)
        return self.process

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def close(self) -> None:
        self.stop()
        self._log.close()


def node_ready(core: client.CoreV1Api, node: str) -> bool:
    try:
        status = core.read_node(node).status
    except client.ApiException:
        return False
    conditions = (status.conditions if status else None) or []  # registered, not yet reported
    return any(c.type == "Ready" and c.status == "True" for c in conditions)
