"""The one error storage preparation raises, addressed to a field of the VMI spec.

The launcher copies str(error) into the VMI's status as it is, so the message has to
tell the user which field to fix ("spec.volumes[2].hostDisk.path: ...") without the
launcher knowing anything about volumes.
"""

from __future__ import annotations


class StorageError(Exception):
    """A volume could not be prepared; field is the spec path the user has to look at."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnsupportedVolume(StorageError):
    """A volume source that kubevirt.io/v1 defines but this launcher does not implement yet.

    A subclass rather than a flag so callers that want to tell "not yet" apart from
    "wrong" (a condition reason, a metric) can, while everyone else catches StorageError.
    """

    def __init__(self, field: str, kind: str) -> None:
        super().__init__(field, f"{kind} volumes are not supported yet")
        self.kind = kind
