"""VM subresources through the API server: start, stop, restart and migrate change the VM
(run strategy, state change requests) or create a migration, as upstream's virt-api does.
No controller runs here: the tests look at what virt-api wrote."""

from __future__ import annotations

import uuid

from kubernetes import client

from tests.virt_api.test_subresources_support import Env, env, running_vmi, vm_body  # noqa: F401  (fixture)

NS = "default"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _vm(env: Env, prefix: str, **spec) -> str:
    name = _name(prefix)
    env.create("virtualmachines", NS, vm_body(name, **spec))
    return name


def _requests(env: Env, name: str) -> list:
    return (env.get("virtualmachines", NS, name).get("status") or {}).get("stateChangeRequests")


def test_start_halted_sets_run_strategy_always(env: Env) -> None:
    name = _vm(env, "halted", runStrategy="Halted")
    assert env.vm_verb(NS, name, "start") == (202, None)
    assert env.get("virtualmachines", NS, name)["spec"]["runStrategy"] == "Always"


def test_start_and_stop_keep_the_deprecated_running_field(env: Env) -> None:
    name = _vm(env, "running", running=False)
    assert env.vm_verb(NS, name, "start")[0] == 202
    vm = env.get("virtualmachines", NS, name)
    assert vm["spec"]["running"] is True and "runStrategy" not in vm["spec"]
    assert env.vm_verb(NS, name, "stop")[0] == 202
    assert env.get("virtualmachines", NS, name)["spec"]["running"] is False


def test_start_of_a_running_vm_is_a_conflict(env: Env) -> None:
    name = _vm(env, "always", runStrategy="Always")
    status, body = env.vm_verb(NS, name, "start")
    assert status == 409 and body["message"].endswith("Always does not support manual start requests")
    running_vmi(env, NS, name)
    status, body = env.vm_verb(NS, name, "start")
    assert (status, body["kind"], body["reason"]) == (409, "Status", "Conflict")
    assert body["message"] == f'Operation cannot be fulfilled on virtualmachine.kubevirt.io "{name}": ' \
                              "VM is already running"


def test_manual_start_and_stop_queue_state_change_requests(env: Env) -> None:
    name = _vm(env, "manual", runStrategy="Manual")
    assert env.vm_verb(NS, name, "start")[0] == 202
    assert _requests(env, name) == [{"action": "Start"}]
    status, body = env.vm_verb(NS, name, "start")
    assert status == 409 and "stop/start already underway" in body["message"]

    other = _vm(env, "manual", runStrategy="Manual")
    status, body = env.vm_verb(NS, other, "stop")
    assert status == 409 and body["message"].endswith("VM is not running")
    vmi = running_vmi(env, NS, other)
    assert env.vm_verb(NS, other, "stop")[0] == 202
    assert _requests(env, other) == [{"action": "Stop", "uid": vmi["metadata"]["uid"]}]


def test_paused_start_of_a_halted_vm_is_a_request(env: Env) -> None:
    name = _vm(env, "paused", runStrategy="Halted")
    assert env.vm_verb(NS, name, "start", {"paused": True})[0] == 202
    assert _requests(env, name) == [{"action": "Start", "data": {"startPaused": "true"}}]
    assert env.get("virtualmachines", NS, name)["spec"]["runStrategy"] == "Halted"


def test_stop_always_halts_and_honours_the_grace_period(env: Env) -> None:
    name = _vm(env, "stop", runStrategy="Always")
    running_vmi(env, NS, name)
    assert env.vm_verb(NS, name, "stop", {"gracePeriod": 0})[0] == 202
    assert env.get("virtualmachines", NS, name)["spec"]["runStrategy"] == "Halted"
    assert env.get("virtualmachineinstances", NS, name)["spec"]["terminationGracePeriodSeconds"] == 0


def test_stop_halted_only_shortens_the_grace_period(env: Env) -> None:
    name = _vm(env, "halting", runStrategy="Halted")
    vmi = running_vmi(env, NS, name)
    status, body = env.vm_verb(NS, name, "stop")
    assert status == 409 and "Halted only supports manual stop requests with a shorter graceperiod" in body["message"]
    assert env.vm_verb(NS, name, "stop", {"gracePeriod": -1})[0] == 400
    # The VMI's grace period is 0 already: nothing is shorter.
    assert env.vm_verb(NS, name, "stop", {"gracePeriod": 0})[0] == 409
    assert _requests(env, name) is None and vmi["spec"]["terminationGracePeriodSeconds"] == 0


