"""What a pod worker knows about its pod, kept in <pod dir>/state.json so that a
new kubelet process can pick a pod up where the last one left it: the pod IP, each
container's runs (the trampoline's and the command's process identities, start
times, exit records), restart counts and back-off, and a pending termination."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from local_cluster.kubelet.proc import ProcessIdentity
from local_cluster.kubelet.json_files import write_json_atomic

WAITING_CREATING = "ContainerCreating"


@dataclass
class RunRecord:
    """One start of a container: the sandbox trampoline and the command it ran."""

    attempt: int
    run_dir: str
    shim: ProcessIdentity | None
    container: ProcessIdentity | None = None
    started_at: str | None = None
    # The exit record (sandbox_spec's exit.json) once the run is over.
    exit: dict[str, Any] | None = None
    # A kill in progress: when TERM went out and when KILL is due (epoch seconds).
    term_sent: bool = False
    kill_deadline: float | None = None
    kill_sent_at: float | None = None

    @property
    def running(self) -> bool:
        return self.exit is None and self.container is not None

    @property
    def active(self) -> bool:
        return self.exit is None

    def to_json(self) -> dict[str, Any]:
        value = asdict(self)
        value["shim"] = self.shim.to_json() if self.shim else None
        value["container"] = self.container.to_json() if self.container else None
        return value

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> RunRecord:
        return cls(
            **{
                **value,
                "shim": ProcessIdentity.from_json(value.get("shim")),
                "container": ProcessIdentity.from_json(value.get("container")),
            }
        )


@dataclass
class ContainerRecord:
    name: str
    init: bool
    image: str
    image_id: str = ""
    runs_started: int = 0
    run: RunRecord | None = None
    # The exit record of the previous run, reported as lastState.
    last_exit: dict[str, Any] | None = None
    waiting_reason: str = WAITING_CREATING
    waiting_message: str = ""
    # Epoch seconds before which no new run may start (restart or pull back-off).
    next_start_at: float = 0.0
    backoff_step: int = 0
    last_restart_at: float = 0.0
    pull_failures: int = 0
    # No further run will start: completed init container, or policy says so.
    finished: bool = False

    @property
    def restart_count(self) -> int:
        return max(0, self.runs_started - 1)

    @property
    def exited(self) -> bool:
        return self.run is not None and self.run.exit is not None

    @property
    def succeeded(self) -> bool:
        """The latest run exited 0."""
        return self.exited and (self.run.exit or {}).get("exitCode") == 0  # type: ignore[union-attr]

    def to_json(self) -> dict[str, Any]:
        value = asdict(self)
        value["run"] = self.run.to_json() if self.run else None
        return value

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ContainerRecord:
        run = value.get("run")
        return cls(**{**value, "run": RunRecord.from_json(run) if run else None})


@dataclass
class PodState:
    uid: str
    pod_ip: str
    host_ip: str
    start_time: str
    containers: dict[str, ContainerRecord] = field(default_factory=dict)
    # Condition type -> [status, lastTransitionTime], so transitions keep their time.
    condition_times: dict[str, list[str]] = field(default_factory=dict)
    terminating: bool = False
    grace_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        value = asdict(self)
        value["containers"] = {name: record.to_json() for name, record in self.containers.items()}
        return value

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> PodState:
        containers = {name: ContainerRecord.from_json(rec) for name, rec in (value.get("containers") or {}).items()}
        return cls(**{**value, "containers": containers})

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> PodState:
        return cls.from_json(json.loads(path.read_text()))
