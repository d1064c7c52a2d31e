"""A change is judged by its guard: the fields it writes and the fields its operations selected
on. Another field moving is no conflict; a task another job fixed is skipped, not failed; and a
429 never uses up a change's attempts."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from bulkshare.client import ApiClient, ApiKeyAuth, Tier, TierBudgets
from bulkshare.client.http import RequestFailed
from bulkshare.client.retries import THROTTLE_WINDOWS
from bulkshare.job import ActionKind, Operation, Where
from bulkshare.plan import Change, plan_task
from bulkshare.run import Outcome, judge
from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.conftest import ROOT, TEST_KEY, TEST_KEY_ENV, Sim, Workdir, bulkshare
from tests.test_limits import FakeClock
from tests.test_read_back import Seen, change_records, proxied, run_dirs, summary, task_writes
from tests.test_run_files import served
from tests.test_safety import patch_task

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ORPHANED: dict[str, Any] = {
    "id": "t1",
    "name": "Weekly report",
    "owner": "gone",
    "enabled": True,
    "tags": ["x"],
    "statusCode": "VALID",
    "taskErrors": [{"value": "ORPHAN", "timestamp": "2026-02-01T00:00:00Z"}],
}


def op(action: ActionKind, where: Where, **extra: Any) -> Operation:
    """One operation, built directly."""
    return Operation(0, 1, action, where, **extra)


def only_change(task: dict[str, Any], *ops: Operation) -> Change:
    [change] = plan_task(task, ops, NOW, lambda _: "deleted").changes
    return change


DISABLE_ORPHANS = op(
    ActionKind.DISABLE, Where(task_errors=frozenset({"ORPHAN", "OWNER_DISABLED"}), enabled=True)
)
REASSIGN = op(ActionKind.REASSIGN_OWNER, Where(owner=frozenset({"gone"})), to="new")


def verdict(change: Change, current: dict[str, Any], in_doubt: bool = False) -> Any:
    return judge.before_write(change, current, in_doubt, NOW)


def test_a_change_records_what_it_selects_on_writes_and_expects() -> None:
    """selects: the fields its where read (and statusCode); writes: before -> after of what the
    PATCH sends; expect: what the service may do besides, relied on by nothing."""
    disable = only_change(ORPHANED, DISABLE_ORPHANS)
    assert disable.selects == {
        "enabled": True,
        "statusCode": "VALID",
        "taskErrors": ORPHANED["taskErrors"],
    }
    assert disable.selection == ({"enabled": True, "task_errors": ["ORPHAN", "OWNER_DISABLED"]},)
    assert disable.writes == {"enabled": (True, False)} and disable.expect == {}
    reassign = only_change(ORPHANED, REASSIGN)
    assert reassign.writes == {"owner": ("gone", "new")}  # no predicted enabled: false
    assert reassign.expect == {"enabled": False, "taskErrors": ["ORPHAN"]}
    assert reassign.ending() == "may be disabled by the service"
    keep = only_change(ORPHANED, replace(REASSIGN, keep_enabled=True))
    assert keep.expect["enabled"] is True and keep.reenables
    assert keep.ending() == "enabled (re-enabled if the service disables it)"
    assert only_change(ORPHANED, replace(REASSIGN, enable=True)).ending() == "enabled"
    stays = only_change(ORPHANED | {"enabled": False}, REASSIGN)
    assert "enabled" not in stays.expect and stays.ending() == "stays disabled"


def test_owner_status_guards_the_owner() -> None:
    """A task chosen for its owner's status is guarded by that owner: given to someone else, it
    is no longer selected."""
    by_status = op(ActionKind.DISABLE, Where(owner_status=frozenset({"deleted"})))
    change = only_change(ORPHANED, by_status)
    assert change.selection == ({"owner": ["gone"]},)
    assert verdict(change, ORPHANED) is None
    moved = verdict(change, ORPHANED | {"owner": "someone"})
    assert moved.outcome is Outcome.SKIPPED and "owner moved" in moved.reason


def test_changes_chosen_by_one_selection_share_it() -> None:
    """A large plan keeps one copy of a selection, not one per change; a selection that names
    the task's owner (owner_status) is its own."""
    first = only_change(ORPHANED, DISABLE_ORPHANS)
    second = only_change(ORPHANED | {"id": "t2", "name": "Other"}, DISABLE_ORPHANS)
    assert first.selection is second.selection and first.selects is not second.selects
    assert first.expect is second.expect and first.to_json()["expect"] == {}
    by_status = op(ActionKind.DISABLE, Where(owner_status=frozenset({"deleted"})))
    mine = only_change(ORPHANED, by_status)
    theirs = only_change(ORPHANED | {"id": "t2", "owner": "other"}, by_status)
    assert (mine.selection, theirs.selection) == (({"owner": ["gone"]},), ({"owner": ["other"]},))


