"""A simulator that paces within the window (`pace_window_s`): the one behaviour no source settles
about bursts, selectable so the engine is proven under both."""

from __future__ import annotations

from bulkshare.sim.limits import SlidingWindowLimiter, Tier, TierLimits

from .conftest import FakeClock


def test_a_burst_is_refused_when_the_service_paces_per_minute() -> None:
    """With a 60 s pace window, 100 writes fit in any minute although the window holds 500."""
    clock = FakeClock(0.0)
    paced = TierLimits(tier2_per_minute=100, window_s=300, pace_window_s=60)
    limiter = SlidingWindowLimiter(paced, clock)
    assert paced.pace_capacity(Tier.TIER2) == 100
    for _ in range(100):
        assert limiter.acquire("me", Tier.TIER2) is None
    assert limiter.acquire("me", Tier.TIER2) == 60
    assert limiter.acquire("you", Tier.TIER2) is None  # another identity has its own minute
    clock.advance(30)
    assert limiter.acquire("me", Tier.TIER2) == 30
    clock.advance(30)
    for _ in range(100):
        assert limiter.acquire("me", Tier.TIER2) is None
    assert limiter.used("me", Tier.TIER2) == 200


def test_without_a_pace_window_the_whole_window_may_be_spent_at_once() -> None:
    """The default: 500 writes in one burst are all admitted (the window is the only limit)."""
    clock = FakeClock(0.0)
    limiter = SlidingWindowLimiter(TierLimits(tier2_per_minute=100, window_s=300), clock)
    assert limiter.limits.pace_capacity(Tier.TIER2) is None
    assert all(limiter.acquire("me", Tier.TIER2) is None for _ in range(500))
    assert limiter.acquire("me", Tier.TIER2) == 300
