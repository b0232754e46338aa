"""A local-path volume provisioner for any Kubernetes API server, written against the official client."""

from local_cluster.provisioner.provisioner import Provisioner

__all__ = ["Provisioner"]
