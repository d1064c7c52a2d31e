"""The tenant-wide limit: per tier, floor(per-user limit x users x 0.5) over every identity
together, checked besides each identity's own; its 429s show per identity in the stats."""

from __future__ import annotations

import pytest

from bulkshare.sim import SimConfig, SimTenant
from bulkshare.sim.limits import SlidingWindowLimiter, Tier, TierLimits

from .conftest import TASKS, FakeClock, StartSim, error_of

A, B = "token-a", "token-b"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("per_minute", "users", "window_s", "capacity"),
    [(100, 3, 300, 750), (100, 1, 300, 250), (100, 2, 300, 500), (5, 1, 60, 2), (1, 1, 60, 1)],
)
def test_tenant_capacity_is_the_documented_formula(
    per_minute: int, users: int, window_s: float, capacity: int
) -> None:
    """The tenant's window holds floor(per-minute x users x 0.5 x window / 60), at least 1."""
    limits = TierLimits(tier2_per_minute=per_minute, window_s=window_s, tenant_users=users)
    assert limits.tenant_capacity(Tier.TIER2) == capacity
    assert TierLimits(tier2_per_minute=per_minute).tenant_capacity(Tier.TIER2) is None


def test_limiter_counts_the_tenant_besides_each_identity() -> None:
    """Two identities each under their own limit are refused once their sum spends the tenant's."""
    clock = FakeClock(0.0)
    limits = TierLimits(tier2_per_minute=10, window_s=60, tenant_users=1)  # tenant: 5
    limiter = SlidingWindowLimiter(limits, clock)
    for who in ("a", "b", "a", "b", "a"):
        assert limiter.admit(who, Tier.TIER2) is None
        clock.advance(1)
    refusal = limiter.admit("b", Tier.TIER2)
    assert refusal is not None and refusal.tenant_wide
    assert refusal.retry_after == 55  # the tenant's oldest request leaves the window at 60
    assert (limiter.used("a", Tier.TIER2), limiter.used("b", Tier.TIER2)) == (3, 2)
    assert limiter.tenant_used(Tier.TIER2) == 5
    assert limiter.admit("c", Tier.TIER1) is None  # another tier has its own tenant window
    clock.advance(55)
    assert limiter.admit("b", Tier.TIER2) is None


def test_an_identity_spent_before_the_tenant_is_not_tenant_wide() -> None:
    """When the identity's own window is the one spent, the refusal says so."""
    clock = FakeClock(0.0)
    limits = TierLimits(tier2_per_minute=2, window_s=60, tenant_users=10)  # tenant: 10
    limiter = SlidingWindowLimiter(limits, clock)
    assert limiter.admit("a", Tier.TIER2) is None and limiter.admit("a", Tier.TIER2) is None
    refusal = limiter.admit("a", Tier.TIER2)
    assert refusal is not None and not refusal.tenant_wide
    assert limiter.admit("b", Tier.TIER2) is None


@pytest.mark.parametrize(("tenant_users", "refused"), [(1, 1), (None, 0)])
async def test_other_identities_traffic_spends_the_tenant_limit(
    start_sim: StartSim,
    tenant: SimTenant,
    clock: FakeClock,
    tenant_users: int | None,
    refused: int,
) -> None:
    """With tenant_users, A's writes plus B's exceed the tenant's 5 though each stays under 10."""
    config = SimConfig(tier2_per_minute=10, window_s=60, tenant_users=tenant_users)
    sim = await start_sim(tenant, config, clock)
    live = [t for t, task in tenant.tasks.items() if task["statusCode"] != "DELETING"]
    ops = [{"op": "replace", "path": "/tags", "value": ["t"]}]
    answers = []
    for n, tid in enumerate(live[:6]):
        status, body = await sim.call(
            "PATCH", f"{TASKS}/{tid}", json=ops, headers=bearer(A if n % 2 else B)
        )
        answers.append((status, body))
    assert [s for s, _ in answers] == [204] * (6 - refused) + [429] * refused
    stats = await sim.stats()
    if refused:
        assert "tenant-wide tier2 limit" in error_of(answers[-1][1], 429)["detail"]
        (identity,) = stats["throttled_by_identity"]
        assert stats["throttled_by_identity"][identity] == {"tier2": 1}
        assert stats["throttled_tenant_wide"] == {"tier2": 1}
    else:
        assert stats["throttled_by_identity"] == {} and stats["throttled_tenant_wide"] == {}


async def test_tenant_wide_429_carries_retry_after(
    start_sim: StartSim, tenant: SimTenant, clock: FakeClock
) -> None:
    """A tenant-wide refusal answers 429 with Retry-After and the documented body, on reads too."""
    config = SimConfig(tier1_per_minute=2, window_s=60, tenant_users=1)  # tenant: 1 read
    sim = await start_sim(tenant, config, clock)
    assert (await sim.call("GET", TASKS, headers=bearer(A)))[0] == 200
    clock.advance(10)
    async with sim.session.get(sim.at(TASKS), headers=bearer(B)) as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "50"
        error = error_of(await resp.json(), 429)
    assert error["title"] == "API rate limit reached."


async def test_stats_show_429s_per_identity_and_tier(
    start_sim: StartSim, tenant: SimTenant, clock: FakeClock
) -> None:
    """Per-identity refusals are counted by identity and tier, and not as tenant-wide."""
    sim = await start_sim(tenant, SimConfig(tier1_per_minute=1, window_s=60), clock)
    for token in (A, A, A, B, B):
        await sim.call("GET", TASKS, headers=bearer(token))
    stats = await sim.stats()
    assert sorted(v["tier1"] for v in stats["throttled_by_identity"].values()) == [1, 2]
    assert stats["throttled_tenant_wide"] == {}
    assert all(who.startswith("bearer:") for who in stats["throttled_by_identity"])
