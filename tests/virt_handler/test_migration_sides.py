"""The handlers' migration decisions, with the launcher and the API replaced by recorders:
who acts on which migrationState, and what they write back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from virt_handler import migrations
from virt_handler.migration_tunnel import TargetRegistry
from virt_handler.migrations import SourceSide, TargetSide, migration_options

UID = "mig-1"


def _vmi(**state: Any) -> dict:
    return {"metadata": {"name": "v", "namespace": "default", "uid": "vmi-uid", "resourceVersion": "7"},
            "status": {"phase": "Running", "migrationState": {"migrationUid": UID, "sourceNode": "a",
                                                              "targetNode": "b", **state}}}


class Recorder:
    def __init__(self) -> None:
        self.patches: list[dict] = []
        self.calls: list[str] = []

    def patch(self, vmi: dict, changes: dict) -> dict:
        self.patches.append(changes)
        state = {**vmi["status"]["migrationState"], **changes}
        return {**vmi, "status": {**vmi["status"], "migrationState": state}}

    def run(self, coroutine: Any) -> Any:
        return asyncio.run(coroutine)


@pytest.fixture
def launcher_calls(monkeypatch) -> list[str]:
    calls: list[str] = []

    async def fake(_socket: Path, action: Any) -> None:
        class Launcher:
            def __getattr__(self, name: str) -> Any:
                async def call(*_args: Any, **_kwargs: Any) -> None:
                    calls.append(name)
                return call
        await action(Launcher())

    monkeypatch.setattr(migrations, "_with_launcher", fake)
    return calls


def test_options_follow_the_cluster_configuration() -> None:
    options = migration_options({"migrationConfiguration": {"bandwidthPerMigration": "64Mi",
                                                            "completionTimeoutPerGiB": 150, "progressTimeout": 20,
                                                            "allowPostCopy": True}})
    assert options.bandwidth_bytes_per_second == 64 * 1024 * 1024
    assert options.completion_timeout_per_gib_seconds == 150 and options.progress_timeout_seconds == 20
    assert options.allow_post_copy and not options.allow_auto_converge


def test_the_target_prepares_once_its_launcher_is_there(tmp_path: Path, launcher_calls: list[str]) -> None:
    recorder = Recorder()
    registry = TargetRegistry()
    target = TargetSide("b", tmp_path, registry, "127.2.0.2:8186", recorder.run, recorder.patch)
    assert target.step(_vmi()) == migrations.RETRY_SECONDS  # no launcher socket yet
    (tmp_path / "vmi-uid").mkdir()
    (tmp_path / "vmi-uid" / "launcher.sock").touch()
    assert target.step(_vmi()) is None
    assert launcher_calls == ["sync_migration_target"]
    assert recorder.patches == [{"targetNodeAddress": "127.2.0.2:8186"}]
    assert UID in registry
    assert target.step(_vmi(targetNodeAddress="x")) is None and len(recorder.patches) == 1
    target.step(_vmi(targetNodeAddress="x", completed=True))
    assert launcher_calls[-1] == "finalize_migration" and UID not in registry
    assert recorder.patches[-1]["targetNodeDomainDetected"] is True
    assert TargetSide("c", tmp_path, registry, "", recorder.run, recorder.patch).step(_vmi()) is None


def test_the_source_never_starts_an_aborted_migration_and_reports_the_verdict(
        tmp_path: Path, launcher_calls: list[str]) -> None:
    recorder = Recorder()
    source = SourceSide("a", tmp_path, lambda: None, recorder.run, recorder.patch)
    source.step(_vmi(targetNodeAddress="127.0.0.1:1", abortRequested=True), None)
    source.step(_vmi(), None)
    assert recorder.patches == [] and launcher_calls == []
    started = _vmi(targetNodeAddress="127.0.0.1:1", startTimestamp="t", abortRequested=True)
    source.step(started, None)
    source.step(started, None)
    assert launcher_calls == ["cancel_migration"]
    assert recorder.patches == [{"abortStatus": "Aborting"}]
    source.step(started, {"migrationUid": UID, "failed": True, "failureReason": "cancelled",
                          "abortStatus": "Succeeded", "endTimestamp": "t2"})
    assert recorder.patches[-1] == {"completed": True, "failed": True, "endTimestamp": "t2",
                                    "failureReason": "cancelled", "abortStatus": "Succeeded"}
    source.step(_vmi(targetNodeAddress="x", startTimestamp="t"),
                {"migrationUid": "another", "completed": True})
    assert len(recorder.patches) == 2  # a report of another migration changes nothing
