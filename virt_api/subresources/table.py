"""The subresources virt-api serves: one row each, from which both the routes and the
discovery document are built, so the two cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from kubevirt_api.groups import SUBRESOURCES_GROUP, VIRTUAL_MACHINE, VIRTUAL_MACHINE_INSTANCE
from virt_api.subresources import console, vm_lifecycle, vm_migrate, vmi_lifecycle
from virt_api.subresources.guard import Handler

GROUP_VERSION_PATH = f"/apis/{SUBRESOURCES_GROUP}/v1"
_KUBE_VERBS = {"GET": "get", "PUT": "update"}


@dataclass(frozen=True)
class Subresource:
    resource: str      # virtualmachines | virtualmachineinstances
    name: str          # start, console, ...
    method: str        # GET | PUT
    handler: Handler

    @property
    def discovery_name(self) -> str:
        return f"{self.resource}/{self.name}"

    @property
    def kube_verb(self) -> str:
        return _KUBE_VERBS[self.method]

    @property
    def path(self) -> str:
        return f"{GROUP_VERSION_PATH}/namespaces/{{namespace}}/{self.resource}/{{name}}/{self.name}"


_VM, _VMI = VIRTUAL_MACHINE.plural, VIRTUAL_MACHINE_INSTANCE.plural

SUBRESOURCES: tuple[Subresource, ...] = (
    Subresource(_VMI, "console", "GET", console.console),
    Subresource(_VMI, "pause", "PUT", vmi_lifecycle.pause),
    Subresource(_VMI, "unpause", "PUT", vmi_lifecycle.unpause),
    Subresource(_VMI, "softreboot", "PUT", vmi_lifecycle.soft_reboot),
    Subresource(_VMI, "reset", "PUT", vmi_lifecycle.reset),
    Subresource(_VMI, "guestosinfo", "GET", vmi_lifecycle.guest_os_info),
    Subresource(_VM, "start", "PUT", vm_lifecycle.start),
    Subresource(_VM, "stop", "PUT", vm_lifecycle.stop),
    Subresource(_VM, "restart", "PUT", vm_lifecycle.restart),
    Subresource(_VM, "migrate", "PUT", vm_migrate.migrate),
)
