"""What the server serves: one ResourceInfo per (group, version, plural), built-in or from a CRD."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kube_schema.crd import CRDValidator

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceInfo:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    has_status: bool = False
    # spec/status/labelSelector paths for the scale subresource, when served.
    scale: dict[str, str] | None = None
    # CRD printer columns (jsonPath columns), for Table output.
    printer_columns: tuple[dict[str, Any], ...] = ()
    # Custom resources: schema validation and pruning; None for built-in kinds.
    validator: CRDValidator | None = field(default=None, compare=False)
    # Built-in kinds whose PATCH understands strategic merge.
    strategic_merge: bool = False
    # Versions that share storage with this one: the storage version is what is written.
    storage_version: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def is_custom(self) -> bool:
        return self.validator is not None

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def storage_prefix(self) -> str:
        """Where objects of this resource live in etcd (ending in '/')."""
        if self.is_custom or self.group not in ("", "apps", "coordination.k8s.io", "rbac.authorization.k8s.io",
                                                "apiextensions.k8s.io", "admissionregistration.k8s.io",
                                                "apiregistration.k8s.io", "storage.k8s.io",
                                                "policy", "scheduling.k8s.io", "discovery.k8s.io"):
            return f"/registry/{self.group}/{self.plural}/"
        return f"/registry/{self.plural}/"

    def key(self, namespace: str, name: str) -> str:
        if self.namespaced:
            return f"{self.storage_prefix()}{namespace}/{name}"
        return f"{self.storage_prefix()}{name}"

    def list_prefix(self, namespace: str) -> str:
        if self.namespaced and namespace:
            return f"{self.storage_prefix()}{namespace}/"
        return self.storage_prefix()

    def subresources(self) -> list[str]:
        subs = []
        if self.has_status:
            subs.append("status")
        if self.scale is not None:
            subs.append("scale")
        return subs


class Registry:
    """All served resources, indexed the ways requests and discovery need them."""

    def __init__(self) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceInfo] = {}
        # Group -> versions in preference order (the first is the preferred version).
        self._group_versions: dict[str, list[str]] = {}

    def add(self, info: ResourceInfo) -> None:
        self._by_path[(info.group, info.version, info.plural)] = info
        versions = self._group_versions.setdefault(info.group, [])
        if info.version not in versions:
            versions.append(info.version)

    def remove_group_resource(self, group: str, plural: str) -> None:
        for key in [k for k in self._by_path if k[0] == group and k[2] == plural]:
            del self._by_path[key]
        still_served = {v for (g, v, _) in self._by_path if g == group}
        if group in self._group_versions:
            self._group_versions[group] = [v for v in self._group_versions[group] if v in still_served]
            if not self._group_versions[group]:
                del self._group_versions[group]

    def set_version_order(self, group: str, versions: list[str]) -> None:
        if group in self._group_versions:
            known = self._group_versions[group]
            self._group_versions[group] = [v for v in versions if v in known] + [v for v in known if v not in versions]

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, kind: str) -> ResourceInfo | None:
        for version in self._group_versions.get(group, []):
            for (g, v, _), info in self._by_path.items():
                if g == group and v == version and info.kind == kind:
                    return info
        return None

    def groups(self) -> dict[str, list[str]]:
        return {g: list(v) for g, v in self._group_versions.items()}

    def resources(self, group: str, version: str) -> list[ResourceInfo]:
        return [info for (g, v, _), info in self._by_path.items() if g == group and v == version]

    def serves_group_version(self, group: str, version: str) -> bool:
        return version in self._group_versions.get(group, [])

    def storage_resources(self) -> list[ResourceInfo]:
        """One ResourceInfo per place in storage (the storage version of each resource)."""
        seen: dict[str, ResourceInfo] = {}
        for info in self._by_path.values():
            if info.version == (info.storage_version or info.version):
                seen.setdefault(info.storage_prefix(), info)
        return list(seen.values())
