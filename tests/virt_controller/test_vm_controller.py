"""Run strategies against the real API server: VMIs created, removed and recreated as the
VM's strategy says, with printableStatus and the start back-off."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.wait import eventually
from virt_controller.vm_controller import VMController

VM = ("kubevirt.io", "v1", "default", "virtualmachines")
VMI = ("kubevirt.io", "v1", "default", "virtualmachineinstances")


@pytest.fixture(scope="module")
def custom(control_plane, kubevirt_api) -> Iterator[client.CustomObjectsApi]:
    api = kubevirt_api
    controller = VMController(control_plane.api_client(), backoff_base=0.5)
    controller.start()
    yield client.CustomObjectsApi(api)
    controller.stop()


def _vm(custom, **spec) -> str:
    name = f"vm-{uuid.uuid4().hex[:6]}"
    custom.create_namespaced_custom_object(*VM[:3], VM[3], {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name},
        "spec": {**spec, "template": {"metadata": {"labels": {"app": name}}, "spec": {
            "domain": {"devices": {}, "resources": {"requests": {"memory": "64Mi"}}}}}}})
    return name


def _vmi(custom, name: str) -> dict | None:
    try:
        return custom.get_namespaced_custom_object(*VMI, name)
    except client.ApiException as error:
        assert error.status == 404
        return None


def _status(custom, name: str) -> dict:
    return custom.get_namespaced_custom_object(*VM, name).get("status") or {}


def _set_phase(custom, name: str, phase: str) -> None:
    custom.patch_namespaced_custom_object_status(*VMI, name, {"status": {"phase": phase}})


def test_always_creates_and_restarts(custom) -> None:
    name = _vm(custom, runStrategy="Always")
    vmi = eventually(lambda: _vmi(custom, name))
    assert vmi["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachine"
    assert vmi["metadata"]["labels"] == {"app": name}
    eventually(lambda: _status(custom, name).get("printableStatus") == "Starting")
    assert _status(custom, name)["created"] is True
    _set_phase(custom, name, "Succeeded")
    eventually(lambda: (lambda v: v and v["metadata"]["uid"] != vmi["metadata"]["uid"])(_vmi(custom, name)))


def test_halted_and_the_deprecated_running_field(custom) -> None:
    halted = _vm(custom, runStrategy="Halted")
    eventually(lambda: _status(custom, halted).get("printableStatus") == "Stopped")
    assert _vmi(custom, halted) is None
    running = _vm(custom, running=True)
    eventually(lambda: _vmi(custom, running))
    custom.patch_namespaced_custom_object(*VM, running, {"spec": {"running": False}})
    eventually(lambda: (lambda v: v is None or v["metadata"].get("deletionTimestamp"))(_vmi(custom, running)))


def test_rerun_on_failure_backs_off_and_keeps_a_clean_stop(custom) -> None:
    name = _vm(custom, runStrategy="RerunOnFailure")
    first = eventually(lambda: _vmi(custom, name))
    _set_phase(custom, name, "Failed")
    eventually(lambda: _status(custom, name).get("startFailure", {}).get("consecutiveFailCount") == 1, timeout=30)
    second = eventually(lambda: (lambda v: v if v and v["metadata"]["uid"] != first["metadata"]["uid"] else None)(
        _vmi(custom, name)), timeout=30)
    _set_phase(custom, name, "Succeeded")
    eventually(lambda: _status(custom, name).get("printableStatus") == "Stopped", timeout=30)
    assert _vmi(custom, name)["metadata"]["uid"] == second["metadata"]["uid"]  # a clean stop is not rerun


def test_manual_follows_start_and_stop_requests(custom) -> None:
    name = _vm(custom, runStrategy="Manual")
    eventually(lambda: _status(custom, name).get("printableStatus") == "Stopped")
    custom.patch_namespaced_custom_object_status(*VM, name, {"status": {"stateChangeRequests": [{"action": "Start"}]}})
    eventually(lambda: _vmi(custom, name))
    eventually(lambda: not _status(custom, name).get("stateChangeRequests"))
    custom.patch_namespaced_custom_object_status(*VM, name, {"status": {"stateChangeRequests": [{"action": "Stop"}]}})
    eventually(lambda: _vmi(custom, name) is None)


def test_a_restart_request_replaces_the_guest_and_a_paused_start_pauses_it(custom) -> None:
    name = _vm(custom, runStrategy="Manual")
    custom.patch_namespaced_custom_object_status(*VM, name, {"status": {"stateChangeRequests": [
        {"action": "Start", "data": {"startPaused": "true"}}]}})
    first = eventually(lambda: _vmi(custom, name))
    assert first["spec"]["startStrategy"] == "Paused"
    custom.patch_namespaced_custom_object_status(*VM, name, {"status": {"stateChangeRequests": [
        {"action": "Stop", "uid": first["metadata"]["uid"]}, {"action": "Start"}]}})
    second = eventually(lambda: (lambda v: v if v and v["metadata"]["uid"] != first["metadata"]["uid"] else None)(
        _vmi(custom, name)), timeout=30)
    assert "startStrategy" not in second["spec"]
    eventually(lambda: not _status(custom, name).get("stateChangeRequests"))
