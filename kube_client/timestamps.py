"""Timestamps as the Kubernetes API writes them: RFC 3339, UTC, second precision
("2024-05-01T12:00:00Z"), the form of metav1.Time.

Standard library only: the kubelet's sandbox trampoline imports this module under
``python -S``.
"""

from __future__ import annotations

import datetime

_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def format_time(moment: datetime.datetime) -> str:
    """``moment`` must be in UTC: the zone is not converted, only written as Z."""
    return moment.strftime(_FORMAT)


def now_text() -> str:
    return format_time(now())


def parse_time(text: str) -> datetime.datetime:
    """An aware UTC datetime; ValueError if ``text`` is not in the API's form (TypeError,
    as from strptime, if it is not a string at all)."""
    try:
        moment = datetime.datetime.strptime(text, _FORMAT)
    except ValueError:
        raise ValueError(f"{text!r} is not a Kubernetes timestamp (want YYYY-MM-DDTHH:MM:SSZ)") from None
    return moment.replace(tzinfo=datetime.UTC)
