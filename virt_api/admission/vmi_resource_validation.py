"""CPU and memory of a VMI spec: quantities that parse, requests within limits, a guest
that fits in its pod, and a CPU topology of whole units."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kube_schema.errors import FieldError
from virt_api.admission.causes import invalid, required
from virt_api.admission.quantity import Quantity, read_quantity
from virt_api.admission.shape import as_int, as_obj

Obj = dict[str, Any]

TOPOLOGY = ("sockets", "cores", "threads")
# Below 1M a guest cannot even hold its firmware; upstream refuses it as well.
MIN_MEMORY = Decimal(1_000_000)


def _read(raw: Any, field: str, errors: list[FieldError]) -> Quantity:
    quantity = read_quantity(raw)
    if not quantity.valid:
        errors.append(invalid(field, raw, "must be a quantity such as 128Mi, 1Gi or 500m"))
    return quantity


def _memory(domain: Obj, base: str, errors: list[FieldError]) -> None:
    resources = as_obj(domain.get("resources"))
    fields = {
        "request": f"{base}.domain.resources.requests.memory",
        "limit": f"{base}.domain.resources.limits.memory",
        "guest": f"{base}.domain.memory.guest",
    }
    raw = {
        "request": as_obj(resources.get("requests")).get("memory"),
        "limit": as_obj(resources.get("limits")).get("memory"),
        "guest": as_obj(domain.get("memory")).get("guest"),
    }
    values = {key: _read(raw[key], fields[key], errors).value for key in fields}
    for key, value in values.items():
        if value is None:
            continue
        if value <= 0:
            errors.append(invalid(fields[key], raw[key], "must be greater than zero"))
        elif key == "request" and value < MIN_MEMORY:
            errors.append(invalid(fields[key], raw[key], "must be at least 1M"))
    request, limit, guest = values["request"], values["limit"], values["guest"]
    if request is not None and limit is not None and limit > 0 and request > limit:
        errors.append(invalid(fields["request"], raw["request"], f"must not exceed {fields['limit']} ({raw['limit']})"))
    if guest is not None and limit is not None and limit > 0 and guest > limit:
        errors.append(invalid(fields["guest"], raw["guest"],
                              f"the guest cannot have more memory than {fields['limit']} ({raw['limit']})"))


def _cpu(domain: Obj, base: str, errors: list[FieldError]) -> None:
    resources = as_obj(domain.get("resources"))
    request_field = f"{base}.domain.resources.requests.cpu"
    limit_field = f"{base}.domain.resources.limits.cpu"
    raw_request = as_obj(resources.get("requests")).get("cpu")
    raw_limit = as_obj(resources.get("limits")).get("cpu")
    request = _read(raw_request, request_field, errors).value
    limit = _read(raw_limit, limit_field, errors).value
    for field, raw, value in ((request_field, raw_request, request), (limit_field, raw_limit, limit)):
        if value is not None and value < 0:
            errors.append(invalid(field, raw, "must not be negative"))
    if request is not None and limit is not None and limit > 0 and request > limit:
        errors.append(invalid(request_field, raw_request, f"must not exceed {limit_field} ({raw_limit})"))


def _topology(domain: Obj, base: str, errors: list[FieldError]) -> None:
    cpu = as_obj(domain.get("cpu"))
    given = {key: cpu.get(key) for key in TOPOLOGY if cpu.get(key) is not None}
    # All three at zero is upstream's "unset" (the mutator fills it in); otherwise every
    # given count must be a real one.
    if given and all(as_int(value) == 0 for value in given.values()):
        return
    for key, value in given.items():
        count = as_int(value)
        if count is None or count < 1:
            errors.append(invalid(f"{base}.domain.cpu.{key}", value, "must be a whole number of at least 1"))


def check_resources(spec: Obj, base: str) -> list[FieldError]:
    domain = as_obj(spec.get("domain"))
    errors: list[FieldError] = []
    _memory(domain, base, errors)
    _cpu(domain, base, errors)
    _topology(domain, base, errors)
    return errors


def check_memory_given(spec: Obj, base: str) -> list[FieldError]:
    """A VMI must say how much memory its guest gets (a template may leave it to an
    instancetype, so this is checked on VMIs only, after defaults)."""
    domain = as_obj(spec.get("domain"))
    memory = as_obj(domain.get("memory"))
    resources = as_obj(domain.get("resources"))
    candidates = (memory.get("guest"), as_obj(resources.get("requests")).get("memory"),
                  as_obj(resources.get("limits")).get("memory"))
    if any(raw is not None for raw in candidates) or memory.get("hugepages") is not None:
        return []
    return [required(f"{base}.domain.resources.requests.memory",
                     f"no memory for the guest: set {base}.domain.memory.guest or "
                     f"{base}.domain.resources.requests.memory")]