def test_a_written_field_moved_elsewhere_is_a_conflict() -> None:
    """tags planned ["x"] -> ["x", "y"], found ["z"]: a conflict naming the field."""
    tag = op(ActionKind.TAG, Where(all=True), tags=("y",))
    change = only_change(ORPHANED, tag)
    found = verdict(change, ORPHANED | {"tags": ["z"]})
    assert found.outcome is Outcome.CONFLICT
    assert found.reason == 'tags is ["z"]: planned ["x"] -> ["x", "y"]'


def test_every_written_field_at_its_after_value_is_done() -> None:
    """Already as the change would leave it: skipped, or, for a write in doubt, applied."""
    change = only_change(ORPHANED, DISABLE_ORPHANS)
    assert verdict(change, ORPHANED | {"enabled": False}).outcome is Outcome.SKIPPED
    assert verdict(change, ORPHANED | {"enabled": False}, True).outcome is Outcome.APPLIED


def test_a_selected_field_moved_out_of_the_selection_is_skipped_not_failed() -> None:
    """Someone fixed the orphan: its errors are gone, so the disable no longer selects it."""
    change = only_change(ORPHANED, DISABLE_ORPHANS)
    found = verdict(change, ORPHANED | {"taskErrors": []})
    assert found.outcome is Outcome.SKIPPED
    assert found.reason == 'no longer selected: taskErrors moved from ["ORPHAN"] to []'


def test_a_selected_field_moved_within_the_selection_is_sent() -> None:
    """A new error beside ORPHAN, or a newer timestamp: still selected, still disabled."""
    change = only_change(ORPHANED, DISABLE_ORPHANS)
    more = ORPHANED["taskErrors"] + [{"value": "OWNER_LICENSE"}]
    assert verdict(change, ORPHANED | {"taskErrors": more}) is None
    newer = [{"value": "ORPHAN", "timestamp": "2026-02-28T00:00:00Z"}]
    assert verdict(change, ORPHANED | {"taskErrors": newer}) is None


def test_any_other_field_moved_is_no_conflict() -> None:
    """A reassign neither selects on nor writes enabled, name or tags: they may move freely."""
    change = only_change(ORPHANED, REASSIGN)
    moved = ORPHANED | {"enabled": False, "name": "renamed", "tags": [], "taskErrors": []}
    assert verdict(change, moved) is None


def test_a_task_gone_deleting_is_no_longer_selected() -> None:
    """A PATCH is not sent to a task on its way out; a delete still is."""
    found = verdict(only_change(ORPHANED, REASSIGN), ORPHANED | {"statusCode": "DELETING"})
    assert found.outcome is Outcome.SKIPPED and "DELETING" in found.reason
    delete = op(ActionKind.DELETE, Where(owner=frozenset({"gone"})))
    assert verdict(only_change(ORPHANED, delete), ORPHANED | {"statusCode": "DELETING"}) is None


def test_a_later_operation_selected_on_an_earlier_ones_write_is_guarded_by_that_write() -> None:
    """enable, then tag where enabled = true: the tag matched on the planned enable, so its
    selection leaves `enabled` to the write guard, and the disabled task is still tagged."""
    disabled = ORPHANED | {"enabled": False}
    enable = op(ActionKind.ENABLE, Where(all=True))
    tag = op(ActionKind.TAG, Where(enabled=True), tags=("on",))
    change = only_change(disabled, enable, tag)
    assert change.selection == () and change.writes["enabled"] == (False, True)
    assert verdict(change, disabled | {"name": "other"}) is None


def test_a_write_is_judged_landed_by_what_it_writes_only() -> None:
    """A reassign in doubt has landed when the owner is the new one, enabled or not."""
    change = only_change(ORPHANED, REASSIGN)
    for enabled in (True, False):
        assert judge.patch_landed(change, ORPHANED | {"owner": "new", "enabled": enabled})
        assert verdict(change, ORPHANED | {"owner": "new", "enabled": enabled}, True).outcome is (
            Outcome.APPLIED
        )
    assert not judge.patch_landed(change, ORPHANED)


