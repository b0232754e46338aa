"""The migration controller against the real API server and scheduler, with the handlers
faked by patching the VMI's migrationState as they will: the phases, the target pod on
another node, success moving the VMI, failure and cancellation leaving it on the source,
refusals, one migration at a time, and evacuation of a cordoned node."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from kubevirt_api.migration_config import MigrationConfig, parse_config_map_value
from local_cluster.scheduler import Scheduler
from tests.wait import eventually
from virt_controller.launcher_pod import launcher_pod, migration_target_pod
from virt_controller.migration_controller import MigrationController
from virt_controller.migration_evacuation import EvacuationController

NS = "default"
VMI = ("kubevirt.io", "v1", NS, "virtualmachineinstances")
VMIM = ("kubevirt.io", "v1", NS, "virtualmachineinstancemigrations")
NODES = ("mig-a", "mig-b", "mig-c")


@pytest.fixture(scope="module")
def cluster(control_plane, kubevirt_api) -> Iterator[client.ApiClient]:
    api = kubevirt_api
    core = client.CoreV1Api(api)
    for node in NODES:
        core.create_node({"metadata": {"name": node, "labels": {"kubevirt.io/schedulable": "true",
                                                                 "kubernetes.io/hostname": node}}})
        core.patch_node_status(node, {"status": {
            "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
            "capacity": {"cpu": "8", "memory": "16Gi"}, "conditions": [{"type": "Ready", "status": "True"}]}})
    scheduler = Scheduler(control_plane.api_client())
    migrations = MigrationController(control_plane.api_client(), config=MigrationConfig())
    evacuation = EvacuationController(control_plane.api_client(), config=MigrationConfig())
    for part in (scheduler, migrations, evacuation):
        part.start()
    yield api
    for part in (evacuation, migrations, scheduler):
        part.stop()


@pytest.fixture(autouse=True)
def no_leftovers(request) -> Iterator[None]:
    """Each test ends with no migration in flight, so none counts against the next one's
    parallelism limits (two outbound per node)."""
    yield
    if "cluster" not in request.fixturenames:
        return
    api = request.getfixturevalue("cluster")
    for migration in _custom(api).list_namespaced_custom_object(*VMIM[:3], VMIM[3])["items"]:
        if (migration.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            try:
                _custom(api).delete_namespaced_custom_object(*VMIM, migration["metadata"]["name"])
                vmi = _get(api, migration["spec"]["vmiName"])  # a started one waits for the source handler
            except client.ApiException:
                continue
            if ((vmi.get("status") or {}).get("migrationState") or {}).get("migrationUid") == \
                    migration["metadata"]["uid"]:
                _state(api, vmi["metadata"]["name"], abortStatus="Succeeded", completed=True, failed=True)
    eventually(lambda: all((m.get("status") or {}).get("phase") in ("Succeeded", "Failed") for m in
                           _custom(api).list_namespaced_custom_object(*VMIM[:3], VMIM[3])["items"]),
               what="no migration left in flight")


# --- helpers: a running VMI, fake handlers ---------------------------------------------------

def _custom(api) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def _core(api) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def _running_vmi(api, node: str = "mig-a", **spec) -> dict:
    """A VMI as the VMI controller and its handler leave it: Running on node, with a
    Running launcher pod there."""
    name = f"vmi-{uuid.uuid4().hex[:6]}"
    body = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "metadata": {"name": name},
            "spec": {"domain": {"devices": {"interfaces": [{"name": "default", "masquerade": {}}]},
                                "resources": {"requests": {"memory": "64Mi"}}},
                     "networks": [{"name": "default", "pod": {}}], **spec}}
    vmi = _custom(api).create_namespaced_custom_object(*VMI[:3], VMI[3], body)
    pod = launcher_pod(vmi)
    pod["spec"]["nodeName"] = node
    pod = _core(api).create_namespaced_pod(NS, pod)
    _ready(api, pod.metadata.name)
    _custom(api).patch_namespaced_custom_object(*VMI, name, {"metadata": {"labels": {"kubevirt.io/nodeName": node}}})
    _status(api, name, {"phase": "Running", "nodeName": node, "activePods": {pod.metadata.uid: node},
                        "conditions": [{"type": "LiveMigratable", "status": "True"}]})
    return _get(api, name)


def _ready(api, pod: str) -> None:
    _core(api).patch_namespaced_pod_status(pod, NS, {"status": {
        "phase": "Running", "podIP": "127.9.0.3", "conditions": [{"type": "Ready", "status": "True"}]}})


def _status(api, name: str, status: dict) -> None:
    _custom(api).patch_namespaced_custom_object_status(*VMI, name, {"status": status})


def _state(api, name: str, **fields) -> None:
    """What a handler writes into vmi.status.migrationState."""
    _status(api, name, {"migrationState": fields})


def _get(api, name: str) -> dict:
    return _custom(api).get_namespaced_custom_object(*VMI, name)


def _migrate(api, vmi: str) -> dict:
    return _custom(api).create_namespaced_custom_object(*VMIM[:3], VMIM[3], {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": f"mig-{uuid.uuid4().hex[:6]}"}, "spec": {"vmiName": vmi}})


def _migration(api, name: str) -> dict | None:
    try:
        return _custom(api).get_namespaced_custom_object(*VMIM, name)
    except client.ApiException as error:
        assert error.status == 404
        return None


def _phase(api, name: str, phase: str, timeout: float = 10.0) -> dict:
    return eventually(lambda: (lambda m: m if m and (m.get("status") or {}).get("phase") == phase else None)(
        _migration(api, name)), timeout=timeout, what=f"migration {name} {phase}")


def _target_pods(api, migration: dict) -> list:
    return _core(api).list_namespaced_pod(
        NS, label_selector=f"kubevirt.io/migrationJobUID={migration['metadata']['uid']}").items


def _to_preparing_target(api, vmi: dict) -> tuple[dict, object]:
    """Create a migration and drive it to PreparingTarget; returns (migration, target pod)."""
    migration = _migrate(api, vmi["metadata"]["name"])
    name = migration["metadata"]["name"]
    _phase(api, name, "Scheduling")
    pod = eventually(lambda: (lambda pods: pods[0] if len(pods) == 1 and pods[0].spec.node_name else None)(
        _target_pods(api, migration)), what="target pod scheduled")
    _ready(api, pod.metadata.name)
    return _phase(api, name, "PreparingTarget"), pod


def _failed_reason(migration: dict) -> str:
    return next(c["reason"] for c in migration["status"]["conditions"] if c["type"] == "Failed")


# --- tests ------------------------------------------------------------------------------------

def test_phases_to_success_move_the_vmi_to_the_target_node(cluster) -> None:
    vmi = _running_vmi(cluster)
    name = vmi["metadata"]["name"]
    migration, pod = _to_preparing_target(cluster, vmi)
    # The target pod: the VMI's launcher pod, marked for the migration, kept off the source.
    assert pod.spec.node_name != "mig-a"
    assert pod.metadata.labels["kubevirt.io/migrationJobUID"] == migration["metadata"]["uid"]
    assert pod.metadata.annotations["kubevirt.io/migrationJobName"] == migration["metadata"]["name"]
    term = pod.spec.affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution[0]
    assert term.label_selector.match_labels == {"kubevirt.io/created-by": vmi["metadata"]["uid"]}
    assert term.topology_key == "kubernetes.io/hostname"
    assert len(_target_pods(cluster, migration)) == 1  # expectations: one target pod only
    # The hand-off: what the handlers act on.
    handed = _get(cluster, name)
    state = handed["status"]["migrationState"]
    assert state["migrationUid"] == migration["metadata"]["uid"] and state["mode"] == "PreCopy"
    assert (state["sourceNode"], state["targetNode"], state["targetPod"]) == ("mig-a", pod.spec.node_name,
                                                                              pod.metadata.name)
    assert state["sourcePod"] and state["migrationConfiguration"]["completionTimeoutPerGiB"] == 150
    assert handed["metadata"]["labels"]["kubevirt.io/migrationTargetNodeName"] == pod.spec.node_name
    mig = migration["metadata"]["name"]
    _state(cluster, name, targetNodeAddress="10.0.0.2:4444", targetNodeDomainDetected=False)
    _phase(cluster, mig, "TargetReady")
    _state(cluster, name, startTimestamp="2026-01-01T00:00:00Z")
    _phase(cluster, mig, "Running")
    _state(cluster, name, completed=True, endTimestamp="2026-01-01T00:00:05Z")
    done = _phase(cluster, mig, "Succeeded")
    phases = [t["phase"] for t in done["status"]["phaseTransitionTimestamps"]]
    assert phases == ["Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running",
                      "Succeeded"]
    assert done["status"]["migrationState"]["completed"] is True
    assert done["metadata"]["labels"]["kubevirt.io/vmi-name"] == name
    moved = eventually(lambda: (lambda v: v if v["metadata"]["labels"]["kubevirt.io/nodeName"]
                                == pod.spec.node_name else None)(_get(cluster, name)))
    assert moved["status"]["nodeName"] == pod.spec.node_name
    assert moved["status"]["activePods"] == {pod.metadata.uid: pod.spec.node_name}
    # The target pod is now the one the VMI controls; the source pod no longer is.
    owners = {p.metadata.name: p.metadata.owner_references[0].controller
              for p in _core(cluster).list_namespaced_pod(
                  NS, label_selector=f"kubevirt.io/created-by={vmi['metadata']['uid']}").items}
    assert owners[pod.metadata.name] is True and list(owners.values()).count(True) == 1
    eventually(lambda: "kubevirt.io/migrationJobFinalize" not in (_migration(cluster, mig)["metadata"].get(
        "finalizers") or []), what="finalizer removed")


def test_failure_keeps_the_vmi_on_the_source_and_removes_the_target_pod(cluster) -> None:
    vmi = _running_vmi(cluster)
    name = vmi["metadata"]["name"]
    migration, pod = _to_preparing_target(cluster, vmi)
    mig = migration["metadata"]["name"]
    _state(cluster, name, targetNodeAddress="10.0.0.2:4444", startTimestamp="2026-01-01T00:00:00Z")
    _phase(cluster, mig, "Running")
    _state(cluster, name, completed=True, failed=True, failureReason="connection reset",
           endTimestamp="2026-01-01T00:00:05Z")
    failed = _phase(cluster, mig, "Failed")
    assert _failed_reason(failed) == "MigrationFailed"
    gone = eventually(lambda: all(p.metadata.deletion_timestamp for p in _target_pods(cluster, migration)),
                      what="target pod deleted")
    assert gone
    after = _get(cluster, name)
    assert after["status"]["nodeName"] == "mig-a" and after["metadata"]["labels"]["kubevirt.io/nodeName"] == "mig-a"


def test_cancel_by_deletion_waits_for_the_source_handlers_abort(cluster) -> None:
    vmi = _running_vmi(cluster)
    name = vmi["metadata"]["name"]
    migration, _pod = _to_preparing_target(cluster, vmi)
    mig = migration["metadata"]["name"]
    _state(cluster, name, targetNodeAddress="10.0.0.2:4444", startTimestamp="2026-01-01T00:00:00Z")
    _phase(cluster, mig, "Running")
    _custom(cluster).delete_namespaced_custom_object(*VMIM, mig)
    eventually(lambda: _get(cluster, name)["status"]["migrationState"].get("abortRequested"),
               what="abortRequested on the VMI")
    held = eventually(lambda: (lambda m: m if any(c["type"] == "migrationAbortRequested" for c in
                                                 (m.get("status") or {}).get("conditions") or []) else None)(
        _migration(cluster, mig)), what="migrationAbortRequested condition")
    assert held["metadata"]["deletionTimestamp"] and held["status"]["phase"] == "Running"
    assert "kubevirt.io/migrationJobFinalize" in held["metadata"]["finalizers"]
    # The source handler cancels libvirt's migration and says so.
    _state(cluster, name, abortStatus="Succeeded", completed=True, failed=True,
           endTimestamp="2026-01-01T00:00:03Z")
    eventually(lambda: _migration(cluster, mig) is None, what="migration gone once aborted")
    assert _get(cluster, name)["status"]["nodeName"] == "mig-a"
    eventually(lambda: all(p.metadata.deletion_timestamp for p in _target_pods(cluster, migration)),
               what="target pod deleted")


def test_cancel_before_the_handoff_fails_at_once(cluster) -> None:
    vmi = _running_vmi(cluster)
    migration = _migrate(cluster, vmi["metadata"]["name"])
    mig = migration["metadata"]["name"]
    _phase(cluster, mig, "Scheduling")
    _custom(cluster).delete_namespaced_custom_object(*VMIM, mig)
    eventually(lambda: _migration(cluster, mig) is None, what="cancelled migration gone")
    eventually(lambda: all(p.metadata.deletion_timestamp for p in _target_pods(cluster, migration)),
               what="target pod deleted")
    assert "migrationState" not in _get(cluster, vmi["metadata"]["name"])["status"]


def test_a_vmi_that_cannot_live_migrate_is_refused(cluster) -> None:
    vmi = _running_vmi(cluster)
    _status(cluster, vmi["metadata"]["name"], {"conditions": [{
        "type": "LiveMigratable", "status": "False", "reason": "DisksNotLiveMigratable",
        "message": "cannot migrate VMI: PVC data is not shared"}]})
    migration = _migrate(cluster, vmi["metadata"]["name"])
    failed = _phase(cluster, migration["metadata"]["name"], "Failed")
    assert _failed_reason(failed) == "DisksNotLiveMigratable"
    assert not _target_pods(cluster, migration)


def test_one_migration_per_vmi_at_a_time(cluster) -> None:
    vmi = _running_vmi(cluster)
    first, _pod = _to_preparing_target(cluster, vmi)
    second = _migrate(cluster, vmi["metadata"]["name"])
    failed = _phase(cluster, second["metadata"]["name"], "Failed")
    assert _failed_reason(failed) == "MigrationInProgress"
    assert not _target_pods(cluster, second)
    assert _migration(cluster, first["metadata"]["name"])["status"]["phase"] == "PreparingTarget"
    # Cancelled after the hand-off but before it started: the controller ends it itself.
    _custom(cluster).delete_namespaced_custom_object(*VMIM, first["metadata"]["name"])
    eventually(lambda: _migration(cluster, first["metadata"]["name"]) is None, what="first cancelled")
    state = _get(cluster, vmi["metadata"]["name"])["status"]["migrationState"]
    assert state["abortRequested"] and state["failed"] and state["abortStatus"] == "Succeeded"


def test_outbound_migrations_per_node_are_limited(cluster) -> None:
    """parallelOutboundMigrationsPerNode (2 by default): a third migration from the same
    node waits in Pending, without a target pod, until one of the two is over."""
    migrations = [_migrate(cluster, _running_vmi(cluster, node="mig-b")["metadata"]["name"]) for _ in range(3)]
    eventually(lambda: sum(1 for m in migrations if _target_pods(cluster, m)) == 2, what="two target pods")
    waiting = next(m for m in migrations if not _target_pods(cluster, m))
    # Accepted (Pending) it is, though that write may land just after the other two's pods.
    eventually(lambda: (_migration(cluster, waiting["metadata"]["name"]).get("status") or {}).get("phase")
               == "Pending", what="the third one Pending")
    assert not _target_pods(cluster, waiting)
    done = next(m for m in migrations if m is not waiting)
    _custom(cluster).delete_namespaced_custom_object(*VMIM, done["metadata"]["name"])
    _phase(cluster, waiting["metadata"]["name"], "Scheduling", timeout=15)


def test_a_cordoned_node_is_evacuated(cluster) -> None:
    stays = _running_vmi(cluster, node="mig-c")
    leaves = _running_vmi(cluster, node="mig-c", evictionStrategy="LiveMigrate")
    _core(cluster).patch_node("mig-c", {"spec": {"unschedulable": True}})
    try:
        def evacuation() -> dict | None:
            found = [m for m in _custom(cluster).list_namespaced_custom_object(*VMIM[:3], VMIM[3])["items"]
                     if m["spec"]["vmiName"] == leaves["metadata"]["name"]]
            return found[0] if found else None

        migration = eventually(evacuation, what="evacuation migration")
        assert migration["metadata"]["name"].startswith("kubevirt-evacuation-")
        assert migration["metadata"]["annotations"]["kubevirt.io/evacuationMigration"] == "mig-c"
        assert _get(cluster, leaves["metadata"]["name"])["status"]["evacuationNodeName"] == "mig-c"
        pod = eventually(lambda: (lambda pods: pods[0] if pods and pods[0].spec.node_name else None)(
            _target_pods(cluster, migration)), what="target pod scheduled")
        assert pod.spec.node_name in ("mig-a", "mig-b")
        assert not [m for m in _custom(cluster).list_namespaced_custom_object(*VMIM[:3], VMIM[3])["items"]
                    if m["spec"]["vmiName"] == stays["metadata"]["name"]]
    finally:
        _core(cluster).patch_node("mig-c", {"spec": {"unschedulable": False}})
        for vmi in (stays, leaves):  # marked for evacuation, it would get a new migration
            _custom(cluster).delete_namespaced_custom_object(*VMI, vmi["metadata"]["name"])


# --- pure parts -------------------------------------------------------------------------------

def test_migration_config_defaults_and_config_map_value() -> None:
    defaults = MigrationConfig()
    assert (defaults.parallelMigrationsPerCluster, defaults.parallelOutboundMigrationsPerNode,
            defaults.completionTimeoutPerGiB, defaults.progressTimeout) == (5, 2, 150, 150)
    assert defaults.bandwidth_bytes_per_second == 0 and not defaults.allowPostCopy and not defaults.allowAutoConverge
    custom = parse_config_map_value("parallelMigrationsPerCluster: 1\nbandwidthPerMigration: 64Mi\n"
                                    "allowPostCopy: true\n")
    assert custom.parallelMigrationsPerCluster == 1 and custom.allowPostCopy
    assert custom.bandwidth_bytes_per_second == 64 * 1024 * 1024 and custom.progressTimeout == 150
    with pytest.raises(ValueError, match="parallelMigrationsPerCluster"):
        parse_config_map_value("parallelMigrationsPerCluster: lots")


def test_target_pod_is_not_the_vmis_controlled_pod_and_drops_node_labels() -> None:
    vmi = {"metadata": {"name": "v", "namespace": NS, "uid": "u-1",
                        "labels": {"kubevirt.io/nodeName": "a", "app": "x"}},
           "spec": {"hostname": "fixed", "nodeSelector": {"disk": "ssd"},
                    "domain": {"devices": {}, "resources": {"requests": {"memory": "64Mi"}}}}}
    pod = migration_target_pod(vmi, {"metadata": {"name": "m", "uid": "m-1"},
                                     "spec": {"addedNodeSelector": {"zone": "b", "disk": "hdd"}}})
    meta = pod["metadata"]
    assert meta["ownerReferences"][0]["uid"] == "u-1" and meta["ownerReferences"][0]["controller"] is False
    assert "kubevirt.io/nodeName" not in meta["labels"] and meta["labels"]["app"] == "x"
    assert meta["labels"]["kubevirt.io/migrationJobUID"] == "m-1"
    assert "hostname" not in pod["spec"]
    assert pod["spec"]["nodeSelector"] == {"zone": "b", "disk": "ssd", "kubevirt.io/schedulable": "true"}
