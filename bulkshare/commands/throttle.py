"""429s told once per burst: the first rate-limit line of a tenant's burst is logged, the rest
are counted, and one line gives the burst's count once it is over (`-v` logs every one).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog

__all__ = ["QUIET_S", "BurstLog"]

log = structlog.get_logger("bulkshare.client")

#: the client's lines for a 429 answer (http.py logs one per answer)
_EVENTS = frozenset({"rate-limited", "retry-after-clamped"})
#: a burst is over once no 429 came for this long after the end of the pause it asked for
QUIET_S = 5.0


@dataclass
class _Burst:
    started: float
    last: float
    ends: float  #: when it is over, unless another 429 comes first
    count: int
    run_id: Any  #: of the line that started it, for the line that ends it


class BurstLog:
    """A structlog processor: per tenant, one line when a burst of 429s starts, one at its end.

    The end is noticed by the next 429 after it, by `flush` (the progress board calls it on
    its timer) or by `flush(everything=True)` when the command ends.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, quiet_s: float = QUIET_S
    ) -> None:
        self._clock = clock
        self._quiet_s = quiet_s
        self._bursts: dict[str, _Burst] = {}

    def __repr__(self) -> str:
        return f"<BurstLog bursts={len(self._bursts)}>"

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if event.get("event") not in _EVENTS:
            return event
        now = self._clock()
        self.flush()  # a burst over before this one ends first, so its line comes first
        key = str(event.get("tenant") or "")
        ends = now + _seconds(event.get("retry_after_s")) + self._quiet_s
        burst = self._bursts.get(key)
        if burst is not None:
            burst.count += 1
            burst.last, burst.ends = now, max(burst.ends, ends)
            raise structlog.DropEvent
        self._bursts[key] = _Burst(now, now, ends, 1, event.get("run_id"))
        event["burst"] = "start"  # the rest of it is counted, and told when it ends
        return event

    def active(self, tenant: str) -> int:
        """429s of the tenant's burst in progress (0: none)."""
        burst = self._bursts.get(tenant)
        return 0 if burst is None else burst.count

    def flush(self, *, everything: bool = False) -> None:
        """Log the end of every burst that is over (every one at all, with `everything`)."""
        now = self._clock()
        for key, burst in list(self._bursts.items()):
            if everything or now >= burst.ends:
                del self._bursts[key]
                log.warning(
                    "rate-limited-burst-end",
                    tenant=key or None,
                    run_id=burst.run_id,
                    count=burst.count,
                    seconds=round(burst.last - burst.started, 1),
                )


def _seconds(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return max(0.0, float(value))
    return 0.0
