"""How long a plan's writes take at a tenant's tier-2 limit: the window arithmetic, in words.

Shown by every plan report and by `plan`'s summary line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bulkshare.config import Limits

__all__ = ["WriteEstimate", "estimate_writes"]


@dataclass(frozen=True)
class WriteEstimate:
    """How long a number of writes takes at a tenant's tier-2 limit."""

    writes: int
    per_window: int  #: writes the budget allows in one window
    window_s: float
    seconds: float  #: the least time the window arithmetic allows (first write to last)

    @property
    def fits_one_window(self) -> bool:
        return self.writes <= self.per_window

    def describe(self) -> str:
        if self.writes == 0:
            return "no writes"
        if self.fits_one_window:
            return (
                f"{self.writes} writes fit in one window ({self.per_window} per "
                f"{self.window_s:g} s): no waiting for the rate limit"
            )
        return (
            f"{self.writes} writes need {math.ceil(self.writes / self.per_window)} windows "
            f"of {self.window_s:g} s ({self.per_window} each): at least "
            f"{_duration(self.seconds)}"
        )


def estimate_writes(writes: int, limits: Limits) -> WriteEstimate:
    """The window minimum: (ceil(W / L) - 1) * window_s for W writes and L per window."""
    per_window = max(
        1, math.floor(limits.tier2_per_minute * limits.window_s / 60 * limits.headroom)
    )
    windows = math.ceil(writes / per_window) if writes else 0
    return WriteEstimate(writes, per_window, limits.window_s, max(0, windows - 1) * limits.window_s)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
