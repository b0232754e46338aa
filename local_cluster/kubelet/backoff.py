"""Restart back-off as kubelet applies it: the first restart is immediate, then the
delay starts at `initial` and doubles up to `cap`; a container that stayed up for
`reset_after` starts over."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    initial: float = 10.0
    cap: float = 300.0
    reset_after: float = 600.0

    def delay(self, step: int) -> float:
        """The wait before restart number step+1 of a crash streak (step 0 waits none)."""
        if step <= 0:
            return 0.0
        return min(self.cap, self.initial * (2 ** min(step - 1, 32)))

    def next_step(self, step: int, seconds_since_last_restart: float) -> int:
        """The streak's step for this crash: reset when the last restart is old news."""
        return 0 if seconds_since_last_restart >= self.reset_after else step
