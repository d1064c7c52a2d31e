"""Tier budgets that count what was sent over the server's window, so a burst never trips it.

The server counts each request once it arrives; we count it from the moment we admit it until
its answer is back plus one window, which can only over-count, never under-count.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from enum import StrEnum

__all__ = ["Tier", "TierBudgets", "WindowBudget", "tier_for"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Tier(StrEnum):
    """The service's rate-limit tiers, each counted separately."""

    TIER1 = "tier1"  # every GET
    TIER2 = "tier2"  # every write, and POST /oauth/token
    USERS_FILTER = "users-filter"  # POST /v1/users/actions/filter, its own 200/min tier


def tier_for(method: str, path: str) -> Tier:
    """The tier the service charges for `method path` (path relative to /api)."""
    if method.upper() == "POST" and path.rstrip("/").endswith("/users/actions/filter"):
        return Tier.USERS_FILTER
    return Tier.TIER1 if method.upper() in {"GET", "HEAD"} else Tier.TIER2


class WindowBudget:
    """At most `limit` requests in any `window_s`, counted from admission to answer + window."""

    __slots__ = (
        "_clock",
        "_done",
        "_inflight",
        "_lock",
        "_paused_until",
        "_released",
        "_sleep",
        "limit",
        "throttled",
        "window_s",
    )

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        #: requests allowed in any window
        self.limit = max(1, limit)
        #: the server's counting window, in seconds
        self.window_s = window_s
        #: 429s this budget was told about
        self.throttled = 0
        self._clock = clock
        self._sleep = sleep
        self._done: deque[float] = deque()  # answer times, ascending
        self._inflight = 0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()  # FIFO: the first waiter is admitted first
        self._released = asyncio.Event()

    def __repr__(self) -> str:
        self._expire(self._clock())
        return (
            f"<WindowBudget {len(self._done)}+{self._inflight}/{self.limit} "
            f"per {self.window_s:g}s paused_until={self._paused_until:.3f}>"
        )

    async def acquire(self) -> None:
        """Wait until one more request fits in the window, and count it."""
        async with self._lock:
            while (wait := self._wait_time()) > 0 or wait < 0:
                if wait < 0:  # full with requests still in flight: wait for an answer
                    self._released.clear()
                    await self._released.wait()
                else:
                    await self._sleep(wait)
            self._inflight += 1

    def release(self) -> None:
        """The answer to an admitted request is back: it now ages out one window from now."""
        self._inflight -= 1
        self._done.append(self._clock())
        self._released.set()

    def pause_for(self, seconds: float) -> None:
        """Admit nothing for `seconds` from now (a 429's Retry-After)."""
        self.throttled += 1
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _expire(self, now: float) -> None:
        while self._done and self._done[0] + self.window_s <= now:
            self._done.popleft()

    def _wait_time(self) -> float:
        """Seconds to sleep before admitting; 0 to admit now; -1 to wait for an answer."""
        now = self._clock()
        if self._paused_until > now:
            return self._paused_until - now
        self._expire(now)
        if len(self._done) + self._inflight < self.limit:
            return 0.0
        if self._done:
            return max(self._done[0] + self.window_s - now, 1e-3)
        return -1.0


class TierBudgets:
    """One WindowBudget per tier for one tenant and identity."""

    def __init__(self, budgets: dict[Tier, WindowBudget]) -> None:
        self._budgets = budgets

    @classmethod
    def from_limits(
        cls,
        per_minute: dict[Tier, int],
        window_s: float,
        headroom: float = 1.0,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> TierBudgets:
        """Budgets of `per_minute * window_s / 60 * headroom` requests per window."""
        budgets = {
            tier: WindowBudget(
                max(1, math.floor(rate * window_s / 60 * headroom)),
                window_s,
                clock=clock,
                sleep=sleep,
            )
            for tier, rate in per_minute.items()
        }
        return cls(budgets)

    def __getitem__(self, tier: Tier) -> WindowBudget:
        return self._budgets[tier]

    @property
    def throttled(self) -> int:
        """429s seen over all tiers."""
        return sum(b.throttled for b in self._budgets.values())
