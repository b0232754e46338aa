"""/launcher-eviction-validate: evicting a virt-launcher pod marks its VMI for evacuation and
is refused with 429 (eviction clients retry), per the VMI's evictionStrategy."""

from __future__ import annotations

from typing import Any

import pytest

from virt_api.admission.lookups import Lookups
from virt_api.admission.pod_eviction import admit_launcher_eviction
from virt_api.admission.review import parse_review

Obj = dict[str, Any]
NODE = "node01"


def _pod(phase: str = "Running", node: str = NODE, app: str = "virt-launcher") -> Obj:
    return {"metadata": {"name": "virt-launcher-vm-abcde", "namespace": "default", "labels": {"kubevirt.io": app},
                         "annotations": {"kubevirt.io/domain": "vm"}},
            "spec": {"nodeName": node}, "status": {"phase": phase}}


def _vmi(strategy: str | None, migratable: bool = True, **status: Any) -> Obj:
    spec = {"evictionStrategy": strategy} if strategy else {}
    return {"metadata": {"name": "vm", "namespace": "default"}, "spec": spec,
            "status": {"nodeName": NODE, "phase": "Running", **status,
                       "conditions": [{"type": "LiveMigratable", "status": "True" if migratable else "False",
                                       "reason": "" if migratable else "DisksNotLiveMigratable",
                                       "message": "" if migratable else "PVC data is not shared"}]}}


class Cluster:
    def __init__(self, pod: Obj | None, vmi: Obj | None, fail_marking: bool = False) -> None:
        self.marked: list[tuple[str, str, str, bool]] = []
        self._fail = fail_marking

        def mark(namespace: str, name: str, node: str, dry_run: bool) -> None:
            if self._fail:
                raise RuntimeError("the API server is away")
            self.marked.append((namespace, name, node, dry_run))

        self.lookups = Lookups(vmi=lambda _ns, _n: vmi, migrations=lambda _ns, _n: [],
                               pod=lambda _ns, _n: pod, mark_evacuation=mark)


def _review(dry_run: bool = False, delete_options: Obj | None = None) -> Any:
    eviction: Obj = {"apiVersion": "policy/v1", "kind": "Eviction",
                     "metadata": {"name": "virt-launcher-vm-abcde", "namespace": "default"}}
    if delete_options is not None:
        eviction["deleteOptions"] = delete_options
    return parse_review({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u1", "operation": "CREATE", "namespace": "default", "name": "virt-launcher-vm-abcde",
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "subResource": "eviction",
        "userInfo": {"username": "jane"}, "object": eviction, "oldObject": None, "dryRun": dry_run}})


def _admit(cluster: Cluster, **review: Any) -> Obj:
    return admit_launcher_eviction(_review(**review), cluster.lookups)


@pytest.mark.parametrize("strategy", ["LiveMigrate", "LiveMigrateIfPossible", "External"])
def test_a_launcher_eviction_marks_the_vmi_and_is_refused_with_429(strategy: str) -> None:
    cluster = Cluster(_pod(), _vmi(strategy))
    answer = _admit(cluster)
    assert answer["allowed"] is False and answer["status"]["code"] == 429
    assert answer["status"]["message"] == 'Eviction triggered evacuation of VMI "default/vm"'
    assert cluster.marked == [("default", "vm", NODE, False)]


def test_a_dry_run_eviction_marks_only_as_a_dry_run() -> None:
    for review in ({"dry_run": True}, {"delete_options": {"dryRun": ["All"]}}):
        cluster = Cluster(_pod(), _vmi("LiveMigrate"))
        assert _admit(cluster, **review)["status"]["code"] == 429
        assert cluster.marked == [("default", "vm", NODE, True)]


def test_an_unmigratable_vmi_is_kept_or_let_go_by_its_strategy() -> None:
    cluster = Cluster(_pod(), _vmi("LiveMigrate", migratable=False))
    answer = _admit(cluster)
    assert answer["status"]["code"] == 429 and not cluster.marked
    assert answer["status"]["message"] == ("VMI vm is configured with an eviction strategy but is not "
                                           "live-migratable: PVC data is not shared")
    cluster = Cluster(_pod(), _vmi("LiveMigrateIfPossible", migratable=False))
    assert _admit(cluster)["allowed"] is True and not cluster.marked


@pytest.mark.parametrize("pod,vmi", [
    (None, _vmi("LiveMigrate")),                                  # no such pod
    (_pod(app="virt-handler"), _vmi("LiveMigrate")),              # not a launcher
    (_pod(phase="Succeeded"), _vmi("LiveMigrate")),               # a launcher that has ended
    (_pod(), None),                                               # its VMI is gone
    (_pod(), _vmi(None)),                                         # no eviction strategy
    (_pod(), _vmi("None")),
])
def test_other_evictions_go_through(pod: Obj | None, vmi: Obj | None) -> None:
    cluster = Cluster(pod, vmi)
    assert _admit(cluster)["allowed"] is True and not cluster.marked


def test_a_vmi_being_evacuated_or_a_target_pod_is_refused_without_marking_again() -> None:
    cluster = Cluster(_pod(), _vmi("LiveMigrate", evacuationNodeName=NODE))
    answer = _admit(cluster)
    assert answer["status"]["message"].startswith("Evacuation in progress: ") and not cluster.marked
    cluster = Cluster(_pod(node="node02"), _vmi("LiveMigrate"))
    assert _admit(cluster)["status"]["message"] == "Eviction request for target Pod" and not cluster.marked


def test_a_failed_mark_says_why_and_is_still_refused() -> None:
    answer = _admit(Cluster(_pod(), _vmi("LiveMigrate"), fail_marking=True))
    assert answer["status"]["code"] == 429 and "the API server is away" in answer["status"]["message"]
