"""Paths that the launcher pod, virt-handler and the launcher agree on, as upstream lays
them out: the handler's socket directory shared with every launcher on its node, and
the launcher's private area where claims are mounted per volume."""

from __future__ import annotations

SOCKETS_DIR = "/var/run/kubevirt/sockets"        # host dir shared with virt-handler
# The handler's end of the Notify stream, alone in its directory: launcher pods mount that
# directory and their own sockets/<uid>, never the whole sockets directory (other VMIs'
# consoles and launchers); a directory rather than the socket file, so the socket a
# restarted handler binds anew is what they see.
NOTIFY_SUBDIR = "notify"
NOTIFY_SOCKET_NAME = "notify.sock"
NOTIFY_DIR = f"{SOCKETS_DIR}/{NOTIFY_SUBDIR}"
NOTIFY_SOCKET = f"{NOTIFY_DIR}/{NOTIFY_SOCKET_NAME}"
PRIVATE_DIR = "/var/run/kubevirt-private"         # the launcher's own working area
DISKS_DIR = f"{PRIVATE_DIR}/vmi-disks"            # Filesystem claims, one directory per volume
BLOCK_DEVICES_DIR = "/dev"                         # Block claims, one device per volume

# Set by the kubelet for our component images: the node's OCI layout of containerDisks.
IMAGE_STORE_ENV = "KUBEVIRT_PY_IMAGE_STORE"

# On a VMI: run its launcher on libvirt's test driver ("test") instead of QEMU.
HYPERVISOR_ANNOTATION = "kubevirt-py.io/hypervisor"

# The guest's serial console, bound by the launcher's QEMU next to its Cmd socket so that
# virt-handler (which shares the sockets directory, not the launcher's private one) can
# attach to it for the console subresource.
SERIAL_SOCKET_NAME = "serial0"


def notify_socket(sockets_dir: str = SOCKETS_DIR) -> str:
    """NOTIFY_SOCKET under any sockets directory (a handler started with --sockets-dir)."""
    return f"{sockets_dir}/{NOTIFY_SUBDIR}/{NOTIFY_SOCKET_NAME}"


def launcher_socket(uid: str, sockets_dir: str = SOCKETS_DIR) -> str:
    return f"{sockets_dir}/{uid}/launcher.sock"


def serial_socket(uid: str, sockets_dir: str = SOCKETS_DIR) -> str:
    return f"{sockets_dir}/{uid}/{SERIAL_SOCKET_NAME}"


def claim_mount(volume_name: str) -> str:
    return f"{DISKS_DIR}/{volume_name}"


def claim_device(volume_name: str) -> str:
    return f"{BLOCK_DEVICES_DIR}/{volume_name}"


# Live migration moves three byte streams between the nodes, each through one unix socket per
# side in the VMI's sockets directory (the same path string on both nodes, a different socket
# on each): on the source node virt-handler listens on all of them (the launcher's libvirt
# connects to the "libvirt" one, its QEMU sends the migration stream into the "qemu" one and
# the copy of its local disks into the "block" one); on the target node the launcher serves
# its libvirt on the "libvirt" one, its QEMU listens for the incoming stream on "qemu" and
# serves its disks over NBD on "block", and virt-handler connects to them.
MIGRATION_CHANNELS = ("libvirt", "qemu", "block")


def migration_socket_name(channel: str) -> str:
    if channel not in MIGRATION_CHANNELS:
        raise ValueError(f"channel: expected one of {', '.join(MIGRATION_CHANNELS)}, got {channel!r}")
    return f"migration-{channel}.sock"


def migration_socket(uid: str, channel: str, sockets_dir: str = SOCKETS_DIR) -> str:
    return f"{sockets_dir}/{uid}/{migration_socket_name(channel)}"
