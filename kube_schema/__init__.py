"""Kubernetes structural OpenAPI schemas: structural checks, pruning, validation.

The same rules kube-apiserver applies to custom resources, shared by our CRD tests,
the embedded API server and the admission webhooks, so every component reports a
bad object the same way: a Kubernetes field path and a Kubernetes-style message.
"""

from kube_schema.crd import Admitted, CRDValidator
from kube_schema.errors import FieldError, invalid_status
from kube_schema.prune import prune
from kube_schema.structural import structural_violations
from kube_schema.validate import SchemaValidator

__all__ = ["Admitted", "CRDValidator", "FieldError", "SchemaValidator", "invalid_status", "prune", "structural_violations"]
