"""The kubevirt.io API group, its versions and the four kinds it serves."""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "kubevirt.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
# v1alpha3 is still served with the same schema, as upstream does, so older
# manifests keep working; v1 is the storage version.
SERVED_VERSIONS = ("v1", "v1alpha3")

SUBRESOURCES_GROUP = "subresources.kubevirt.io"


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


VIRTUAL_MACHINE = Kind("VirtualMachine", "virtualmachines", "virtualmachine", ("vm", "vms"))
VIRTUAL_MACHINE_INSTANCE = Kind("VirtualMachineInstance", "virtualmachineinstances", "virtualmachineinstance",
                                ("vmi", "vmis"))
MIGRATION = Kind("VirtualMachineInstanceMigration", "virtualmachineinstancemigrations",
                 "virtualmachineinstancemigration", ("vmim", "vmims"))
REPLICA_SET = Kind("VirtualMachineInstanceReplicaSet", "virtualmachineinstancereplicasets",
                   "virtualmachineinstancereplicaset", ("vmirs", "vmirss"))

KINDS: dict[str, Kind] = {k.kind: k for k in (VIRTUAL_MACHINE, VIRTUAL_MACHINE_INSTANCE, MIGRATION, REPLICA_SET)}


def kind_of(obj: dict) -> Kind:
    """The Kind of a kubevirt.io object; ValueError naming apiVersion/kind otherwise."""
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str) or "/" not in api_version:
        raise ValueError(f"apiVersion: Required value: expected {API_VERSION}, got {api_version!r}")
    group, version = api_version.split("/", 1)
    if group != GROUP or version not in SERVED_VERSIONS:
        raise ValueError(f"apiVersion: Unsupported value: {api_version!r}: supported values: "
                         + ", ".join(f"{GROUP}/{v}" for v in SERVED_VERSIONS))
    kind = obj.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind: Unsupported value: {kind!r}: supported values: " + ", ".join(KINDS))
    return KINDS[kind]
