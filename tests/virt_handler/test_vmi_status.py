"""Domain states become VMI phases and conditions as upstream reports them."""

from __future__ import annotations

import pytest

from virt_handler.vmi_status import phase_for, status_update


@pytest.mark.parametrize("state, reason, phase", [
    ("Running", "Booted", "Running"), ("Paused", "User", "Running"), ("Shutoff", "Shutdown", "Succeeded"),
    ("Shutoff", "Destroyed", "Succeeded"), ("Shutoff", "Failed", "Failed"), ("Shutoff", "Crashed", "Failed"),
    ("Crashed", "Panicked", "Failed"), ("NoState", "Unknown", "Scheduled"),
])
def test_phase_for(state: str, reason: str, phase: str) -> None:
    assert phase_for(state, reason).value == phase


def _conditions(status: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def test_running_paused_unpaused() -> None:
    vmi = {"status": {"phase": "Scheduled"}}
    running = status_update(vmi, "Running", "Booted")
    assert running["phase"] == "Running" and _conditions(running) == {"Ready": "True", "LiveMigratable": "True"}
    paused = status_update({"status": running}, "Paused", "User")
    assert _conditions(paused) == {"Ready": "False", "Paused": "True", "LiveMigratable": "True"}
    assert next(c for c in paused["conditions"] if c["type"] == "Paused")["reason"] == "PausedByUser"
    resumed = status_update({"status": paused}, "Running", "Unpaused")
    assert _conditions(resumed) == {"Ready": "True", "LiveMigratable": "True"}
    assert [t["phase"] for t in resumed["phaseTransitionTimestamps"]] == ["Running"]


def test_final_phases_stick() -> None:
    failed = status_update({"status": {"phase": "Running"}}, "Shutoff", "Failed")
    assert failed["phase"] == "Failed" and "failed" in failed["reason"].lower()
    assert status_update({"status": failed}, "Running", "Booted")["phase"] == "Failed"


def test_a_vmi_on_an_unshared_claim_is_not_live_migratable() -> None:
    vmi = {"spec": {"volumes": [{"name": "root", "persistentVolumeClaim": {"claimName": "data"}}]},
           "status": {"phase": "Scheduled", "volumeStatus": [
               {"name": "root", "persistentVolumeClaimInfo": {"claimName": "data", "accessModes": ["ReadWriteOnce"]}}]}}
    status = status_update(vmi, "Running", "Booted")
    condition = next(c for c in status["conditions"] if c["type"] == "LiveMigratable")
    assert condition["status"] == "False" and condition["reason"] == "DisksNotLiveMigratable"
    assert "PVC data is not shared" in condition["message"]
    vmi["status"]["volumeStatus"][0]["persistentVolumeClaimInfo"]["accessModes"] = ["ReadWriteMany"]
    assert _conditions(status_update(vmi, "Running", "Booted"))["LiveMigratable"] == "True"
