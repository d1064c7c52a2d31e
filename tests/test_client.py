"""The client against the simulator: 429 + Retry-After, faults and in-doubt writes, OAuth."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from bulkshare import audit
from bulkshare.client import ApiClient, ApiKeyAuth, OAuthClientCredentials, Tier, TierBudgets
from bulkshare.client.failures import RequestRefused
from bulkshare.client.http import RequestFailed
from bulkshare.client.slots import Slots
from bulkshare.client.tenant import DEMO_SEED, DEMO_TASKS
from bulkshare.errors import TenantError
from bulkshare.job import Job, load_job
from bulkshare.plan import Plan, build_plan
from bulkshare.run import RunDir, RunMeta, Runner, RunOptions, Summary, new_run_id
from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.conftest import ROOT, TEST_KEY, Sim, fetch_json
from tests.test_e2e import expect_disable_orphaned, view
from tests.test_limits import FakeClock


def budgets(clock: FakeClock | None = None, tier2: int = 100, window: float = 300.0) -> TierBudgets:
    """Client budgets, on a fake clock when given one."""
    limits = {Tier.TIER1: 1000, Tier.TIER2: tier2, Tier.USERS_FILTER: 200}
    if clock is None:
        return TierBudgets.from_limits(limits, window)
    return TierBudgets.from_limits(limits, window, clock=clock, sleep=clock.sleep)


async def test_429_pauses_the_tier_until_retry_after() -> None:
    """A client that overspends gets 429s, waits Retry-After, and every write lands."""
    clock = FakeClock()
    tenant = SimTenant.seed(50, 1)
    ids = list(tenant.tasks)[:12]
    sim_config = SimConfig(tier2_per_minute=60, window_s=5.0, api_key=TEST_KEY)
    async with running_sim(tenant, sim_config, clock=clock) as url:
        # the client believes in a far bigger budget than the server gives
        client = ApiClient(
            url,
            ApiKeyAuth(TEST_KEY),
            budgets(clock, tier2=6000, window=5.0),
            concurrency=3,
            max_attempts=20,
            sleep=clock.sleep,
        )
        start = clock.now
        async with client:
            results = await asyncio.gather(
                *[
                    client.request(
                        "PATCH",
                        f"/v1/sharing-tasks/{i}",
                        json=[{"op": "replace", "path": "/tags", "value": ["x"]}],
                    )
                    for i in ids
                ]
            )
            read = await client.request("GET", "/v1/sharing-tasks", params={"limit": 1})
        assert [r.status for r in results] == [204] * 12
        assert read.status == 200  # tier 1 was never blocked
        assert client.throttled >= 1
        # 12 writes at 5 per 5 s window need at least two more windows
        assert clock.now - start >= 10.0
        stats = await fetch_json(f"{url}/__sim/stats")
    assert stats["throttled"] == client.throttled
    assert stats["writes"] == 12


@dataclass
class FaultyRun:
    """What a job run against a faulty simulator left behind."""

    plan: Plan
    run_dir: RunDir
    summary: Summary
    records: list[dict[str, Any]]


async def no_wait(_: float) -> None:
    """Backoff without waiting, so retries cost no test time."""
    await asyncio.sleep(0)


async def run_under_faults(
    tenant: SimTenant, job: Job, fault_rate: float, seed: int, tmp_path: Path
) -> FaultyRun:
    """Plan and run `job` in-process against `tenant` served with write faults."""
    config = SimConfig(api_key=TEST_KEY, fault_rate=fault_rate, seed=seed)
    async with running_sim(tenant, config) as url:
        client = ApiClient(
            url,
            ApiKeyAuth(TEST_KEY),
            budgets(),
            concurrency=8,
            max_attempts=10,
            sleep=no_wait,
            rng=random.Random(seed),
        )
        async with client:
            plan = await build_plan(client, job, "t")
            run_dir = RunDir.create(tmp_path, new_run_id(job.name, "t"))
            plan.write(run_dir.plan)
            run_dir.write_meta(RunMeta(run_dir.run_id, "t", job.name, audit.utc_now()))
            summary = await Runner(run_dir, plan, client, RunOptions(concurrency=8)).run()
    assert audit.verify(run_dir.audit).ok
    records = [r for r in audit.read_records(run_dir.audit) if r["event"] == "change"]
    return FaultyRun(plan, run_dir, summary, records)


async def test_faults_are_retried_and_in_doubt_writes_settled(tmp_path: Path) -> None:
    """Against 503s, 500s after applying and dropped connections, the final state is exact."""
    tenant = SimTenant.seed(DEMO_TASKS, DEMO_SEED)
    before = {t["id"]: t for t in tenant.to_document()["sharingTasks"]}
    job = load_job(ROOT / "jobs" / "disable-orphaned.toml")
    run = await run_under_faults(tenant, job, 0.3, 5, tmp_path)
    after = {t["id"]: t for t in tenant.to_document()["sharingTasks"]}
    assert run.summary.exit_code == 0, run.summary.counts
    assert run.summary.counts == {"applied": len(run.plan.changes)}
    assert view(after) == view(expect_disable_orphaned(before, []))
    assert any(r.get("settled_by_read") for r in run.records), "some write was in doubt"


async def test_oauth_client_credentials() -> None:
    """An OAuth client gets a token, uses it, and a wrong secret is refused as TenantError."""
    tenant = SimTenant.seed(20, 1)
    config = SimConfig(client_id="cron", client_secret="s3cr3t-value")
    async with running_sim(tenant, config) as url:
        auth = OAuthClientCredentials("cron", "s3cr3t-value", post=_unbound)
        async with ApiClient(url, auth, budgets()) as client:
            resp = await client.request("GET", "/v1/sharing-tasks", params={"limit": 5})
            assert resp.status == 200
        bad = OAuthClientCredentials("cron", "wrong", post=_unbound)
        async with ApiClient(url, bad, budgets()) as client:
            with pytest.raises(TenantError) as info:
                await client.request("GET", "/v1/sharing-tasks")
        assert "wrong" not in str(info.value) and "s3cr3t" not in str(info.value)


async def _unbound(_: object) -> tuple[int, object]:
    raise AssertionError("the client binds the token poster")


async def test_next_link_to_another_host_is_refused(demo_sim: Sim) -> None:
    """The client never follows a paging link to another origin with our token."""
    async with ApiClient(demo_sim.url, ApiKeyAuth(TEST_KEY), budgets()) as client:
        with pytest.raises(RequestFailed, match="points elsewhere"):
            await client.follow("http://127.0.0.2:9/api/v1/sharing-tasks", "/v1/sharing-tasks")


async def test_oauth_token_refreshed_before_expiry_and_on_401() -> None:
    """A token is reused, fetched anew before expires_at, and once more after a 401."""
    sim_clock = FakeClock()
    tenant = SimTenant.seed(20, 1)
    config = SimConfig(client_id="cron", client_secret="s3cr3t-value", token_ttl_s=600)
    wall = FakeClock()
    wall.now = time.time()
    async with running_sim(tenant, config, clock=sim_clock) as url:
        auth = OAuthClientCredentials("cron", "s3cr3t-value", post=_unbound, clock=wall)
        async with ApiClient(url, auth, budgets()) as client:
            for _ in range(3):
                assert (await client.request("GET", "/v1/sharing-tasks")).status == 200
            assert auth.fetches == 1
            wall.now += 550  # within 10 % of the 600 s life: refresh before it runs out
            assert (await client.request("GET", "/v1/sharing-tasks")).status == 200
            assert auth.fetches == 2
            sim_clock.now += 10_000  # the server expires every token early
            assert (await client.request("GET", "/v1/sharing-tasks")).status == 200
            assert auth.fetches == 3


async def test_in_doubt_execute_is_not_run_twice(tmp_path: Path) -> None:
    """Executes under faults are settled by the latest execution: each task runs exactly once."""
    tenant = SimTenant.seed(60, 4)
    job_file = tmp_path / "run-now.toml"
    job_file.write_text(
        '[job]\nname = "run-now"\n[[operations]]\naction = "execute"\n'
        'where.type = "sheet-sharing"\n'
    )
    counts_before = {i: len(tenant.task_executions(i)) for i in tenant.tasks}
    run = await run_under_faults(tenant, load_job(job_file), 0.5, 9, tmp_path)
    executed = {c.task_id for c in run.plan.changes}
    assert executed and run.summary.exit_code == 0, run.summary.counts
    for task_id in tenant.tasks:
        extra = len(tenant.task_executions(task_id)) - counts_before[task_id]
        assert extra == (1 if task_id in executed else 0), task_id
    assert any(r.get("settled_by_read") for r in run.records), "some execute was in doubt"


async def test_in_doubt_deletes_settle_as_done(tmp_path: Path) -> None:
    """Deletes under faults end with every DELETING task gone and every outcome a success."""
    tenant = SimTenant.seed(DEMO_TASKS, DEMO_SEED)
    doomed = {i for i, t in tenant.tasks.items() if t.get("statusCode") == "DELETING"}
    job = load_job(ROOT / "jobs" / "purge-deleting.toml")
    run = await run_under_faults(tenant, job, 0.4, 11, tmp_path)
    assert run.summary.exit_code == 0, run.summary.counts
    assert not doomed & set(tenant.tasks)
    assert {c.task_id for c in run.plan.changes} == doomed
    assert {r["outcome"] for r in run.records} <= {"applied", "absent"}
    assert any(r.get("settled_by_read") for r in run.records), "some delete was in doubt"


def test_paths_are_joined_under_api_encoded_and_never_climb_out() -> None:
    """A plain path is joined as it is, another is percent-encoded, a dot-segment is refused."""
    client = ApiClient("http://127.0.0.1:8080/", ApiKeyAuth(TEST_KEY), budgets())
    for path in ("/v1/sharing-tasks/6a1b2c3d", "/v1/sharing-tasks/a-b_c~d.e/actions/execute"):
        url = client._url(path)
        assert url == URL("http://127.0.0.1:8080/api" + path)
        assert url.raw_path == "/api" + path
    for path, raw in (
        ("/v1/sharing-tasks/a b", "/api/v1/sharing-tasks/a%20b"),
        ("/v1/users/é", "/api/v1/users/%C3%A9"),
        ("/v1/sharing-tasks/a%2Fb", "/api/v1/sharing-tasks/a%2Fb"),  # an encoded id stays so
        ("/v1//x", "/api/v1//x"),
    ):
        url = client._url(path)
        assert (url.origin(), url.raw_path) == (URL("http://127.0.0.1:8080"), raw), path
    for path in (
        "/v1/sharing-tasks/../x",
        "/v1/sharing-tasks/%2e%2E/x",
        "/v1/sharing-tasks/.",
        "/v1/sharing-tasks/a?b",
        "/v1/sharing-tasks/a#b",
        "/v1/sharing-tasks/a\\b",
        "/v1/sharing-tasks/a%zzb",
        "/v1/sharing-tasks/a\nb",
        "v1/sharing-tasks",
    ):
        with pytest.raises(RequestRefused, match="refused before sending"):
            client._url(path)


async def test_request_slots_are_bounded_first_come_and_survive_cancellation() -> None:
    """At most n requests at once, waiters served in order, a cancelled waiter loses no slot."""
    slots = Slots(2)
    order: list[int] = []
    running = 0
    gate = asyncio.Event()

    async def request(n: int) -> None:
        nonlocal running
        await slots.acquire()
        try:
            running += 1
            assert running <= 2
            order.append(n)
            await gate.wait()
        finally:
            running -= 1
            slots.release()

    tasks = [asyncio.create_task(request(n)) for n in range(6)]
    await asyncio.sleep(0)
    tasks[3].cancel()  # waiting for a slot when cancelled
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert order == [0, 1, 2, 4, 5]
    assert isinstance(results[3], asyncio.CancelledError)
    await slots.acquire()
    await slots.acquire()  # both slots are free again


async def test_a_slot_handed_to_a_cancelled_waiter_is_passed_on() -> None:
    """A waiter cancelled just after a slot was handed to it gives the slot back."""
    slots = Slots(1)
    await slots.acquire()
    waiter = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # hands the slot to the waiter ...
    waiter.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.wait_for(slots.acquire(), 1.0)
