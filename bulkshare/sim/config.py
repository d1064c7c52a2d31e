"""How a simulator instance behaves: limits, credentials, faults, latency, persistence.

Every field has the real service's default, so `SimConfig()` is a faithful tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bulkshare.sim.limits import TierLimits

__all__ = ["SimConfig"]


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Settings of one simulated tenant."""

    tier1_per_minute: int = 1000
    tier2_per_minute: int = 100
    users_filter_per_minute: int = 200
    #: the window the limits are counted over; capacity = per_minute * window_s / 60
    window_s: float = 300.0
    #: when set, the only accepted bearer besides tokens issued by /oauth/token
    api_key: str | None = None
    #: when both are set, the only client /oauth/token accepts
    client_id: str | None = None
    client_secret: str | None = None
    token_ttl_s: int = 21600
    #: probability that a write gets a fault (503 before, 500 after, or a dropped connection after)
    fault_rate: float = 0.0
    #: seed of the fault draws
    seed: int = 0
    #: added to every API request
    latency_ms: int = 0
    #: DELETE first marks a task DELETING; it goes after deleting_linger_s or on the next DELETE
    deleting_phase: bool = False
    deleting_linger_s: float = 2.0
    #: when set, the tenant document is kept there (written at most every ~100 ms)
    persist_path: Path | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be between 0 and 1, got {self.fault_rate}")
        rates = (self.tier1_per_minute, self.tier2_per_minute, self.users_filter_per_minute)
        if min(rates) < 1 or self.window_s <= 0:
            raise ValueError("rate limits and window_s must be positive")
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("client_id and client_secret go together")
        if self.latency_ms < 0 or self.token_ttl_s < 1:
            raise ValueError("latency_ms must be >= 0 and token_ttl_s >= 1")

    def limits(self) -> TierLimits:
        """The tier limits this config sets."""
        return TierLimits(
            tier1_per_minute=self.tier1_per_minute,
            tier2_per_minute=self.tier2_per_minute,
            users_filter_per_minute=self.users_filter_per_minute,
            window_s=self.window_s,
        )
