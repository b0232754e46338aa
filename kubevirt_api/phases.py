"""Phases, conditions, run strategies and printable statuses, spelled as upstream."""

from __future__ import annotations

from enum import Enum


class VMIPhase(str, Enum):
    UNSET = ""
    PENDING = "Pending"
    SCHEDULING = "Scheduling"
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"

    @property
    def is_final(self) -> bool:
        return self in (VMIPhase.SUCCEEDED, VMIPhase.FAILED)


class MigrationPhase(str, Enum):
    UNSET = ""
    PENDING = "Pending"
    SCHEDULING = "Scheduling"
    SCHEDULED = "Scheduled"
    PREPARING_TARGET = "PreparingTarget"
    TARGET_READY = "TargetReady"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def is_final(self) -> bool:
        return self in (MigrationPhase.SUCCEEDED, MigrationPhase.FAILED)


class RunStrategy(str, Enum):
    ALWAYS = "Always"
    RERUN_ON_FAILURE = "RerunOnFailure"
    MANUAL = "Manual"
    HALTED = "Halted"
    ONCE = "Once"
    WAIT_AS_RECEIVER = "WaitAsReceiver"


class PrintableStatus(str, Enum):
    STOPPED = "Stopped"
    PROVISIONING = "Provisioning"
    STARTING = "Starting"
    RUNNING = "Running"
    PAUSED = "Paused"
    STOPPING = "Stopping"
    TERMINATING = "Terminating"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    MIGRATING = "Migrating"
    UNKNOWN = "Unknown"
    ERROR_UNSCHEDULABLE = "ErrorUnschedulable"
    ERR_IMAGE_PULL = "ErrImagePull"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    ERROR_PVC_NOT_FOUND = "ErrorPvcNotFound"
    DATA_VOLUME_ERROR = "DataVolumeError"
    WAITING_FOR_VOLUME_BINDING = "WaitingForVolumeBinding"


class VMIConditionType(str, Enum):
    READY = "Ready"
    PROVISIONING = "Provisioning"
    SYNCHRONIZED = "Synchronized"
    PAUSED = "Paused"
    LIVE_MIGRATABLE = "LiveMigratable"
    AGENT_CONNECTED = "AgentConnected"
    POD_SCHEDULED = "PodScheduled"
    FAILURE = "Failure"


class VMConditionType(str, Enum):
    READY = "Ready"
    FAILURE = "Failure"
    PAUSED = "Paused"


class MigrationAbortStatus(str, Enum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ABORTING = "Aborting"


class MigrationMode(str, Enum):
    PRE_COPY = "PreCopy"
    POST_COPY = "PostCopy"


class EvictionStrategy(str, Enum):
    NONE = "None"
    LIVE_MIGRATE = "LiveMigrate"
    LIVE_MIGRATE_IF_POSSIBLE = "LiveMigrateIfPossible"
    EXTERNAL = "External"


def values(enum: type[Enum], *, with_unset: bool = False) -> list[str]:
    """The wire spellings of an enum, for schema enums and error messages."""
    return [m.value for m in enum if with_unset or m.value != ""]
