"""IntOrString fields (maxSurge, maxUnavailable): a count, or a percentage of a total."""

from __future__ import annotations

import math


def scaled_value(value: int | str | None, total: int, *, round_up: bool, default: int | str) -> int:
    """The count value stands for out of total; percentages round up or down as asked
    (kube-controller-manager rounds surge up and unavailability down for Deployments,
    and a DaemonSet's maxUnavailable up)."""
    if value is None or value == "":
        value = default
    if isinstance(value, bool):
        raise ValueError(f"invalid int-or-percentage {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        try:
            percent = int(text[:-1])
        except ValueError:
            raise ValueError(f"invalid percentage {value!r}") from None
        exact = percent * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    try:
        # Not valid upstream (a string must be a percentage), but unambiguous.
        return int(text)
    except ValueError:
        raise ValueError(f"invalid int-or-percentage {value!r}") from None
