"""Object storage for the embedded API server: the Store contract and its etcd implementation."""
