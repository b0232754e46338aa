"""VirtualMachineInstance: spec and status."""

from __future__ import annotations

from kubevirt_api.phases import EvictionStrategy, MigrationAbortStatus, MigrationMode, VMIPhase, values
from kubevirt_api.schema.builders import (
    Schema, array, boolean, free_form, integer, obj, quantity, string, string_map, timestamp,
)
from kubevirt_api.schema.common import conditions, cpu_topology, phase_transitions
from kubevirt_api.schema.domain import domain
from kubevirt_api.schema.volumes import volume


def _network() -> Schema:
    return obj("A network an interface connects to.", {
        "name": string(),
        "pod": obj("The pod network.", {"vmNetworkCIDR": string(), "vmIPv6NetworkCIDR": string()}),
        "multus": obj("A Multus network.", {"networkName": string(), "default": boolean()},
                      required=["networkName"]),
    }, required=["name"])


def _toleration() -> Schema:
    return obj("", {
        "key": string(),
        "operator": string(enum=["Exists", "Equal"]),
        "value": string(),
        "effect": string(enum=["NoSchedule", "PreferNoSchedule", "NoExecute"]),
        "tolerationSeconds": integer(),
    })


def vmi_spec() -> Schema:
    return obj("Specification of a virtual machine instance.", {
        "domain": domain(),
        "volumes": array(volume()),
        "networks": array(_network()),
        "terminationGracePeriodSeconds": integer("Seconds between ACPI power-off and a forced stop.", minimum=0),
        "nodeSelector": string_map(),
        "affinity": free_form("Kubernetes affinity of the launcher pod."),
        "tolerations": array(_toleration()),
        "topologySpreadConstraints": array(free_form()),
        "schedulerName": string(),
        "priorityClassName": string(),
        "evictionStrategy": string(enum=values(EvictionStrategy)),
        "startStrategy": string(enum=["Paused"]),
        "hostname": string(),
        "subdomain": string(),
        "dnsPolicy": string(),
        "dnsConfig": free_form(),
        "livenessProbe": free_form(),
        "readinessProbe": free_form(),
        "accessCredentials": array(free_form()),
        "architecture": string(),
    }, required=["domain"], open_ended=True)


def migration_state() -> Schema:
    return obj("State of the VMI's latest migration.", {
        "migrationUid": string(),
        "startTimestamp": timestamp(),
        "endTimestamp": timestamp(),
        "sourceNode": string(),
        "sourcePod": string(),
        "targetNode": string(),
        "targetPod": string(),
        "targetNodeAddress": string(),
        "targetNodeDomainDetected": boolean(),
        "targetNodeDomainReadyTimestamp": timestamp(),
        "targetDirectMigrationNodePorts": string_map(),
        "completed": boolean(),
        "failed": boolean(),
        "failureReason": string(),
        "abortRequested": boolean(),
        "abortStatus": string(enum=values(MigrationAbortStatus)),
        "mode": string(enum=values(MigrationMode)),
        "migrationPolicyName": string(),
        "migrationConfiguration": free_form(),
    }, open_ended=True)


def _interface_status() -> Schema:
    return obj("", {
        "name": string(),
        "mac": string(),
        "ipAddress": string(),
        "ipAddresses": array(string()),
        "interfaceName": string(),
        "infoSource": string(),
        "queueCount": integer(fmt="int32"),
        "linkState": string(),
    })


def _guest_os_info() -> Schema:
    return obj("Guest OS as reported by the guest agent.", {
        key: string() for key in ("id", "name", "prettyName", "version", "versionId",
                                  "kernelRelease", "kernelVersion", "machine")
    })


def vmi_status() -> Schema:
    return obj("Observed state of a virtual machine instance.", {
        "phase": string("Pending, Scheduling, Scheduled, Running, Succeeded, Failed or Unknown.",
                        enum=values(VMIPhase, with_unset=True)),
        "reason": string(),
        "nodeName": string(),
        "conditions": conditions(),
        "phaseTransitionTimestamps": phase_transitions(),
        "interfaces": array(_interface_status()),
        "guestOSInfo": _guest_os_info(),
        "migrationState": migration_state(),
        "migrationMethod": string(enum=["BlockMigration", "LiveMigration"]),
        "migrationTransport": string(),
        "evacuationNodeName": string(),
        "activePods": string_map("Pod UID -> node name of the launcher pods of this VMI."),
        "qosClass": string(enum=["Guaranteed", "Burstable", "BestEffort"]),
        "launcherContainerImageVersion": string(),
        "runtimeUser": integer(minimum=0),
        "currentCPUTopology": cpu_topology(),
        "memory": obj("", {"guestAtBoot": quantity(), "guestCurrent": quantity(), "guestRequested": quantity()}),
        "machine": obj("", {"type": string()}),
        "volumeStatus": array(free_form()),
        "virtualMachineRevisionName": string(),
        "selinuxContext": string(),
        "fsFreezeStatus": string(),
    }, open_ended=True)
