"""Cluster-wide controllers of the local control plane (kube-controller-manager's share)."""
