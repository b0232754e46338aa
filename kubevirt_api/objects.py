"""Small typed readers of kubevirt.io objects that several components need."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubevirt_api.phases import RunStrategy, VMIPhase

Obj = dict[str, Any]


class SpecError(ValueError):
    """A spec that cannot be acted on; the message names the field."""


def run_strategy(vm: Obj) -> RunStrategy:
    """The VM's effective run strategy: spec.runStrategy, or the deprecated spec.running."""
    spec = vm.get("spec") or {}
    strategy = spec.get("runStrategy")
    running = spec.get("running")
    if strategy is not None and running is not None:
        raise SpecError("spec.running: Invalid value: running and runStrategy are mutually exclusive; "
                        "set only spec.runStrategy")
    if strategy is not None:
        try:
            return RunStrategy(strategy)
        except ValueError:
            raise SpecError(f"spec.runStrategy: Unsupported value: {strategy!r}") from None
    return RunStrategy.ALWAYS if running else RunStrategy.HALTED


def vmi_phase(vmi: Obj) -> VMIPhase:
    try:
        return VMIPhase((vmi.get("status") or {}).get("phase", ""))
    except ValueError:
        return VMIPhase.UNKNOWN


def condition(obj: Obj, condition_type: str) -> Obj | None:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == condition_type:
            return item
    return None


def condition_true(obj: Obj, condition_type: str) -> bool:
    found = condition(obj, condition_type)
    return found is not None and found.get("status") == "True"


def volumes_by_name(vmi_spec: Obj) -> dict[str, Obj]:
    return {v["name"]: v for v in vmi_spec.get("volumes") or [] if "name" in v}


def disks(vmi_spec: Obj) -> Iterator[Obj]:
    yield from ((vmi_spec.get("domain") or {}).get("devices") or {}).get("disks") or []


def namespaced_name(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"
