"""Server-side rate limits as the service counts them: per identity and per tenant, per tier,
over a sliding window. The tier of each operation mirrors the `x-qlik-tier` of the specs.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["OPERATION_TIERS", "Refusal", "SlidingWindowLimiter", "Tier", "TierLimits"]


class Tier(enum.StrEnum):
    """A rate-limit tier of the Qlik Cloud API."""

    TIER1 = "tier1"  # reads: every GET of sharing tasks and users
    TIER2 = "tier2"  # writes: POST/PATCH/PUT/DELETE, and POST /oauth/token
    USERS_FILTER = "users-filter"  # the "special" tier of POST /api/v1/users/actions/filter


#: (method, route template) -> tier, as in the specs' `x-qlik-tier`.
OPERATION_TIERS: Mapping[tuple[str, str], Tier] = {
    ("GET", "/api/v1/sharing-tasks"): Tier.TIER1,
    ("POST", "/api/v1/sharing-tasks"): Tier.TIER2,
    ("POST", "/api/v1/sharing-tasks/actions/execute"): Tier.TIER2,
    ("GET", "/api/v1/sharing-tasks/settings"): Tier.TIER1,
    ("PATCH", "/api/v1/sharing-tasks/settings"): Tier.TIER2,
    ("PUT", "/api/v1/sharing-tasks/settings"): Tier.TIER2,
    ("GET", "/api/v1/sharing-tasks/{taskId}"): Tier.TIER1,
    ("PATCH", "/api/v1/sharing-tasks/{taskId}"): Tier.TIER2,
    ("DELETE", "/api/v1/sharing-tasks/{taskId}"): Tier.TIER2,
    ("POST", "/api/v1/sharing-tasks/{taskId}/actions/cancel"): Tier.TIER2,
    ("GET", "/api/v1/sharing-tasks/{taskId}/executions"): Tier.TIER1,
    ("GET", "/api/v1/sharing-tasks/{taskId}/executions/{executionId}"): Tier.TIER1,
    (
        "GET",
        "/api/v1/sharing-tasks/{taskId}/executions/{executionId}/files/{fileAlias}",
    ): Tier.TIER1,
    ("GET", "/api/v1/users"): Tier.TIER1,
    ("GET", "/api/v1/users/me"): Tier.TIER1,
    ("GET", "/api/v1/users/{userId}"): Tier.TIER1,
    ("POST", "/api/v1/users/actions/filter"): Tier.USERS_FILTER,
    ("POST", "/oauth/token"): Tier.TIER2,
}


@dataclass(frozen=True, slots=True)
class TierLimits:
    """Requests per minute of each tier, all counted over one sliding window."""

    tier1_per_minute: int = 1000
    tier2_per_minute: int = 100
    users_filter_per_minute: int = 200
    window_s: float = 300.0
    #: users in the tenant: when set, each tier also has a tenant-wide limit over all
    #: identities of (per-user limit) x tenant_users x 0.5
    tenant_users: int | None = None
    #: when set, each identity is also held to its per-minute rate over this shorter sliding
    #: window (a service that paces within the window rather than letting it burst)
    pace_window_s: float | None = None

    def per_minute(self, tier: Tier) -> int:
        """The documented per-minute rate of `tier`."""
        if tier is Tier.TIER1:
            return self.tier1_per_minute
        if tier is Tier.TIER2:
            return self.tier2_per_minute
        return self.users_filter_per_minute

    def capacity(self, tier: Tier) -> int:
        """How many requests of `tier` fit in one window (5000 / 500 / 1000 by default)."""
        return max(1, int(self.per_minute(tier) * self.window_s / 60.0))

    def pace_capacity(self, tier: Tier) -> int | None:
        """How many requests of `tier` fit in one pace window, if the service paces."""
        if self.pace_window_s is None:
            return None
        return max(1, math.floor(self.per_minute(tier) * self.pace_window_s / 60.0))

    def tenant_capacity(self, tier: Tier) -> int | None:
        """How many requests of `tier` the whole tenant may make in one window, if limited."""
        if self.tenant_users is None:
            return None
        per_minute = self.per_minute(tier) * self.tenant_users * 0.5
        return max(1, math.floor(per_minute * self.window_s / 60.0))


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was not admitted, and how long until it would be."""

    retry_after: int  # whole seconds, at least 1
    tenant_wide: bool  # the tenant's limit was the one spent (the identity's may have room)


