"""libvirt domain states and reasons, spelled as upstream KubeVirt reports them."""

from __future__ import annotations

import libvirt

STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "NoState",
    libvirt.VIR_DOMAIN_RUNNING: "Running",
    libvirt.VIR_DOMAIN_BLOCKED: "Blocked",
    libvirt.VIR_DOMAIN_PAUSED: "Paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "Shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "Shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "Crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "PMSuspended",
}

_REASONS = {
    libvirt.VIR_DOMAIN_RUNNING: ["Unknown", "Booted", "Migrated", "Restored", "FromSnapshot", "Unpaused",
                                 "MigrationCanceled", "SaveCanceled", "Wakeup", "Crashed", "PostcopyStarted"],
    libvirt.VIR_DOMAIN_PAUSED: ["Unknown", "User", "Migration", "Save", "Dump", "IOError", "Watchdog",
                                "FromSnapshot", "ShuttingDown", "Snapshot", "Crashed", "StartingUp",
                                "PostcopyPaused", "PostcopyFailed"],
    libvirt.VIR_DOMAIN_SHUTDOWN: ["Unknown", "User"],
    libvirt.VIR_DOMAIN_SHUTOFF: ["Unknown", "Shutdown", "Destroyed", "Crashed", "Migrated", "Saved", "Failed",
                                 "FromSnapshot", "Daemon"],
    libvirt.VIR_DOMAIN_CRASHED: ["Unknown", "Panicked"],
    libvirt.VIR_DOMAIN_PMSUSPENDED: ["Unknown"],
}


def describe(state: int, reason: int) -> tuple[str, str]:
    reasons = _REASONS.get(state, ["Unknown"])
    return STATES.get(state, "NoState"), reasons[reason] if 0 <= reason < len(reasons) else "Unknown"


# Lifecycle events -> (state, reason) as the domain is after the event.
_EVENTS = {
    libvirt.VIR_DOMAIN_EVENT_STARTED: ("Running", ["Booted", "Migrated", "Restored", "FromSnapshot", "Wakeup"]),
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: ("Paused", ["User", "Migration", "IOError", "Watchdog", "Restored",
                                                    "FromSnapshot", "Unknown", "PostcopyPaused",
                                                    "PostcopyFailed"]),
    libvirt.VIR_DOMAIN_EVENT_RESUMED: ("Running", ["Unpaused", "Migrated", "FromSnapshot", "PostcopyStarted"]),
    libvirt.VIR_DOMAIN_EVENT_STOPPED: ("Shutoff", ["Shutdown", "Destroyed", "Crashed", "Migrated", "Saved",
                                                   "Failed", "FromSnapshot"]),
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: ("Shutdown", ["User", "User", "User"]),
    libvirt.VIR_DOMAIN_EVENT_CRASHED: ("Crashed", ["Panicked", "Panicked"]),
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: ("PMSuspended", ["Unknown", "Unknown"]),
}


def describe_event(event: int, detail: int) -> tuple[str, str] | None:
    """The state a lifecycle event leaves the domain in; None for events that change none
    (defined, undefined)."""
    if event not in _EVENTS:
        return None
    state, reasons = _EVENTS[event]
    return state, reasons[detail] if 0 <= detail < len(reasons) else "Unknown"
