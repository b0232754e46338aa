"""virt-controller's /metrics carries every replica's runtime metrics, leading or not:
the work queue of each of its controllers (kubevirt_workqueue_*, label name) and its
Kubernetes client's requests (kubevirt_rest_client_*)."""

from __future__ import annotations



from tests.metrics_text import scrape
from tests.wait import eventually
from virt_controller.__main__ import VirtController

QUEUES = {"vmi", "migration", "evacuation", "vm", "vmirs", "node"}


def test_controller_exports_its_queues_and_rest_client_requests(control_plane, cluster_ca) -> None:
    ca = cluster_ca
    controller = VirtController(control_plane.api_client(), "kubevirt", "kubevirt-py/virt-launcher:latest",
                                metrics_port=0, lease_duration=2.0, renew_deadline=1.2, retry_period=0.2)
    controller.start()
    try:
        assert controller.metrics is not None
        eventually(controller.leader.is_leader, timeout=10, what="leading")
        samples = scrape(controller.metrics.url, ca.cert_pem)
        queues = {labels["name"] for name, labels, _ in samples if name == "kubevirt_workqueue_depth"}
        assert queues == QUEUES
        for name in ("kubevirt_workqueue_adds_total", "kubevirt_workqueue_retries_total",
                     "kubevirt_workqueue_unfinished_work_seconds",
                     "kubevirt_workqueue_longest_running_processor_seconds",
                     "kubevirt_workqueue_queue_duration_seconds_count",
                     "kubevirt_workqueue_work_duration_seconds_count"):
            assert {labels["name"] for sample, labels, _ in samples if sample == name} == QUEUES, name
        leases = [labels for name, labels, _ in samples
                  if name == "kubevirt_rest_client_requests_total" and labels["resource"] == "leases"]
        assert leases and all(labels["code"].isdigit() for labels in leases)
        assert any(name == "kubevirt_rest_client_request_latency_seconds_bucket" for name, *_ in samples)
    finally:
        controller.stop()
