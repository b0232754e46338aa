"""Migration admission against a fake cluster: the VMI lookup is a plain callable."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kube_schema.errors import INVALID
from tests.virt_api.test_admission_support import Direct, Lookups, body, causes

Obj = dict[str, Any]
CREATE = "/migration-validate-create"
UPDATE = "/migration-validate-update"


def running_vmi(**status: Any) -> Obj:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": "testvmi", "namespace": "team-a"},
            "spec": {"domain": {"devices": {"interfaces": [{"name": "default", "masquerade": {}}]}},
                     "networks": [{"name": "default", "pod": {}}]},
            "status": {"phase": "Running", "conditions": [{"type": "LiveMigratable", "status": "True"}], **status}}


def migration(name: str = "mig", vmi: str = "testvmi") -> Obj:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
            "metadata": {"name": name, "namespace": "team-a", "labels": {"kubevirt.io/vmi-name": vmi}},
            "spec": {"vmiName": vmi}}


class FakeCluster:
    def __init__(self, vmis: list[Obj], migrations: list[Obj] | None = None) -> None:
        self.vmis = {(v["metadata"]["namespace"], v["metadata"]["name"]): v for v in vmis}
        self.migrations = migrations or []
        self.asked: list[tuple[str, str]] = []

    def lookups(self) -> Lookups:
        def vmi(namespace: str, name: str) -> Obj | None:
            self.asked.append((namespace, name))
            return self.vmis.get((namespace, name))

        def migrations(namespace: str, name: str) -> list[Obj]:
            return [m for m in self.migrations if m["metadata"]["namespace"] == namespace
                    and m["metadata"]["labels"].get("kubevirt.io/vmi-name") == name]

        return Lookups(vmi=vmi, migrations=migrations)


def verdict(cluster: FakeCluster, obj: Obj) -> Obj:
    return Direct(cluster.lookups())(CREATE, body(obj, namespace="team-a"))


def only_message(response: Obj) -> str:
    found = causes(response)
    assert response["allowed"] is False and len(found) == 1, response
    assert found[0]["field"] == "spec.vmiName" and found[0]["reason"] == INVALID
    return found[0]["message"]


def test_a_running_migratable_vmi_may_migrate() -> None:
    cluster = FakeCluster([running_vmi()])
    assert verdict(cluster, migration())["allowed"]
    assert cluster.asked == [("team-a", "testvmi")]


def test_the_vmi_must_exist_in_the_migrations_namespace() -> None:
    elsewhere = running_vmi()
    elsewhere["metadata"]["namespace"] = "team-b"
    assert "does not exist" in only_message(verdict(FakeCluster([elsewhere]), migration()))


@pytest.mark.parametrize("phase", ["Pending", "Scheduling", "Scheduled", "Succeeded", "Failed", ""])
def test_the_vmi_must_be_running(phase: str) -> None:
    vmi = running_vmi(phase=phase)
    assert "only a Running VMI" in only_message(verdict(FakeCluster([vmi]), migration()))


def test_the_condition_message_is_the_answer() -> None:
    vmi = running_vmi(conditions=[{"type": "LiveMigratable", "status": "False", "reason": "DisksNotLiveMigratable",
                                   "message": "cannot migrate VMI: PVC data is not shared"}])
    message = only_message(verdict(FakeCluster([vmi]), migration()))
    assert message.endswith("Cannot migrate VMI, Reason: DisksNotLiveMigratable, "
                            "Message: cannot migrate VMI: PVC data is not shared")


def test_without_the_condition_the_spec_may_already_say_why() -> None:
    vmi = running_vmi(conditions=[])
    vmi["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    assert "PVC data is not shared" in only_message(verdict(FakeCluster([vmi]), migration()))
    vmi["spec"]["volumes"] = []
    assert "LiveMigratable condition yet" in only_message(verdict(FakeCluster([vmi]), migration()))


def test_one_migration_at_a_time() -> None:
    running = migration("first")
    running["status"] = {"phase": "Running"}
    assert "first of this VMI is still in progress" in only_message(
        verdict(FakeCluster([running_vmi()], [running]), migration("second")))
    running["status"]["phase"] = "Succeeded"
    assert verdict(FakeCluster([running_vmi()], [running]), migration("second"))["allowed"]


def test_a_failing_lookup_is_an_answer_not_a_crash() -> None:
    def broken(namespace: str, name: str) -> Obj | None:
        raise ConnectionError("apiserver unreachable")

    response = Direct(Lookups(vmi=broken, migrations=lambda n, m: []))(CREATE, body(migration()))
    assert response["allowed"] is False and response["status"]["code"] == 503
    assert "apiserver unreachable" in response["status"]["message"]


def test_the_spec_is_immutable() -> None:
    old = migration()
    new = copy.deepcopy(old)
    new["spec"]["vmiName"] = "other"
    response = Direct()(UPDATE, body(new, operation="UPDATE", old=old))
    assert [(c["field"], c["reason"]) for c in causes(response)] == [("spec", INVALID)]


def test_status_and_other_labels_may_change() -> None:
    old = migration()
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running"}
    new["metadata"]["labels"]["team"] = "a"
    assert Direct()(UPDATE, body(new, operation="UPDATE", old=old))["allowed"]


def test_the_selector_label_stays_while_in_flight() -> None:
    old = migration()
    new = copy.deepcopy(old)
    del new["metadata"]["labels"]["kubevirt.io/vmi-name"]
    response = Direct()(UPDATE, body(new, operation="UPDATE", old=old))
    assert [c["field"] for c in causes(response)] == ["metadata.labels[kubevirt.io/vmi-name]"]
    new["status"] = {"phase": "Failed"}
    assert Direct()(UPDATE, body(new, operation="UPDATE", old=old))["allowed"]
