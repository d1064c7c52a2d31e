"""Tier budgets that count what was sent over the server's window, so a burst never trips it.

The server counts each request once it arrives; we count it from the moment we admit it until
its answer is back plus one window, which can only over-count, never under-count. The count
lives in a ledger (`bulkshare.client.ledger`), and so does a 429's pause, which expires: no
pause lasts longer than `pause_cap_s`, and a stored one beyond that is ignored.

A wait for budget can last a whole window (five minutes on the real service): `Halt` ends every
such wait at once when a run is stopped, so a request that was never sent stays unsent.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import anyio
import structlog

from bulkshare.client.answers import DEFAULT_RETRY_AFTER_CAP_S
from bulkshare.client.ledger import Ledger, MemoryLedger
from bulkshare.client.pacing import Pacer
from bulkshare.client.tiers import Tier
from bulkshare.errors import InterruptedRun

__all__ = ["Clock", "Halt", "RequestDropped", "Sleep", "TierBudgets", "WindowBudget"]

log = structlog.get_logger("bulkshare.client")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_T = TypeVar("_T")
_DROPPED = "stopping: request dropped before it was sent"

#: how often a budget waiting on another process's answers looks again
_POLL_S = 0.02
#: slots a process takes per ledger transaction (at most), and how long it may keep them unused
_RECOVERY_PER_WINDOW = 0.1


class WindowBudget:
    """At most `limit` requests in any `window_s`, counted from admission to answer + window."""

    __slots__ = (
        "_announced",
        "_cap",
        "_cap_at",
        "_clock",
        "_ledger",
        "_lock",
        "_queued",
        "_released",
        "_shrunk_until",
        "_sleep",
        "limit",
        "pause_cap_s",
        "throttled",
        "tier",
        "window_s",
    )

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        tier: str = "tier",
        ledger: Ledger | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        pause_cap_s: float = DEFAULT_RETRY_AFTER_CAP_S,
    ) -> None:
        #: requests allowed in any window
        self.limit = max(1, limit)
        #: the longest a pause may hold this tier; a stored pause ending later is ignored
        self.pause_cap_s = pause_cap_s
        #: the server's counting window, in seconds
        self.window_s = window_s
        #: the tier this budget counts, the key in a shared ledger
        self.tier = tier
        #: 429s this budget was told about
        self.throttled = 0
        self._ledger: Ledger = ledger or MemoryLedger()
        self._clock = clock
        self._sleep = sleep
        self._cap = float(self.limit)  # lowered after a 429, recovering gradually
        self._cap_at = 0.0
        self._shrunk_until = 0.0  # 429s before this belong to the burst already counted
        self._lock = asyncio.Lock()  # FIFO: the first waiter is admitted first
        self._queued = 0  # callers inside the slow path (waiting for, or holding, the lock)
        self._released = asyncio.Event()
        self._announced = 0.0  # the stored pause last logged (waited on, or ignored)

    def __repr__(self) -> str:
        return (
            f"<WindowBudget {self.tier} cap={self.cap():d}/{self.limit} per {self.window_s:g}s "
            f"paused_until={self.paused_until(self._clock()):.3f}>"
        )

    def cap(self) -> int:
        """How many requests the window may hold now (below `limit` for a while after a 429)."""
        if self._cap >= self.limit:  # no 429 yet, or fully recovered from the last one
            return self.limit
        elapsed_windows = (self._clock() - self._cap_at) / self.window_s
        grown = self._cap + elapsed_windows * _RECOVERY_PER_WINDOW * self.limit
        if grown >= self.limit:
            self._cap = float(self.limit)
        return max(1, min(self.limit, math.floor(grown)))

    async def acquire(self, halt: Halt | None = None) -> int:
        """Wait until one more request fits in the window, count it, return its token.

        With `halt`, the wait ends with RequestDropped once the halt is set, and nothing is
        counted (a slot free at once is taken without a cancel scope: the common case is cheap).
        """
        if halt is not None and halt.is_set():
            raise RequestDropped(_DROPPED)
        if not self._queued:
            # nobody is waiting, so taking a free slot now keeps the order; the ledger still
            # counts it, so this is as exact as the slow path, only without a lock round-trip
            now = self._clock()
            if self.paused_until(now) <= now:
                token, _ = self._ledger.try_admit(self.tier, now, self.cap(), self.window_s)
                if token is not None:
                    return token
        if halt is None:
            return await self._acquire_queued()
        return await halt.before_sending(self._acquire_queued)

    async def _acquire_queued(self) -> int:
        self._queued += 1
        try:
            async with self._lock:
                return await self._acquire_in_turn()
        finally:
            self._queued -= 1

    async def _acquire_in_turn(self) -> int:
        while True:
            now = self._clock()
            paused = self.paused_until(now)
            if paused > now:
                self._announce("waiting-on-pause", paused, now)
                await self._sleep(paused - now)
                continue
            token, wait = self._ledger.try_admit(self.tier, now, self.cap(), self.window_s)
            if token is not None:
                return token
            await self._wait(wait)

    async def _wait(self, wait: float) -> None:
        if wait >= 0:
            await self._sleep(wait)
        elif self._ledger.shared:
            await self._sleep(_POLL_S)  # another process's answer cannot wake us
        else:
            self._released.clear()
            await self._released.wait()

    def paused_until(self, now: float) -> float:
        """When the tier's pause ends; a stored pause beyond `now + pause_cap_s` does not count.

        Such a pause was written by an older bulkshare or follows a hostile answer: honouring
        it would stall every later run on the tenant, so it is ignored (and said so, once).
        """
        until = self._ledger.paused_until(self.tier, now)
        if until > now + self.pause_cap_s:
            self._announce("stored-pause-ignored", until, now)
            return 0.0
        return until

    @property
    def waiting(self) -> int:
        """Requests waiting for this tier's budget now (behind a full window or a pause)."""
        return self._queued

    def pause_left_s(self) -> float:
        """Seconds left in the tier's 429 pause (0: none)."""
        now = self._clock()
        return max(0.0, self.paused_until(now) - now)

    def _announce(self, event: str, until: float, now: float) -> None:
        """One log line per pause: how long it holds the tier, or that it is ignored."""
        if until != self._announced:
            self._announced = until
            log.warning(
                event, tier=self.tier, seconds_left=round(until - now, 1), cap_s=self.pause_cap_s
            )

    def release(self, token: int) -> None:
        """The answer to an admitted request is back: it now ages out one window from now."""
        self._ledger.done(self.tier, token, self._clock())
        self._released.set()

    def pause_for(self, seconds: float) -> None:
        """A 429: admit nothing for `seconds`, and shrink the cap (someone else spends it)."""
        self.throttled += 1
        now = self._clock()
        if not 0.0 <= seconds <= self.pause_cap_s:  # nan fails both: no pause from it
            seconds = self.pause_cap_s if seconds > 0 else 0.0
        self._ledger.pause(self.tier, now + seconds, now + self.pause_cap_s)
        if now < self._shrunk_until:
            # the other requests of the burst that drew the first 429: one signal, one shrink
            return
        self._cap = max(1.0, self.cap() * 0.8)
        self._cap_at = now
        self._shrunk_until = now + seconds


