"""The on-disk layout of one pod under the node's state directory:

  <root>/pods/<uid>/pod.json                    the last pod object the agent synced
  <root>/pods/<uid>/state.json                  what the worker knows (see pod_state)
  <root>/pods/<uid>/volumes/<plugin>/<name>/    prepared volumes
  <root>/pods/<uid>/tmp/                        the pod's private /tmp
  <root>/pods/<uid>/logs/<container>/<n>.log    stdout+stderr of run n (= restartCount)
  <root>/pods/<uid>/containers/<container>/<n>/ run n's sandbox files (sandbox_spec)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oci_layout.rooted_paths import dns_label, pod_uid

POD_FILE = "pod.json"
STATE_FILE = "state.json"


@dataclass(frozen=True)
class PodDir:
    path: Path

    @classmethod
    def under(cls, node_root: Path, uid: str) -> PodDir:
        return cls(node_root / "pods" / pod_uid(uid))

    @property
    def uid(self) -> str:
        return self.path.name

    @property
    def pod_file(self) -> Path:
        return self.path / POD_FILE

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    @property
    def tmp(self) -> Path:
        return self.path / "tmp"

    def log_file(self, container: str, attempt: int) -> Path:
        return self.path / "logs" / dns_label(container, "container name") / f"{attempt}.log"

    def run_dir(self, container: str, attempt: int) -> Path:
        return self.path / "containers" / dns_label(container, "container name") / str(attempt)

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o750)
        for sub in ("volumes", "logs", "containers"):
            (self.path / sub).mkdir(exist_ok=True, mode=0o750)
        # Sticky and world-writable, like the /tmp it stands in for.
        self.tmp.mkdir(exist_ok=True)
        self.tmp.chmod(0o1777)
