"""virt-handler: the node daemon (one per node, a DaemonSet).

Watches the VMIs of its node, drives each VMI's launcher through Cmd, applies the
launchers' Notify events to VMI status, and serves NodeService to the controller,
virt-api and peer handlers.
"""
