"""Tier budgets on an injected clock: no real sleeps."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bulkshare.client import MemoryLedger, SqliteLedger, Tier, TierBudgets, WindowBudget, tier_for
from tests.specs import SPECS


class FakeClock:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def max_in_any_window(times: list[float], window: float) -> int:
    """The most admissions that fall in any half-open window of `window` seconds."""
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


async def test_no_window_holds_more_than_the_limit() -> None:
    """Sequential requests never put more than `limit` in any window."""
    clock = FakeClock()
    budget = WindowBudget(5, 10.0, clock=clock, sleep=clock.sleep)
    admitted: list[float] = []
    for _ in range(23):
        token = await budget.acquire()
        admitted.append(clock.now)
        budget.release(token)
    assert max_in_any_window(admitted, 10.0) == 5
    # and it wastes nothing: the 23rd request goes out at the start of the 5th window
    assert admitted[-1] - admitted[0] == pytest.approx(40.0, abs=0.01)


async def test_in_flight_requests_count() -> None:
    """A request still in flight holds its slot: the next one waits for its answer."""
    clock = FakeClock()
    budget = WindowBudget(2, 10.0, clock=clock, sleep=clock.sleep)
    first = await budget.acquire()
    await budget.acquire()
    third = asyncio.create_task(budget.acquire())
    await asyncio.sleep(0)
    assert not third.done()
    clock.now += 3.0
    budget.release(first)  # the answer came at t+3: its slot frees at t+13
    await third
    assert clock.now == pytest.approx(1013.0)


async def test_pause_after_429_holds_everything() -> None:
    """After a 429 nothing of that tier leaves before Retry-After, then the budget recovers."""
    clock = FakeClock()
    budget = WindowBudget(100, 10.0, clock=clock, sleep=clock.sleep)
    budget.pause_for(7.0)
    start = clock.now
    token = await budget.acquire()
    assert clock.now - start >= 7.0
    budget.release(token)
    assert budget.throttled == 1
    before = clock.now
    await budget.acquire()  # no longer paused: admitted at once
    assert clock.now == before


def test_tier_mapping() -> None:
    """GETs are tier 1, writes tier 2, the users filter its own tier."""
    assert tier_for("GET", "/v1/sharing-tasks") is Tier.TIER1
    assert tier_for("PATCH", "/v1/sharing-tasks/x") is Tier.TIER2
    assert tier_for("DELETE", "/v1/sharing-tasks/x") is Tier.TIER2
    assert tier_for("POST", "/v1/sharing-tasks/actions/execute") is Tier.TIER2
    assert tier_for("POST", "/v1/users/actions/filter") is Tier.USERS_FILTER
    # only that path: a write ending the same way is still a write
    assert tier_for("POST", "/v1/sharing-tasks/x/users/actions/filter") is Tier.TIER2


def test_budget_sizes_follow_the_window_and_headroom() -> None:
    """A budget holds per_minute * window / 60 * headroom requests."""
    budgets = TierBudgets.from_limits({Tier.TIER1: 1000, Tier.TIER2: 100}, 300.0, 0.5)
    assert budgets[Tier.TIER1].limit == 2500
    assert budgets[Tier.TIER2].limit == 250


async def test_cap_shrinks_after_429_and_recovers() -> None:
    """A 429 lowers the cap (someone else spends the budget); it grows back within two windows."""
    clock = FakeClock()
    budget = WindowBudget(100, 10.0, clock=clock, sleep=clock.sleep)
    budget.pause_for(1.0)
    assert budget.cap() == 80
    clock.now += 10.0
    assert 80 < budget.cap() < 100
    clock.now += 10.0
    assert budget.cap() == 100


async def test_a_burst_of_429s_shrinks_the_cap_once() -> None:
    """The 429s answering one burst of concurrent requests are one signal, not sixteen."""
    clock = FakeClock()
    budget = WindowBudget(100, 10.0, clock=clock, sleep=clock.sleep)
    for _ in range(16):
        budget.pause_for(1.0)
    assert budget.cap() == 80
    assert budget.throttled == 16
    clock.now += 1.0  # past the pause: a new 429 is news
    budget.pause_for(1.0)
    assert budget.cap() < 80


def two_processes(
    tmp_path: Path, limit: int, clock: FakeClock
) -> tuple[list[WindowBudget], list[SqliteLedger]]:
    """Two budgets on one SQLite ledger file, as two bulkshare processes would hold them."""
    ledgers = [SqliteLedger(tmp_path / "ledger.sqlite") for _ in range(2)]
    budgets = [
        WindowBudget(limit, 10.0, tier="tier2", ledger=ledger, clock=clock, sleep=clock.sleep)
        for ledger in ledgers
    ]
    return budgets, ledgers


async def test_shared_ledger_holds_two_processes_to_one_limit(tmp_path: Path) -> None:
    """Two budgets on one SQLite ledger (two processes) together never exceed the limit."""
    clock = FakeClock()
    budgets, ledgers = two_processes(tmp_path, 5, clock)
    admitted: list[float] = []

    async def spend(budget: WindowBudget, n: int) -> None:
        for _ in range(n):
            token = await budget.acquire()
            admitted.append(clock.now)
            budget.release(token)

    await asyncio.gather(spend(budgets[0], 12), spend(budgets[1], 12))
    assert len(admitted) == 24
    assert max_in_any_window(sorted(admitted), 10.0) <= 5
    budgets[0].pause_for(30.0)  # a 429 seen by one process pauses the other too ...
    start = clock.now
    clock.now += 0.2  # ... once its 0.1 s old look at the ledger has expired
    token = await budgets[1].acquire()
    budgets[1].release(token)
    assert clock.now - start >= 30.0
    for ledger in ledgers:
        ledger.close()


def test_tiers_match_the_spec() -> None:
    """Every operation of both specs is charged to the tier its x-qlik-tier names."""
    names = {"1": Tier.TIER1, "2": Tier.TIER2}
    seen = 0
    for spec in ("sharing-tasks.openapi.json", "users.openapi.json"):
        doc = json.loads((SPECS / spec).read_text())
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                tier = op.get("x-qlik-tier") if isinstance(op, dict) else None
                if not tier:
                    continue
                want = names.get(str(tier.get("tier")), Tier.USERS_FILTER)
                assert tier_for(method, path) is want, (method, path, tier)
                seen += 1
    assert seen >= 10


async def test_many_callers_at_once_keep_the_limit_and_their_order() -> None:
    """Callers arriving together are admitted first come, first served, never over the limit."""
    clock = FakeClock()
    budget = WindowBudget(4, 10.0, clock=clock, sleep=clock.sleep)
    admitted: list[tuple[int, float]] = []

    async def call(n: int) -> None:
        token = await budget.acquire()
        admitted.append((n, clock.now))
        budget.release(token)

    await asyncio.gather(*(call(n) for n in range(14)))
    assert [n for n, _ in admitted] == list(range(14))
    assert max_in_any_window([t for _, t in admitted], 10.0) == 4


def ledger_slots(path: Path, tier: str) -> tuple[int, int, int]:
    """(running count, rows of `sent`, slots of `blocks`) of a tier, seen from another process."""
    other = SqliteLedger(path)
    db = other._db
    (count,) = db.execute(
        "SELECT COALESCE(MAX(n), 0) FROM counts WHERE tier = ?", (tier,)
    ).fetchone()
    (rows,) = db.execute("SELECT COUNT(*) FROM sent WHERE tier = ?", (tier,)).fetchone()
    (slots,) = db.execute(
        "SELECT COALESCE(SUM(n), 0) FROM blocks WHERE tier = ?", (tier,)
    ).fetchone()
    other.close()
    return count, rows, slots


async def test_far_below_the_limit_a_lease_is_one_row_counting_every_slot(
    tmp_path: Path,
) -> None:
    """With the window far from full, slots are leased as blocks; each slot is counted."""
    clock = FakeClock()
    path = tmp_path / "ledger.sqlite"
    ledger = SqliteLedger(path)
    budget = WindowBudget(10_000, 10.0, tier="tier1", ledger=ledger, clock=clock, sleep=clock.sleep)
    tokens = [await budget.acquire() for _ in range(300)]
    assert len(set(tokens)) == 300
    for token in tokens:
        budget.release(token)
    ledger.close()  # gives the unused rest of the second block back
    assert ledger_slots(path, "tier1") == (300, 0, 300)
    clock.now += 10.0  # a window after the last answer every slot has aged out
    ledger = SqliteLedger(path)
    budget = WindowBudget(10_000, 10.0, tier="tier1", ledger=ledger, clock=clock, sleep=clock.sleep)
    budget.release(await budget.acquire())
    ledger.close()
    assert ledger_slots(path, "tier1") == (1, 0, 1)


async def test_near_the_limit_every_slot_is_its_own_row(tmp_path: Path) -> None:
    """Past half the window, leases go back to one row per slot, aged by its own answer."""
    clock = FakeClock()
    path = tmp_path / "ledger.sqlite"
    ledger = SqliteLedger(path)
    budget = WindowBudget(400, 10.0, tier="tier2", ledger=ledger, clock=clock, sleep=clock.sleep)
    for _ in range(400):
        budget.release(await budget.acquire())
    ledger.close()
    count, rows, slots = ledger_slots(path, "tier2")
    assert count == rows + slots == 400
    assert 0 < slots <= 200 <= rows


async def test_shared_big_budget_holds_two_processes_to_one_limit(tmp_path: Path) -> None:
    """Blocks and single slots together never let two processes past the limit."""
    clock = FakeClock()
    budgets, ledgers = two_processes(tmp_path, 400, clock)
    admitted: list[float] = []

    async def spend(budget: WindowBudget, n: int) -> None:
        for _ in range(n):
            token = await budget.acquire()
            admitted.append(clock.now)
            await asyncio.sleep(0)  # let the other process in between
            budget.release(token)

    await asyncio.gather(spend(budgets[0], 700), spend(budgets[1], 700))
    assert len(admitted) == 1400
    assert max_in_any_window(sorted(admitted), 10.0) <= 400
    for ledger in ledgers:
        ledger.close()


async def test_a_lease_unused_too_long_is_given_back_and_never_handed_out(
    tmp_path: Path,
) -> None:
    """After a lease expires, the next request gets a slot that is counted, not a returned one."""
    for limit in (64, 10_000):  # leases of single slots, and a block
        clock = FakeClock()
        path = tmp_path / f"ledger-{limit}.sqlite"
        ledger = SqliteLedger(path)
        budget = WindowBudget(limit, 10.0, tier="t", ledger=ledger, clock=clock, sleep=clock.sleep)
        budget.release(await budget.acquire())
        clock.now += 6.0  # the rest of the lease has been held too long
        token = await budget.acquire()
        if token > 0:
            row = ledger._db.execute("SELECT done FROM sent WHERE id = ?", (token,)).fetchone()
            assert row == (None,)  # a live, counted slot
        budget.release(token)
        ledger.close()
        count, rows, slots = ledger_slots(path, "t")
        assert count == rows + slots == 2


async def test_slots_of_a_dead_process_age_out(tmp_path: Path) -> None:
    """Slots never answered (the process died) stop counting a window plus a margin later."""
    clock = FakeClock()
    path = tmp_path / "ledger.sqlite"
    dead = SqliteLedger(path)
    for limit in (64, 10_000):
        budget = WindowBudget(limit, 10.0, tier=f"t{limit}", ledger=dead, clock=clock)
        await budget.acquire()  # never answered
    clock.now += 10.0 + 121.0
    alive = SqliteLedger(path)
    for limit in (64, 10_000):
        budget = WindowBudget(limit, 10.0, tier=f"t{limit}", ledger=alive, clock=clock)
        budget.release(await budget.acquire())
    alive.close()
    assert ledger_slots(path, "t64") == (1, 1, 0)
    assert ledger_slots(path, "t10000") == (1, 0, 1)


@pytest.mark.parametrize("shared", [False, True])
def test_a_stored_pause_past_the_ceiling_is_replaced_not_kept(tmp_path: Path, shared: bool) -> None:
    """Both ledgers keep the longer of two pauses, but replace one beyond the ceiling."""
    ledger = SqliteLedger(tmp_path / "l.sqlite") if shared else MemoryLedger()
    ledger.pause("tier1", 2000.0, 1600.0)  # stored by a hostile answer or an old bulkshare
    assert ledger.paused_until("tier1", 1000.0) == 2000.0
    ledger.pause("tier1", 1030.0, 1600.0)  # a real 429 now: the stale pause goes
    assert ledger.paused_until("tier1", 1000.0 + 1.0) == 1030.0
    ledger.pause("tier1", 1010.0, 1600.0)  # a shorter one keeps the longer
    assert ledger.paused_until("tier1", 1000.0 + 2.0) == 1030.0


async def test_a_budget_never_pauses_past_its_cap() -> None:
    """pause_for(999999), nan or a negative: the tier waits at most its cap, or not at all."""
    clock = FakeClock()
    budget = WindowBudget(10, 60.0, clock=clock, sleep=clock.sleep, pause_cap_s=600.0)
    budget.pause_for(999_999.0)
    start = clock.now
    budget.release(await budget.acquire())
    assert clock.now - start == pytest.approx(600.0)
    for odd in (float("nan"), -5.0):
        budget.pause_for(odd)
        start = clock.now
        budget.release(await budget.acquire())
        assert clock.now == start


def test_a_pause_beyond_the_cap_does_not_count_as_paused(tmp_path: Path) -> None:
    """A budget reads a stored pause past now + cap as no pause at all."""
    clock = FakeClock()
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    budget = WindowBudget(10, 60.0, ledger=ledger, clock=clock, sleep=clock.sleep, pause_cap_s=60)
    ledger.pause("tier", clock.now + 61.0, clock.now + 61.0)
    assert budget.paused_until(clock.now) == 0.0
    ledger.pause("tier", clock.now + 59.0, clock.now + 60.0)
    assert budget.paused_until(clock.now) == clock.now + 59.0
