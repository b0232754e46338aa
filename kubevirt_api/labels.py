"""Label, annotation and finalizer keys, spelled as upstream so tooling keeps working."""

from __future__ import annotations

APP_LABEL = "kubevirt.io"                      # value: virt-launcher, virt-handler, ...
NODE_NAME_LABEL = "kubevirt.io/nodeName"        # on a VMI: the node its handler owns it on
CREATED_BY_LABEL = "kubevirt.io/created-by"     # on a launcher pod: the VMI's UID
DOMAIN_ANNOTATION = "kubevirt.io/domain"        # on a launcher pod: the VMI's name
VM_LABEL = "kubevirt.io/vm"
MIGRATION_JOB_LABEL = "kubevirt.io/migrationJobUID"
MIGRATION_TARGET_NODE_LABEL = "kubevirt.io/migrationTargetNodeName"
SCHEDULABLE_NODE_LABEL = "kubevirt.io/schedulable"
HEARTBEAT_ANNOTATION = "kubevirt.io/heartbeat"
EMULATION_NODE_LABEL = "kubevirt.io/emulation"  # ours: "kvm" or "qemu" (TCG)
OUTDATED_LAUNCHER_IMAGE_LABEL = "kubevirt.io/outdatedLauncherImage"  # on a VMI whose launcher image is old
# On a VM's VMI: the instancetype and preference the VM was expanded with.
INSTANCETYPE_ANNOTATION = "kubevirt.io/instancetype-name"
CLUSTER_INSTANCETYPE_ANNOTATION = "kubevirt.io/cluster-instancetype-name"
PREFERENCE_ANNOTATION = "kubevirt.io/preference-name"
CLUSTER_PREFERENCE_ANNOTATION = "kubevirt.io/cluster-preference-name"

VIRT_LAUNCHER = "virt-launcher"

VMI_FINALIZER = "foregroundDeleteVirtualMachine"
VM_FINALIZER = "kubevirt.io/virtualMachineControllerFinalize"
MIGRATION_FINALIZER = "kubevirt.io/migrationJobFinalize"
