"""The runtime metrics of every component besides its own: its Kubernetes REST client
requests and its controllers' work queues, under upstream KubeVirt's names
(``kubevirt_rest_client_*``, ``kubevirt_workqueue_*``).

kube_client implements both without knowing of KubeVirt; this is where they get the
"kubevirt" prefix, so every component spells it the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from kube_client.controller import Controller, WorkqueueMetrics
from kube_client.rest_metrics import RestClientMetrics

NAMESPACE = "kubevirt"


def rest_client_metrics() -> RestClientMetrics:
    """Counts nothing until given an ApiClient: instrument(api), and release(api) on stop."""
    return RestClientMetrics(NAMESPACE)


def workqueue_metrics(controllers: Iterable[Controller]) -> WorkqueueMetrics:
    """The queues of ``controllers``, each under its controller's name."""
    metrics = WorkqueueMetrics(NAMESPACE)
    for controller in controllers:
        metrics.instrument(controller.name, controller.queue)
    return metrics
