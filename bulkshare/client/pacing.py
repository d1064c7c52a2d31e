"""Even pacing inside the window budget, for a tenant that must not burst: each tier's requests
start at most at its per-minute rate, one after another, never in a bunch.

Whether the service lets the 5-minute window be spent in one burst is not established; with
`pace = "even"` an admin chooses the answer that cannot trip a per-minute check.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiolimiter import AsyncLimiter

__all__ = ["SPARE", "Pacer"]

#: even pacing runs this much below the per-minute rate, so that requests bunched by the
#: network on their way still arrive within any minute's allowance
SPARE = 0.98


class Pacer:
    """A one-slot leaky bucket per tier: a request starts once the previous one's interval is up.

    A bucket of capacity one never holds a burst, so any minute sees at most the per-minute rate
    (less `SPARE`), whatever the window budget would still allow.
    """

    __slots__ = ("_limiters", "intervals")

    def __init__(self, per_minute: Mapping[str, float]) -> None:
        #: tier -> seconds between the starts of two requests
        self.intervals = {tier: 60.0 / (rate * SPARE) for tier, rate in per_minute.items()}
        self._limiters = {tier: AsyncLimiter(1, gap) for tier, gap in self.intervals.items()}

    def __repr__(self) -> str:
        gaps = ", ".join(f"{tier} every {gap:.3f} s" for tier, gap in self.intervals.items())
        return f"<Pacer {gaps}>"

    async def wait(self, tier: str) -> None:
        """Return when a request of `tier` may start."""
        limiter = self._limiters.get(tier)
        if limiter is not None:
            await limiter.acquire()
