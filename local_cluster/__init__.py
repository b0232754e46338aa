"""The embedded local control plane: etcd under a Python Kubernetes API server, a
scheduler, a process kubelet per simulated node and a garbage collector, applying
the same deploy/ manifests a real cluster does."""
