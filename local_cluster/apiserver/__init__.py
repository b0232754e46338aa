"""A Kubernetes API server over etcd, faithful enough for the official clients and kubectl.

The request path reads top to bottom: http.py routes a request to rest.py, which
applies strategy.py (what each kind does on create/update/delete), admission.py
(CRD schemas and webhooks) and stores through local_cluster.storage.
"""
