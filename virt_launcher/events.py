"""libvirt's event loop and the lifecycle events of the launcher's domain."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import libvirt

from virt_launcher.domain_state import describe_event

log = logging.getLogger(__name__)

# (domain name, state, reason), called from libvirt's event thread.
LifecycleCallback = Callable[[str, str, str], None]
_loop_started = threading.Lock()
_loop_running = False


def start_event_loop() -> None:
    """Register and run libvirt's default event loop once per process; it must exist
    before the first connection is opened, or that connection gets no events."""
    global _loop_running
    with _loop_started:
        if _loop_running:
            return
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_run, name="libvirt-events", daemon=True).start()
        _loop_running = True


def _run() -> None:
    while True:
        if libvirt.virEventRunDefaultImpl() < 0:
            log.error("libvirt event loop iteration failed")


def watch_lifecycle(connection: libvirt.virConnect, callback: LifecycleCallback,
                    on_close: Callable[[int], None]) -> None:
    def lifecycle(_conn: libvirt.virConnect, domain: libvirt.virDomain, event: int, detail: int,
                  _opaque: object) -> None:
        described = describe_event(event, detail)
        if described is not None:
            callback(domain.name(), *described)

    connection.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, None)
    connection.registerCloseCallback(lambda _conn, reason, _opaque: on_close(reason), None)