class TierBudgets:
    """One WindowBudget per tier for one tenant and identity."""

    def __init__(self, budgets: Mapping[Tier, WindowBudget], pacer: Pacer | None = None) -> None:
        self._budgets = dict(budgets)
        #: spaces requests evenly inside the window (`pace = "even"`); None: the window decides
        self.pacer = pacer

    @classmethod
    def from_limits(
        cls,
        per_minute: Mapping[Tier, int],
        window_s: float,
        headroom: float = 1.0,
        *,
        ledger: Ledger | None = None,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        pause_cap_s: float = DEFAULT_RETRY_AFTER_CAP_S,
        even: bool = False,
    ) -> TierBudgets:
        """Budgets of `per_minute * window_s / 60 * headroom` requests per window; `even` also
        spaces each tier's requests at `per_minute * headroom`."""
        ledger = ledger or MemoryLedger()
        # a shared ledger needs one clock for every process: the wall clock
        clock = clock or (time.time if ledger.shared else time.monotonic)
        return cls(
            {
                tier: WindowBudget(
                    max(1, math.floor(rate * window_s / 60 * headroom)),
                    window_s,
                    tier=tier.value,
                    ledger=ledger,
                    clock=clock,
                    sleep=sleep,
                    pause_cap_s=pause_cap_s,
                )
                for tier, rate in per_minute.items()
            },
            Pacer({t.value: r * headroom for t, r in per_minute.items()}) if even else None,
        )

    def __getitem__(self, tier: Tier) -> WindowBudget:
        return self._budgets[tier]

    async def pace(self, tier: str) -> None:
        """Wait for the tier's turn when pacing evenly; at once otherwise."""
        if self.pacer is not None:
            await self.pacer.wait(tier)

    def waiting(self) -> int:
        """Requests waiting for budget now, over all tiers (for a progress display)."""
        return sum(b.waiting for b in self._budgets.values())

    def pause_left_s(self) -> float:
        """Seconds left in the longest 429 pause of any tier (0: none)."""
        return max((b.pause_left_s() for b in self._budgets.values()), default=0.0)

    @property
    def throttled(self) -> int:
        """429s seen over all tiers."""
        return sum(b.throttled for b in self._budgets.values())


class RequestDropped(InterruptedRun):
    """A request dropped before it was sent, because its run is stopping; nothing reached the
    tenant, so the change stays planned and `resume` sends it."""


class Halt:
    """The stop of the requests not yet on the wire, shared by every client of one command.

    Until it is set, `before_sending` runs a wait (for rate budget, a retry's backoff) as it
    is; once set, every such wait ends at once with RequestDropped and none starts. A request
    already sent is not touched: it finishes and is recorded.
    """

    __slots__ = ("_is_set", "_waits")

    def __init__(self) -> None:
        self._is_set = False
        self._waits: set[anyio.CancelScope] = set()

    def __repr__(self) -> str:
        return f"<Halt set={self._is_set} waiting={len(self._waits)}>"

    def is_set(self) -> bool:
        """True once the run is stopping."""
        return self._is_set

    @property
    def waiting(self) -> int:
        """Requests waiting to be sent now (for budget or a backoff)."""
        return len(self._waits)

    def set(self) -> None:
        """Drop every wait in progress and every one to come."""
        self._is_set = True
        for scope in self._waits:
            scope.cancel()

    async def before_sending(self, wait: Callable[[], Awaitable[_T]]) -> _T:
        """`await wait()`, unless the halt comes first: then RequestDropped, and `wait` is
        cancelled (it must leave nothing held when cancelled, as asyncio's waits do)."""
        if self._is_set:
            raise RequestDropped(_DROPPED)
        # a cancel scope of our own: only this wait is cancelled, never the task around it
        with anyio.CancelScope() as scope:
            self._waits.add(scope)
            try:
                return await wait()
            finally:
                self._waits.discard(scope)
        raise RequestDropped(_DROPPED)