def test_side_effects_compare_the_read_back_with_the_expectation() -> None:
    """Left enabled where disabling was expected; disabled where it was to stay enabled (and
    then re-enabled); a new owner error: each a side effect, none a failure."""
    plain = only_change(ORPHANED, REASSIGN)
    seen = judge.observed_state(plain, ORPHANED | {"owner": "new", "taskErrors": []})
    assert [e.to_json() for e in judge.side_effects(plain, seen)] == [
        {"field": "enabled", "expected": False, "observed": True}
    ]
    keep = only_change(ORPHANED, replace(REASSIGN, keep_enabled=True))
    errors = [{"value": "DISABLED_DUE_TO_OWNERSHIP_CHANGE"}, {"value": "ORPHAN"}]
    seen = judge.observed_state(
        keep, ORPHANED | {"owner": "new", "enabled": False} | {"taskErrors": errors}
    )
    assert [(e.field, e.observed) for e in judge.side_effects(keep, seen)] == [
        ("enabled", False),
        ("taskErrors", ["DISABLED_DUE_TO_OWNERSHIP_CHANGE"]),
    ]
    assert judge.needs_reenable(keep, seen, None)
    assert not judge.needs_reenable(keep, seen, False)  # someone disabled it before our write
    assert not judge.needs_reenable(plain, seen, None)


# --- end to end: a saved plan, the tenant changed behind it, then apply ------------------------


async def plan_then(
    sim: Sim, wd: Workdir, job: Path, change_tenant: Callable[[], Any]
) -> tuple[int, dict[str, dict[str, Any]], dict[str, Any]]:
    """Plan `job` to a file, change the tenant, apply the file: exit code, records, summary."""
    plan_file = wd.path / "plan.json"
    planned = await bulkshare(wd, "plan", str(job), "--out", str(plan_file))
    assert planned.code == 0, planned.err
    await change_tenant()
    applied = await bulkshare(wd, "apply", str(plan_file), "--yes")
    [run] = run_dirs(wd)
    return applied.code, change_records(run), summary(run)


async def test_apply_skips_an_orphan_someone_else_fixed(demo_sim: Sim, workdir: Workdir) -> None:
    """disable-orphaned after another admin gave one orphan an active owner (keeping it
    enabled): that task is skipped with its reason, stays enabled, and the run exits 0."""
    before = await demo_sim.tasks()
    users = await demo_sim.users()
    active = next(u["id"] for u in users if u["status"] == "active")
    job = ROOT / "jobs" / "disable-orphaned.toml"
    fixed: list[str] = []

    async def fix_one() -> None:
        plan = orjson.loads((workdir.path / "plan.json").read_bytes())
        fixed.append(plan["changes"][0]["task_id"])
        await patch_task(
            demo_sim,
            fixed[0],
            [
                {"op": "replace", "path": "/ownerId", "value": active},
                {"op": "replace", "path": "/enabled", "value": True},
            ],
        )

    code, records, counts = await plan_then(demo_sim, workdir, job, fix_one)
    assert code == 0
    record = records[fixed[0]]
    assert record["outcome"] == "skipped" and record["error"] is None
    assert record["note"].startswith("no longer selected: taskErrors moved from [")
    assert (await demo_sim.tasks())[fixed[0]]["enabled"] is True
    assert before[fixed[0]]["enabled"] is True
    assert counts["counts"]["skipped"] == 1 and counts["exit_code"] == 0


