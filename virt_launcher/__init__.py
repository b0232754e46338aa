"""virt-launcher: one per VMI, owning its libvirt and QEMU.

Serves Cmd on a unix socket for its node's handler and streams domain events to
the handler over Notify.
"""
