"""Stopping a run part-way and resuming it: nothing done twice, nothing lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bulkshare import audit
from bulkshare.client import ApiClient, ApiKeyAuth, Tier, TierBudgets
from bulkshare.errors import DryRunViolation, InterruptedRun
from bulkshare.job import load_job
from bulkshare.plan import build_plan
from bulkshare.run import RunDir, RunMeta, Runner, RunOptions, new_run_id
from bulkshare.run.checkpoint import Checkpoint
from tests.conftest import ROOT, TEST_KEY, Sim, Workdir, bulkshare
from tests.test_e2e import expect_disable_orphaned, view


def make_client(url: str, *, read_only: bool = False) -> ApiClient:
    """A client with generous budgets, as the CLI builds one."""
    budgets = TierBudgets.from_limits(
        {Tier.TIER1: 1000, Tier.TIER2: 100, Tier.USERS_FILTER: 200}, 300.0
    )
    return ApiClient(url, ApiKeyAuth(TEST_KEY), budgets, concurrency=4, read_only=read_only)


async def test_dry_run_client_refuses_writes(demo_sim: Sim) -> None:
    """A read-only client raises on a write before anything reaches the server."""
    await demo_sim.reset_stats()
    async with make_client(demo_sim.url, read_only=True) as client:
        for method in ("PATCH", "DELETE", "POST", "PUT"):
            with pytest.raises(DryRunViolation):
                await client.request(method, "/v1/sharing-tasks/x", json=[])
        resp = await client.request("GET", "/v1/sharing-tasks", params={"limit": 1})
        assert resp.status == 200
    stats = await demo_sim.stats()
    assert stats["writes"] == 0 and stats["requests"] == 1


async def test_stop_then_resume(demo_sim: Sim, workdir: Workdir) -> None:
    """A runner stopped after some writes raises InterruptedRun; `resume` finishes exactly."""
    before = await demo_sim.tasks()
    job = load_job(ROOT / "jobs" / "disable-orphaned.toml")
    await demo_sim.reset_stats()
    async with make_client(demo_sim.url) as client:
        plan = await build_plan(client, job, "t")
        assert len(plan.changes) > 10
        run_dir = RunDir.create(workdir.state, new_run_id(job.name, "t"))
        plan.write(run_dir.plan)
        run_dir.write_meta(RunMeta(run_dir.run_id, "t", job.name, audit.utc_now(), verify=True))
        stop = asyncio.Event()
        seen: list[dict[str, Any]] = []

        def on_record(record: dict[str, Any]) -> None:
            seen.append(record)
            if len(seen) == 5:
                stop.set()

        runner = Runner(
            run_dir, plan, client, RunOptions(concurrency=4), stop=stop, on_record=on_record
        )
        with pytest.raises(InterruptedRun):
            await runner.run()
    written = (await demo_sim.stats())["writes"]
    assert 5 <= written < len(plan.changes)

    result = await bulkshare(workdir, "resume", run_dir.run_id)
    assert result.code == 0, result.err
    assert view(await demo_sim.tasks()) == view(expect_disable_orphaned(before, []))
    per_task = (await demo_sim.stats())["writes_per_task"]
    assert set(per_task.values()) == {1}
    assert len(per_task) == len(plan.changes)
    assert audit.verify(run_dir.audit).ok
    changes = [r for r in audit.read_records(run_dir.audit) if r["event"] == "change"]
    assert sorted(r["index"] for r in changes) == list(range(len(plan.changes)))
    again = await bulkshare(workdir, "resume", run_dir.run_id)
    assert again.code == 0


async def test_resume_unknown_run(workdir: Workdir) -> None:
    """Resuming a run id that does not exist is a usage error."""
    result = await bulkshare(workdir, "resume", "no-such-run")
    assert result.code == 2
    assert "no run 'no-such-run'" in result.err


async def test_armed_unrecorded_patches_are_settled_by_reading(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """PATCHes a dead process sent but never recorded are found applied by reading, not resent."""
    job = load_job(ROOT / "jobs" / "disable-orphaned.toml")
    async with make_client(demo_sim.url) as client:
        plan = await build_plan(client, job, "t")
    run_dir = RunDir.create(workdir.state, new_run_id(job.name, "t"))
    plan.write(run_dir.plan)
    run_dir.write_meta(RunMeta(run_dir.run_id, "t", job.name, audit.utc_now(), pid=1))
    checkpoint = Checkpoint(run_dir.checkpoint)
    checkpoint.arm(list(range(len(plan.changes))))
    checkpoint.close()
    landed = plan.changes[:3]
    headers = {"Authorization": f"Bearer {TEST_KEY}"}
    for change in landed:  # what reached the service before the process died
        url = f"{demo_sim.url}/api{change.path}"
        async with demo_sim.session.patch(url, json=change.body, headers=headers) as resp:
            assert resp.status == 204
    await demo_sim.reset_stats()
    resumed = await bulkshare(workdir, "resume", "last")
    assert resumed.code == 0, resumed.err
    per_task = (await demo_sim.stats())["writes_per_task"]
    assert per_task == {c.task_id: 1 for c in plan.changes[3:]}
    found = {r["index"]: r for r in audit.read_records(run_dir.audit) if r["event"] == "change"}
    assert sorted(found) == list(range(len(plan.changes)))
    assert {i for i, r in found.items() if r.get("settled_by_read")} == {0, 1, 2}
    assert all(r["outcome"] == "applied" for r in found.values())
