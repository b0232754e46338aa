"""Validate kubevirt.io objects against our CRD schemas (what the API server checks)."""

from __future__ import annotations

from functools import cache
from typing import Any

from kube_schema.crd import Admitted, CRDValidator
from kube_schema.errors import NOT_SUPPORTED, FieldError
from kubevirt_api.groups import KINDS
from kubevirt_api.schema.crds import all_crds


@cache
def _validators() -> dict[str, CRDValidator]:
    validators = (CRDValidator(crd) for crd in all_crds().values())
    return {v.kind: v for v in validators}


def admit(obj: dict[str, Any], *, strict: bool = False) -> Admitted:
    """Prune and validate a kubevirt.io object; the result names every bad field."""
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if kind not in KINDS:
        supported = ", ".join(f'"{k}"' for k in KINDS)
        return Admitted(obj if isinstance(obj, dict) else {},
                        [FieldError("kind", NOT_SUPPORTED, f"supported values: {supported}", kind)])
    return _validators()[kind].admit(obj, strict=strict)


def validation_errors(obj: dict[str, Any], *, strict: bool = False) -> list[FieldError]:
    return admit(obj, strict=strict).errors
