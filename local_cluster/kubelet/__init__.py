"""The node-local pod runtime of the process kubelet: it turns a Pod object (a plain
dict, as the API returns it) into local processes, each in its own mount namespace,
and reports the pod status Kubernetes would. It never talks to an API server; the
kubelet agent feeds it pods and the objects they reference (see runtime.PodRuntime).

This package's __init__ stays import-free: the sandbox trampoline is started as
``python -S`` (local_cluster.kubelet.sandbox_init) for every container, and must
not pay for importing the rest of the runtime.
"""