def test_restart_asks_to_stop_this_vmi_then_start(env: Env) -> None:
    name = _vm(env, "restart", runStrategy="Always")
    status, body = env.vm_verb(NS, name, "restart")
    assert status == 409 and body["message"].endswith("VM is not running: Halted")
    vmi = running_vmi(env, NS, name)
    assert env.vm_verb(NS, name, "restart", {"dryRun": ["All"]})[0] == 202
    assert _requests(env, name) is None  # a dry run writes nothing
    assert env.vm_verb(NS, name, "restart")[0] == 202
    assert _requests(env, name) == [{"action": "Stop", "uid": vmi["metadata"]["uid"]}, {"action": "Start"}]

    status, body = env.vm_verb(NS, name, "restart")
    assert status == 409 and "stop/start already underway" in body["message"]

    status, body = env.vm_verb(NS, name, "restart", {"gracePeriodSeconds": 5})
    assert (status, body["message"]) == (400, "For force restart, only gracePeriod=0 is supported for now")
    halted = _vm(env, "restart", runStrategy="Halted")
    status, body = env.vm_verb(NS, halted, "restart")
    assert status == 409 and "does not support manual restart requests" in body["message"]


def test_migrate_creates_a_migration_for_the_running_vmi(env: Env) -> None:
    name = _vm(env, "migrate", runStrategy="Always")
    status, body = env.vm_verb(NS, name, "migrate")
    assert status == 404 and body["message"] == f'virtualmachineinstance.kubevirt.io "{name}" not found'
    running_vmi(env, NS, name)
    assert env.vm_verb(NS, name, "migrate", {"dryRun": ["All"]})[0] == 202
    assert env.vm_verb(NS, name, "migrate", {"addedNodeSelector": {"zone": "b"}})[0] == 202
    migrations = [m for m in env.custom.list_namespaced_custom_object(
        "kubevirt.io", "v1", NS, "virtualmachineinstancemigrations")["items"] if m["spec"]["vmiName"] == name]
    assert len(migrations) == 1
    assert migrations[0]["metadata"]["name"].startswith("kubevirt-migrate-vm-")
    assert migrations[0]["spec"]["addedNodeSelector"] == {"zone": "b"}


def test_errors_are_kubernetes_statuses(env: Env) -> None:
    status, body = env.vm_verb(NS, "nope", "start")
    assert status == 404 and body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'virtualmachine.kubevirt.io "nope" not found', "reason": "NotFound", "code": 404,
        "details": {"name": "nope", "group": "kubevirt.io", "kind": "virtualmachine"}}
    name = _vm(env, "body", runStrategy="Halted")
    for bad in ("{not json: [", [1, 2], {"paused": "yes"}, {"dryRun": ["Some"]}):
        status, body = env.vm_verb(NS, name, "start", bad)
        assert status == 400 and body["reason"] == "BadRequest", (bad, body)
    status, body = env.vm_verb(NS, name, "explode")
    assert (status, body["reason"]) == (404, "NotFound")
    status, body = env.request("GET", f"/apis/subresources.kubevirt.io/v1/namespaces/{NS}/virtualmachines/"
                                      f"{name}/start")
    assert (status, body["reason"]) == (405, "MethodNotAllowed")


def test_forced_restart_deletes_the_launcher_pod(env: Env) -> None:
    name = _vm(env, "forced", runStrategy="Always")
    vmi = running_vmi(env, NS, name)
    core = client.CoreV1Api(env.api)
    pod = f"virt-launcher-{name}"
    core.create_namespaced_pod(NS, {"metadata": {"name": pod, "labels": {
        "kubevirt.io": "virt-launcher", "kubevirt.io/created-by": vmi["metadata"]["uid"]}},
        "spec": {"containers": [{"name": "compute", "image": "launcher"}]}})
    core.patch_namespaced_pod_status(pod, NS, {"status": {"phase": "Running"}})
    assert env.vm_verb(NS, name, "restart", {"gracePeriodSeconds": 0})[0] == 202
    assert _requests(env, name) == [{"action": "Stop", "uid": vmi["metadata"]["uid"]}, {"action": "Start"}]
    try:
        assert core.read_namespaced_pod(pod, NS).metadata.deletion_timestamp is not None
    except client.ApiException as error:
        assert error.status == 404  # deleted outright
