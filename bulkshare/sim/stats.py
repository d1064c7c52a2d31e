"""What the simulator saw: request counts, writes per task, throttling, and a timeline.

Served at `GET /__sim/stats` so that tests and benchmarks can check what a client sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from bulkshare.sim.limits import Tier

__all__ = ["TIMELINE_LIMIT", "SimStats"]

#: the timeline keeps the first this-many requests; later ones are only counted
TIMELINE_LIMIT = 1_000_000


class SimStats:
    """Counters of every API request (the `/__sim/` routes are not counted)."""

    __slots__ = (
        "_clock",
        "_start",
        "by_method",
        "requests",
        "throttled",
        "throttled_by_identity",
        "throttled_by_tier",
        "throttled_tenant_wide",
        "timeline",
        "writes",
        "writes_per_task",
    )

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Start counting afresh (the timeline restarts at 0)."""
        self._start = self._clock()
        self.requests = 0
        self.by_method: Counter[str] = Counter()
        #: write requests that passed auth and the limiter (faulted ones included)
        self.writes = 0
        self.writes_per_task: Counter[str] = Counter()
        #: requests answered 429
        self.throttled = 0
        self.throttled_by_tier: Counter[str] = Counter()
        #: identity -> tier -> 429s (identities are the limiter's: token fingerprints, clients)
        self.throttled_by_identity: dict[str, Counter[str]] = {}
        #: tier -> 429s where the tenant-wide limit was spent
        self.throttled_tenant_wide: Counter[str] = Counter()
        #: [seconds since start, method, path, status]; status 0 is a dropped connection
        self.timeline: list[list[Any]] = []

    def __repr__(self) -> str:
        return (
            f"<SimStats requests={self.requests} writes={self.writes} throttled={self.throttled}>"
        )

    def record(
        self,
        method: str,
        path: str,
        status: int,
        *,
        write: bool = False,
        task_id: str | None = None,
        throttled_tier: Tier | None = None,
        identity: str | None = None,
        tenant_wide: bool = False,
    ) -> None:
        """Count one answered (or dropped) request."""
        self.requests += 1
        self.by_method[method] += 1
        if write:
            self.writes += 1
            if task_id:
                self.writes_per_task[task_id] += 1
        if throttled_tier is not None:
            self.throttled += 1
            self.throttled_by_tier[throttled_tier.value] += 1
            who = self.throttled_by_identity.setdefault(identity or "", Counter())
            who[throttled_tier.value] += 1
            if tenant_wide:
                self.throttled_tenant_wide[throttled_tier.value] += 1
        if len(self.timeline) < TIMELINE_LIMIT:
            self.timeline.append([round(self._clock() - self._start, 6), method, path, status])

    def to_json(self) -> dict[str, Any]:
        """The `/__sim/stats` document."""
        return {
            "requests": self.requests,
            "by_method": dict(self.by_method),
            "writes": self.writes,
            "writes_per_task": dict(self.writes_per_task),
            "throttled": self.throttled,
            "throttled_by_tier": dict(self.throttled_by_tier),
            "throttled_by_identity": {k: dict(v) for k, v in self.throttled_by_identity.items()},
            "throttled_tenant_wide": dict(self.throttled_tenant_wide),
            "timeline": self.timeline,
        }
