"""What kube-controller-manager does for workloads, for the local cluster: the
ReplicaSet, Deployment and DaemonSet controllers, written against the official client
on kube_client's controller machinery (informers, work queues, expectations)."""

from local_cluster.workloads.daemonset import DaemonSetController
from local_cluster.workloads.deployment import DeploymentController
from local_cluster.workloads.informers import WorkloadInformers
from local_cluster.workloads.manager import WorkloadControllers
from local_cluster.workloads.replicaset import ReplicaSetController

__all__ = ["DaemonSetController", "DeploymentController", "ReplicaSetController", "WorkloadControllers",
           "WorkloadInformers"]