_TENANT = "\x00tenant"  # the tenant-wide counter's key: no identity looks like it


class SlidingWindowLimiter:
    """Admits a request when fewer than `capacity` of its tier were admitted in the window, for
    the identity and (with `tenant_users`) for the whole tenant."""

    __slots__ = ("_clock", "_hits", "limits")

    def __init__(self, limits: TierLimits, clock: Callable[[], float]) -> None:
        #: the tiers' rates and the window they are counted over
        self.limits = limits
        self._clock = clock
        #: (identity, tier) -> times of the admitted requests still inside the window
        self._hits: dict[tuple[str, Tier], deque[float]] = {}

    def __repr__(self) -> str:
        now = self._clock()
        used = {
            f"{who}/{tier.value}": self._live(hits, now) for (who, tier), hits in self._hits.items()
        }
        return f"<SlidingWindowLimiter window_s={self.limits.window_s} used={used}>"

    def acquire(self, identity: str, tier: Tier) -> int | None:
        """Count a request and return None, or return the whole seconds to wait (not counted)."""
        refusal = self.admit(identity, tier)
        return None if refusal is None else refusal.retry_after

    def admit(self, identity: str, tier: Tier) -> Refusal | None:
        """Count a request and return None, or return why it is refused (not counted)."""
        now = self._clock()
        mine = self._hits.setdefault((identity, tier), deque())
        mine_full = self._live(mine, now) >= self.limits.capacity(tier)
        paced = self._paced(mine, tier, now)
        if paced is not None:
            return paced
        tenant_capacity = self.limits.tenant_capacity(tier)
        if tenant_capacity is None:  # the usual case: one counter
            if mine_full:
                return Refusal(self._wait(mine, now), tenant_wide=False)
            mine.append(now)
            return None
        shared = self._hits.setdefault((_TENANT, tier), deque())
        shared_full = self._live(shared, now) >= tenant_capacity
        if mine_full or shared_full:
            full = [hits for hits, spent in ((mine, mine_full), (shared, shared_full)) if spent]
            return Refusal(max(self._wait(hits, now) for hits in full), tenant_wide=shared_full)
        mine.append(now)
        shared.append(now)
        return None

    def _paced(self, hits: deque[float], tier: Tier, now: float) -> Refusal | None:
        """A refusal when the identity's last pace window already holds its per-minute share."""
        capacity = self.limits.pace_capacity(tier)
        if capacity is None or len(hits) < capacity:
            return None
        assert self.limits.pace_window_s is not None
        horizon = now - self.limits.pace_window_s
        oldest_recent = hits[-capacity]  # hits are in time order: the capacity-th most recent
        if oldest_recent <= horizon:
            return None
        wait = max(1, math.ceil(oldest_recent + self.limits.pace_window_s - now))
        return Refusal(wait, tenant_wide=False)

    def used(self, identity: str, tier: Tier) -> int:
        """How many requests of `tier` by `identity` the current window holds."""
        hits = self._hits.get((identity, tier))
        return 0 if hits is None else self._live(hits, self._clock())

    def tenant_used(self, tier: Tier) -> int:
        """How many requests of `tier` by every identity together the current window holds."""
        return self.used(_TENANT, tier)

    def reset(self) -> None:
        """Forget every counted request."""
        self._hits.clear()

    def _tenant_hits(self, tier: Tier, now: float) -> tuple[deque[float], bool] | None:
        capacity = self.limits.tenant_capacity(tier)
        if capacity is None:
            return None
        hits = self._hits.setdefault((_TENANT, tier), deque())
        return hits, self._live(hits, now) >= capacity

    def _wait(self, hits: deque[float], now: float) -> int:
        return max(1, math.ceil(hits[0] + self.limits.window_s - now))

    def _live(self, hits: deque[float], now: float) -> int:
        horizon = now - self.limits.window_s
        while hits and hits[0] <= horizon:
            hits.popleft()
        return len(hits)
