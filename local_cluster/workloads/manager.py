"""The workload controllers of kube-controller-manager that deploy/ relies on, run
together over one set of shared informers: ReplicaSets, Deployments, DaemonSets."""

from __future__ import annotations

import time

from kubernetes import client

from local_cluster.workloads.daemonset import DaemonSetController
from local_cluster.workloads.deployment import DeploymentController
from local_cluster.workloads.informers import WorkloadInformers
from local_cluster.workloads.replicaset import ReplicaSetController


class WorkloadControllers:
    def __init__(self, api_client: client.ApiClient, *, namespace: str | None = None,
                 informers: WorkloadInformers | None = None) -> None:
        """namespace limits the controllers to one namespace (tests); informers lets a
        caller supply the caches (e.g. with a watch that lags on purpose)."""
        self.informers = informers or WorkloadInformers(api_client, namespace=namespace)
        self.replicasets = ReplicaSetController(api_client, self.informers)
        self.deployments = DeploymentController(api_client, self.informers)
        self.daemonsets = DaemonSetController(api_client, self.informers)
        self._controllers = (self.replicasets, self.deployments, self.daemonsets)
        self._started = False

    def start(self) -> None:
        if self._started:
            raise RuntimeError("the workload controllers were started already; make new ones")
        self._started = True
        self.informers.start()
        for controller in self._controllers:
            controller.start()

    def wait_synced(self, timeout: float) -> bool:
        """True once every cache has been listed (the workers start acting then)."""
        return self.informers.wait_for_sync(timeout)

    def stop(self, timeout: float = 10.0) -> bool:
        """Workers first (a reconcile in progress finishes), then the watches; True when
        every thread ended within timeout."""
        deadline = time.monotonic() + timeout
        stopped = True
        for controller in self._controllers:
            stopped = controller.stop(max(0.1, deadline - time.monotonic())) and stopped
        return self.informers.stop(max(0.1, deadline - time.monotonic())) and stopped
