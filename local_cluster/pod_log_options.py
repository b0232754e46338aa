"""PodLogOptions: the query of `pods/{name}/log` and of the kubelet's `containerLogs`,
parsed and validated the way Kubernetes does (both ends read the same parameters)."""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from kube_schema.errors import FORBIDDEN, INVALID, FieldError

# Go's strconv.ParseBool: what kubectl and the official clients may send (Python's
# client sends "True").
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class BadLogQuery(ValueError):
    """A parameter that does not parse at all (400, before validation)."""


@dataclass(frozen=True)
class PodLogOptions:
    container: str = ""
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    since_seconds: int | None = None
    since_time: str | None = None

    def since_epoch(self, now: float | None = None) -> float | None:
        """The earliest write time wanted, as epoch seconds; None: everything."""
        if self.since_seconds is not None:
            return (time.time() if now is None else now) - self.since_seconds
        if self.since_time is not None:
            return parse_rfc3339(self.since_time)
        return None

    def validate(self) -> list[FieldError]:
        errors: list[FieldError] = []
        if self.tail_lines is not None and self.tail_lines < 0:
            errors.append(FieldError("tailLines", INVALID, "must be greater than or equal to 0", self.tail_lines))
        if self.limit_bytes is not None and self.limit_bytes < 1:
            errors.append(FieldError("limitBytes", INVALID, "must be greater than 0", self.limit_bytes))
        if self.since_seconds is not None and self.since_time is not None:
            errors.append(FieldError("", FORBIDDEN, "at most one of `sinceTime` or `sinceSeconds` may be specified"))
        elif self.since_seconds is not None and self.since_seconds < 1:
            errors.append(FieldError("sinceSeconds", INVALID, "must be greater than 0", self.since_seconds))
        return errors

    def kubelet_query(self) -> dict[str, str]:
        """The query the API server forwards to the kubelet (the container is in the path)."""
        query = {name: "true" for name, on in (("follow", self.follow), ("previous", self.previous),
                                              ("timestamps", self.timestamps)) if on}
        for name, number in (("tailLines", self.tail_lines), ("limitBytes", self.limit_bytes),
                             ("sinceSeconds", self.since_seconds)):
            if number is not None:
                query[name] = str(number)
        if self.since_time is not None:
            query["sinceTime"] = self.since_time
        return query


def from_query(query: Mapping[str, str]) -> PodLogOptions:
    since_time = query.get("sinceTime") or None
    if since_time is not None:
        parse_rfc3339(since_time)
    return PodLogOptions(
        container=query.get("container", ""),
        follow=_bool(query, "follow"),
        previous=_bool(query, "previous"),
        timestamps=_bool(query, "timestamps"),
        tail_lines=_int(query, "tailLines"),
        limit_bytes=_int(query, "limitBytes"),
        since_seconds=_int(query, "sinceSeconds"),
        since_time=since_time,
    )


def parse_rfc3339(text: str) -> float:
    match = _RFC3339.match(text)
    if match is None:
        raise BadLogQuery(f"sinceTime: {text!r} is not an RFC 3339 time")
    seconds = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    fraction = float(match.group(2) or 0)
    zone = match.group(3)
    offset = 0 if zone == "Z" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds + fraction - offset


def _bool(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name)
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadLogQuery(f"{name}: invalid value {value!r}: must be a boolean")


def _int(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise BadLogQuery(f"{name}: invalid value {value!r}: must be an integer") from None
