"""A pod scheduler for any Kubernetes API server, written against the official client."""

from local_cluster.scheduler.scheduler import Scheduler

__all__ = ["Scheduler"]
