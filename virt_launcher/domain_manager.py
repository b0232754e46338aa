"""One VMI's domain in the launcher's libvirt: start, pause, stop, report.

Every method is blocking (libvirt's Python binding is), so the Cmd server calls
them from a worker thread.
"""

from __future__ import annotations

import logging
import threading
import xml.etree.ElementTree as ET
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import libvirt

from kubevirt_api.pod_layout import SERIAL_SOCKET_NAME
from virt_launcher.domain.converter import domain_name, domain_xml
from virt_launcher.domain.options import AttachableDisk, DomainOptions
from virt_launcher.domain_state import describe
from virt_launcher.domain_stats import domain_stats
from virt_launcher.kernel_boot import kernel_and_initrd

Obj = dict[str, Any]
log = logging.getLogger(__name__)

# Prepares every volume of a VMI in the working directory; raises with the field named.
PrepareDisks = Callable[[Obj], Mapping[str, AttachableDisk]]


class DomainNotFound(LookupError):
    pass


class MigrationTargetBusy(RuntimeError):
    pass


class DomainManager:
    def __init__(self, connection: libvirt.virConnect, work_dir: Path, prepare_disks: PrepareDisks,
                 domain_type: str, image_store: Path | None = None, serial_socket: Path | None = None) -> None:
        self._conn = connection
        self.work_dir = Path(work_dir)
        # The handler attaches the console here, so it belongs in the directory shared with it.
        self._serial_socket = Path(serial_socket or self.work_dir / SERIAL_SOCKET_NAME)
        self._prepare_disks = prepare_disks
        self._domain_type = domain_type
        self._image_store = image_store
        self._name: str | None = None
        self._vmi: Obj | None = None
        self._lock = threading.Lock()

    @property
    def serial_socket(self) -> Path:
        return self._serial_socket

    @property
    def serial_log(self) -> Path:
        return self.work_dir / "serial0.log"

    @property
    def vmi(self) -> Obj | None:
        return self._vmi

    def domain(self) -> libvirt.virDomain:
        return self._domain()

    def _domain(self) -> libvirt.virDomain:
        if self._name is None:
            raise DomainNotFound("no domain has been synced yet")
        try:
            return self._conn.lookupByName(self._name)
        except libvirt.libvirtError:
            raise DomainNotFound(f"domain {self._name} does not exist") from None

    def sync(self, vmi: Obj) -> None:
        """Define and start the domain, unless it already runs."""
        with self._lock:
            self._name = domain_name(vmi)
            self._vmi = vmi
            try:
                if self._domain().isActive():
                    return
            except DomainNotFound:
                pass
            domain = self._conn.defineXML(self._prepare(vmi))
            paused = (vmi.get("spec") or {}).get("startStrategy") == "Paused"
            domain.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED if paused else 0)

    def _prepare(self, vmi: Obj) -> str:
        """Volumes, kernel and console paths of the VMI; returns its domain XML."""
        disks = self._prepare_disks(vmi)
        self.serial_socket.parent.mkdir(parents=True, exist_ok=True)
        kernel, initrd = kernel_and_initrd(vmi, self._image_store, self.work_dir / "kernel-images")
        options = DomainOptions(domain_type=self._domain_type, serial_socket=self.serial_socket,
                                serial_log=self.serial_log, kernel=kernel, initrd=initrd)
        xml = domain_xml(vmi, disks, options)
        (self.work_dir / "domain.xml").write_text(xml)
        return xml

    def prepare_incoming(self, vmi: Obj) -> None:
        """Migration target: everything the incoming domain will open, at the paths the
        source uses (the same strings in every launcher pod of this VMI), but no domain:
        the source's libvirt creates it."""
        with self._lock:
            self._name = domain_name(vmi)
            self._vmi = vmi
            try:
                if self._domain().isActive():
                    raise MigrationTargetBusy(f"domain {self._name} already runs here")
            except DomainNotFound:
                pass
            self._prepare(vmi)

    def adopt_incoming(self, vmi: Obj) -> bool:
        """Migration target, after the switchover: whether the migrated domain runs here."""
        with self._lock:
            self._name = domain_name(vmi)
            self._vmi = vmi
            try:
                domain = self._domain()
            except DomainNotFound:
                return False
            # A domain still paused for the incoming migration has not been handed over yet.
            state, reason = domain.state()
            return bool(domain.isActive()) and not (state == libvirt.VIR_DOMAIN_PAUSED
                                                    and reason == libvirt.VIR_DOMAIN_PAUSED_MIGRATION)

    def pause(self) -> None:
        domain = self._domain()
        if domain.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
            domain.suspend()

    def unpause(self) -> None:
        domain = self._domain()
        if domain.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
            domain.resume()

    def shutdown(self, grace_seconds: int) -> None:
        """ACPI power button now; destroy if the guest is still up after the grace period."""
        domain = self._domain()
        if not domain.isActive():
            return
        if grace_seconds <= 0:
            domain.destroy()
            return
        # The grace period runs whatever the request does: a guest must never outlive it.
        threading.Thread(target=self._destroy_after, args=(grace_seconds,), name="grace-period",
                         daemon=True).start()
        try:
            domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
        except libvirt.libvirtError as error:
            # Drivers without the ACPI flag (the test driver) take a plain shutdown.
            log.info("ACPI shutdown not available (%s): plain shutdown", error.get_error_message())
            domain.shutdown()

    def _destroy_after(self, grace_seconds: int) -> None:
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            try:
                if not self._domain().isActive():
                    return
            except DomainNotFound:
                return
            time.sleep(0.2)
        try:
            log.info("grace period of %ss is over: destroying the domain", grace_seconds)
            self._domain().destroy()
        except (DomainNotFound, libvirt.libvirtError):
            pass

    def kill(self) -> None:
        domain = self._domain()
        if domain.isActive():
            domain.destroy()

    def delete(self) -> None:
        try:
            domain = self._domain()
        except DomainNotFound:
            return
        if domain.isActive():
            domain.destroy()
        domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)

    def reset(self) -> None:
        self._domain().reset(0)

    def soft_reboot(self) -> None:
        self._domain().reboot(libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN)

    def info(self) -> Obj | None:
        """The domain as the handler sees it: identity plus upstream state and reason."""
        try:
            domain = self._domain()
        except DomainNotFound:
            return None
        state, reason = describe(*domain.state())
        meta = (self._vmi or {}).get("metadata") or {}
        return {"metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid")},
                "spec": {"interfaces": _interfaces(domain)},
                "status": {"status": state, "reason": reason}}

    def stats(self) -> Obj:
        """The domain's resource use (virt_launcher.domain_stats describes the report)."""
        return domain_stats(self._conn, self._domain())


def _interfaces(domain: libvirt.virDomain) -> list[Obj]:
    """The guest's NICs as libvirt set them up: the VMI's name (from the alias) and MAC."""
    try:
        root = ET.fromstring(domain.XMLDesc(0))
    except (libvirt.libvirtError, ET.ParseError):
        return []
    found: list[Obj] = []
    for element in root.iterfind("devices/interface"):
        alias = element.find("alias")
        mac = element.find("mac")
        name = alias.get("name", "") if alias is not None else ""
        found.append({"name": name.removeprefix("ua-"), "mac": mac.get("address", "") if mac is not None else ""})
    return found
