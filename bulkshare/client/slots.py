"""Requests in flight, at most `n` at once, first come first served (the client's concurrency)."""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Slots"]


class Slots:
    """Requests in flight, at most `n`: a semaphore whose free path is a counter.

    (asyncio's scans its waiters on every acquire.) Waiters are served first come, first served;
    a released slot goes straight to the next live waiter.
    """

    __slots__ = ("_free", "_waiters")

    def __init__(self, n: int) -> None:
        self._free = n
        self._waiters: deque[asyncio.Future[None]] = deque()

    def __repr__(self) -> str:
        return f"<Slots free={self._free} waiting={len(self._waiters)}>"

    async def acquire(self) -> None:
        if self._free > 0:  # only ever with no one waiting: release hands slots over first
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # skip waiters that were cancelled
                waiter.set_result(None)
                return
        self._free += 1