async def test_apply_writes_through_a_change_to_another_field(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """A reassign planned, then a task disabled and renamed by someone: the reassign still
    lands (neither field is in its guard) and the run exits 0."""
    tasks = await demo_sim.tasks()
    active = [u["id"] for u in await demo_sim.users() if u["status"] == "active"]
    old = next(o for o in active if sum(t["owner"] == o for t in tasks.values()) >= 3)
    new = next(u for u in active if u != old)
    mine = [i for i, t in tasks.items() if t["owner"] == old and t["statusCode"] == "VALID"]
    job = workdir.path / "handover.toml"
    job.write_text(
        f'[job]\nname = "handover"\n[[operations]]\naction = "reassign-owner"\nto = "{new}"\n'
        f'where.owner = "{old}"\nwhere.status = "VALID"\n'
    )

    async def disable_and_rename() -> None:
        ops: list[dict[str, Any]] = [
            {"op": "replace", "path": "/enabled", "value": not tasks[mine[0]]["enabled"]},
            {"op": "replace", "path": "/name", "value": "renamed by someone"},
        ]
        await patch_task(demo_sim, mine[0], ops)

    code, records, counts = await plan_then(demo_sim, workdir, job, disable_and_rename)
    assert code == 0
    assert {r["outcome"] for r in records.values()} == {"applied"}
    after = await demo_sim.tasks()
    assert {after[i]["owner"] for i in mine} == {new}
    assert after[mine[0]]["name"] == "renamed by someone"
    assert counts["counts"] == {"applied": len(mine)}


# --- 429s: never a failed attempt, bounded by time ---------------------------------------------


def always_429(after: int | None = None) -> tuple[web.Application, list[int]]:
    """An app answering every PATCH 429 (Retry-After 0), or only the first `after` of them."""
    sent: list[int] = []

    async def patch(request: web.Request) -> web.Response:
        sent.append(1)
        if after is None or len(sent) <= after:
            body = {"errors": [{"code": "HTTP-429", "title": "API rate limit reached."}]}
            return web.json_response(body, status=429, headers={"Retry-After": "0"})
        return web.Response(status=204)

    app = web.Application()
    app.router.add_patch("/api/v1/sharing-tasks/{id}", patch)
    return app, sent


def client_for(url: str, clock: FakeClock, max_attempts: int) -> ApiClient:
    limits = {Tier.TIER1: 1000, Tier.TIER2: 100, Tier.USERS_FILTER: 200}
    budgets = TierBudgets.from_limits(limits, 300.0, clock=clock, sleep=clock.sleep)
    return ApiClient(
        url,
        ApiKeyAuth(TEST_KEY),
        budgets,
        max_attempts=max_attempts,
        clock=clock,
        sleep=clock.sleep,
    )


BODY = [{"op": "replace", "path": "/enabled", "value": False}]


async def test_429s_never_use_up_attempts() -> None:
    """Twenty 429s, then the answer: with max_attempts = 2 the write still lands."""
    app, sent = always_429(after=20)
    clock = FakeClock()
    async for url in served(app):
        async with client_for(url, clock, 2) as client:
            resp = await client.request("PATCH", "/v1/sharing-tasks/t1", json=BODY)
        assert resp.status == 204 and resp.attempts == 21 and len(sent) == 21
        assert client.throttled == 20


async def test_a_request_throttled_for_more_than_its_windows_gives_up() -> None:
    """Answered 429 for ever, a request fails only once its 429s span more than
    THROTTLE_WINDOWS windows of its tier (time on an injected clock: nothing waits)."""
    app, sent = always_429()
    clock = FakeClock()
    ticking = FakeClock()

    def tick() -> float:
        ticking.now += 60.0  # each look at the clock: a minute later
        return ticking.now

    async for url in served(app):
        limits = {Tier.TIER1: 1000, Tier.TIER2: 100, Tier.USERS_FILTER: 200}
        budgets = TierBudgets.from_limits(limits, 300.0, clock=clock, sleep=clock.sleep)
        client = ApiClient(
            url, ApiKeyAuth(TEST_KEY), budgets, max_attempts=2, clock=tick, sleep=clock.sleep
        )
        async with client:
            with pytest.raises(RequestFailed) as failed:
                await client.request("PATCH", "/v1/sharing-tasks/t1", json=BODY)
    limit = THROTTLE_WINDOWS * 300
    assert failed.value.status == 429
    assert f"rate limited (429) for more than {limit} s" in failed.value.reason
    # one look per 429 at a minute each: the first 429 starts the clock, 16 more pass 900 s
    assert len(sent) == limit // 60 + 2 > 2


async def test_a_429_storm_fails_no_change(tmp_path: Path) -> None:
    """Every write answered 429 four times (twice max_attempts) before the simulator sees it:
    `apply` exits 0 with every change applied, each task written once, the 429s counted."""
    tenant = SimTenant.seed(100, 3)
    async with (
        running_sim(tenant, SimConfig(api_key=TEST_KEY)) as sim_url,
        proxied(sim_url) as (url, proxy),
    ):
        refused: dict[str, int] = {}

        def storm(seen: Seen) -> web.Response | None:
            if seen.method != "PATCH":
                return None
            task_id = seen.path.rsplit("/", 1)[-1]
            refused[task_id] = refused.get(task_id, 0) + 1
            if refused[task_id] > 4:
                return None
            body = {"errors": [{"code": "HTTP-429", "title": "API rate limit reached."}]}
            return web.json_response(body, status=429, headers={"Retry-After": "0"})

        proxy.answer = storm
        config = tmp_path / "bulkshare.toml"
        config.write_text(
            f'state_dir = "state"\n[defaults]\nmax_attempts = 2\n[tenants.t]\nurl = "{url}"\n'
            f'api_key_env = "{TEST_KEY_ENV}"\n'
            "[tenants.t.limits]\ntier2_per_minute = 6000\nwindow_s = 10\n"
        )
        wd = Workdir(tmp_path, config, {**os.environ, TEST_KEY_ENV: TEST_KEY})
        result = await bulkshare(wd, "apply", str(ROOT / "jobs" / "disable-orphaned.toml"), "--yes")
        assert result.code == 0, result.err
        [run] = run_dirs(wd)
        records = change_records(run)
        assert records and {r["outcome"] for r in records.values()} == {"applied"}
        assert summary(run)["429s_seen"] == 4 * len(records)
        async with proxy.session.get(f"{sim_url}/__sim/stats") as resp:
            writes = task_writes(await resp.json())
        assert writes == dict.fromkeys(records, 1)
