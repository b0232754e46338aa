"""The client-go controller pattern, threaded: shared informers with indexed caches,
rate-limited work queues (with client-go's queue metrics on request), expectations, Lease
leader election, and a Controller that wires them to a reconcile function."""

from kube_client.controller.controller import Controller, LeadershipGate, controller_owner_keys, own_key
from kube_client.controller.expectations import ControllerExpectations, UIDTrackingControllerExpectations
from kube_client.controller.informer import EventHandler, SharedInformer
from kube_client.controller.leader import LeaderElector
from kube_client.controller.queue_metrics import WorkqueueMetrics
from kube_client.controller.ratelimit import (ItemExponentialBackoff, MaxOf, RateLimiter, TokenBucket,
                                              default_rate_limiter)
from kube_client.controller.resource import Resource
from kube_client.controller.store import (IndexedStore, controller_uid_index, label_index, namespace_index,
                                          node_name_index, owner_uid_index)
from kube_client.controller.workqueue import QueueMetrics, WorkQueue

__all__ = [
    "Controller", "ControllerExpectations", "EventHandler", "IndexedStore", "ItemExponentialBackoff",
    "LeaderElector", "LeadershipGate", "MaxOf", "QueueMetrics", "RateLimiter", "Resource", "SharedInformer",
    "TokenBucket", "UIDTrackingControllerExpectations", "WorkQueue", "WorkqueueMetrics",
    "controller_owner_keys", "controller_uid_index", "default_rate_limiter", "label_index", "namespace_index",
    "node_name_index", "own_key", "owner_uid_index",
]
