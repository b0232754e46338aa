"""kubevirt_api helpers that several components rely on."""

from __future__ import annotations

import pytest

from kubevirt_api.groups import VIRTUAL_MACHINE_INSTANCE, kind_of
from kubevirt_api.objects import SpecError, condition_true, run_strategy, vmi_phase
from kubevirt_api.phases import RunStrategy, VMIPhase


@pytest.mark.parametrize("spec, expected", [
    ({"runStrategy": "Manual"}, RunStrategy.MANUAL),
    ({"running": True}, RunStrategy.ALWAYS),
    ({"running": False}, RunStrategy.HALTED),
    ({}, RunStrategy.HALTED),
])
def test_run_strategy(spec: dict, expected: RunStrategy) -> None:
    assert run_strategy({"spec": spec}) is expected


@pytest.mark.parametrize("spec, message", [
    ({"running": True, "runStrategy": "Always"}, "spec.running: .*mutually exclusive"),
    ({"runStrategy": "Sometimes"}, "spec.runStrategy: Unsupported value: 'Sometimes'"),
])
def test_run_strategy_errors_name_the_field(spec: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        run_strategy({"spec": spec})


def test_phase_and_conditions() -> None:
    vmi = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"},
                                                         {"type": "Paused", "status": "False"}]}}
    assert vmi_phase(vmi) is VMIPhase.RUNNING and not vmi_phase(vmi).is_final
    assert vmi_phase({}) is VMIPhase.UNSET
    assert vmi_phase({"status": {"phase": "Bogus"}}) is VMIPhase.UNKNOWN
    assert condition_true(vmi, "Ready") and not condition_true(vmi, "Paused")
    assert not condition_true(vmi, "LiveMigratable")


def test_kind_of() -> None:
    assert kind_of({"apiVersion": "kubevirt.io/v1alpha3", "kind": "VirtualMachineInstance"}) \
        is VIRTUAL_MACHINE_INSTANCE
    with pytest.raises(ValueError, match="apiVersion: Unsupported value: 'kubevirt.io/v9'"):
        kind_of({"apiVersion": "kubevirt.io/v9", "kind": "VirtualMachineInstance"})
    with pytest.raises(ValueError, match="apiVersion: Required value"):
        kind_of({"kind": "VirtualMachineInstance"})
    with pytest.raises(ValueError, match="kind: Unsupported value: 'Pod'"):
        kind_of({"apiVersion": "kubevirt.io/v1", "kind": "Pod"})
