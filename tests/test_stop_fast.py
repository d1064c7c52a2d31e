"""Stopping fast: on the first signal, requests still waiting for rate budget are dropped (never
sent, still planned), requests already on the wire finish and are recorded, resume does the rest.

Budget waits here are real (a 300 s window, one the tests never wait out: only the stop ends
them). Writes can be held at a gate in front of the simulator, so that a request "on the wire"
is a state a test sets up, not a race it hopes to win.
"""

from __future__ import annotations

import asyncio
import io
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from bulkshare import audit
from bulkshare.client import ApiClient, ApiKeyAuth, Tier, TierBudgets, WindowBudget
from bulkshare.client.budget import Halt, RequestDropped
from bulkshare.client.tenant import DEMO_SEED, DEMO_TASKS
from bulkshare.commands import Output
from bulkshare.commands.scope import Stop
from bulkshare.errors import InterruptedRun
from bulkshare.job import load_job
from bulkshare.plan import Plan, build_plan
from bulkshare.run import RunDir, RunMeta, Runner, RunOptions, RunState, new_run_id
from bulkshare.run.checkpoint import Checkpoint
from bulkshare.sim import SimTenant
from tests.conftest import ROOT, TEST_KEY, Sim, Workdir
from tests.gate import WRITES, Gate, gated_sim, until
from tests.test_crash_signals import (
    change_records,
    job_file,
    resume_and_check,
    run_dir,
    wait_for,
)
from tests.test_resume import make_client

WINDOW_S = 300.0
EXECUTE_JOB = (
    '[job]\nname = "run-reports"\n[[operations]]\naction = "execute"\n'
    'where.type = "template-sharing"\nwhere.enabled = true\n'
)


async def sleep_forever(_: float) -> None:
    """A budget's sleep that only a cancellation ends: a window never waited out."""
    await asyncio.Event().wait()


# --- the halt, on a budget of its own -----------------------------------------------------


async def test_halt_drops_a_wait_for_budget_and_leaves_the_budget_whole() -> None:
    """A wait for a full window ends with RequestDropped at the halt; the budget still works."""
    now = [1000.0]
    budget = WindowBudget(1, WINDOW_S, clock=lambda: now[0], sleep=sleep_forever)
    halt = Halt()
    first = await budget.acquire()
    waiting = asyncio.create_task(budget.acquire(halt))
    await until(lambda: halt.waiting == 1, "a wait for budget")
    halt.set()
    with pytest.raises(RequestDropped):
        await waiting
    assert halt.waiting == 0
    budget.release(first)
    now[0] += WINDOW_S
    async with asyncio.timeout(5):  # a guard against a hang, not a measure of time
        assert await budget.acquire() is not None


async def test_halt_set_before_a_wait_takes_no_budget() -> None:
    """Once halted, a request is dropped before it asks the budget: no slot is spent on it."""
    budget = WindowBudget(1, WINDOW_S, sleep=sleep_forever)
    halt = Halt()
    halt.set()
    with pytest.raises(RequestDropped):
        await budget.acquire(halt)
    async with asyncio.timeout(5):
        assert await budget.acquire() is not None  # the one slot is still free


async def test_a_cancelled_task_is_not_taken_for_a_drop() -> None:
    """Cancelling the task around a wait (a forced stop) still cancels it: no RequestDropped."""
    budget = WindowBudget(1, WINDOW_S, sleep=sleep_forever)
    await budget.acquire()
    halt = Halt()
    waiting = asyncio.create_task(budget.acquire(halt))
    await until(lambda: halt.waiting == 1, "a wait for budget")
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert halt.waiting == 0 and not halt.is_set()


# --- the client, against a simulator with a gate ------------------------------------------


def saturated_client(url: str, tier2: int, concurrency: int = 4) -> ApiClient:
    """A client whose Tier 2 allows `tier2` writes per 300 s window, the reads plenty."""
    budgets = TierBudgets(
        {
            Tier.TIER1: WindowBudget(5000, WINDOW_S, tier="tier1"),
            Tier.TIER2: WindowBudget(tier2, WINDOW_S, tier="tier2"),
            Tier.USERS_FILTER: WindowBudget(1000, WINDOW_S, tier="users-filter"),
        }
    )
    return ApiClient(url, ApiKeyAuth(TEST_KEY), budgets, concurrency=concurrency)


async def test_a_request_on_the_wire_finishes_after_the_halt() -> None:
    """A write already sent is answered and returned after the halt; the next one is not sent."""
    tenant = SimTenant.seed(DEMO_TASKS, DEMO_SEED)
    gate = Gate()
    gate.close()
    task_id = next(iter(tenant.tasks))
    async with gated_sim(tenant, gate) as (url, sim), saturated_client(url, 10) as client:
        patch = [{"op": "replace", "path": "/description", "value": "on the wire"}]
        sent = asyncio.create_task(
            client.request("PATCH", f"/v1/sharing-tasks/{task_id}", json=patch)
        )
        await until(lambda: gate.held == 1, "the PATCH at the server")
        client.halt.set()
        gate.opened.set()
        assert (await sent).status == 204
        with pytest.raises(RequestDropped):
            await client.request("PATCH", f"/v1/sharing-tasks/{task_id}", json=patch)
        assert sim.stats.writes == 1
    assert tenant.tasks[task_id]["description"] == "on the wire"


def new_run(state: Any, plan: Plan) -> RunDir:
    """A run directory for `plan`, as `apply` leaves it before its first request."""
    run = RunDir.create(state, new_run_id(plan.job_name, plan.tenant))
    plan.write(run.plan)
    run.write_meta(RunMeta(run.run_id, plan.tenant, plan.job_name, audit.utc_now()))
    return run


def recorded(run: RunDir) -> dict[str, str]:
    """Task id -> outcome of every change record of the run."""
    return {r.task_id: r.outcome.value for r in run.changes()}


@dataclass
class Stopped:
    """What a stopped run left: its directory, plan, the tasks written, the requests sent."""

    run: RunDir
    plan: Plan
    written: Counter[str]
    sent_at_stop: int
    sent_at_end: int


async def stop_a_saturated_run(
    tmp_path: Any, tenant: SimTenant, job_text: str, *, on_the_wire: bool
) -> Stopped:
    """Run a job with two writes per window and four workers; stop it once two workers wait
    for budget, with the window's two writes still held on the wire or already answered."""
    job_path = tmp_path / "job.toml"
    job_path.write_text(job_text)
    gate = Gate()
    if on_the_wire:
        gate.close()
    async with gated_sim(tenant, gate) as (url, sim):
        async with make_client(url) as reader:
            plan = await build_plan(reader, load_job(job_path), "t")
        assert len(plan.changes) > 6
        run = new_run(tmp_path / "state", plan)
        async with saturated_client(url, tier2=2) as client:
            stop = Stop(Output(out=io.StringIO(), err=io.StringIO()))
            client.halt = stop.halt
            runner = Runner(run, plan, client, RunOptions(concurrency=4), stop=stop.event)
            stop.running = 1
            going = asyncio.create_task(runner.run())

            def two_wait() -> bool:
                answered = runner.recorded == 2 and sim.stats.writes == 2
                return client.halt.waiting == 2 and (gate.held == 2 if on_the_wire else answered)

            await until(two_wait, "two writes sent and two requests waiting for budget")
            sent_at_stop = client.requests_sent
            stop()  # the first signal
            gate.opened.set()
            with pytest.raises(InterruptedRun):
                await going
            written = Counter(sim.stats.writes_per_task)
            return Stopped(run, plan, written, sent_at_stop, client.requests_sent)


async def resume_in_process(stopped: Stopped, tenant: SimTenant) -> dict[str, int]:
    """Resume the run with a generous client; the writes each task got from the resume."""
    async with gated_sim(tenant, Gate()) as (url, sim), make_client(url) as client:
        summary = await Runner(stopped.run, stopped.plan, client, RunOptions()).run()
        assert summary.exit_code == 0, summary
        return dict(sim.stats.writes_per_task)


@pytest.mark.parametrize("on_the_wire", [True, False], ids=["writes-on-the-wire", "answered"])
async def test_stop_drops_what_waits_for_budget_and_records_what_was_sent(
    tmp_path: Any, on_the_wire: bool
) -> None:
    """Stopped with the window spent: nothing more is sent, the two writes sent are recorded
    applied, the rest stay planned (no record); resume writes each of them once."""
    tenant = SimTenant.seed(DEMO_TASKS, DEMO_SEED)
    job = (ROOT / "jobs" / "disable-orphaned.toml").read_text()
    stopped = await stop_a_saturated_run(tmp_path, tenant, job, on_the_wire=on_the_wire)
    assert stopped.sent_at_end == stopped.sent_at_stop, "a request was sent after the stop"
    outcomes = recorded(stopped.run)
    assert outcomes == dict.fromkeys(stopped.written, "applied")
    assert sum(stopped.written.values()) == 2
    assert stopped.run.meta().state is RunState.INTERRUPTED
    planned = {c.task_id for c in stopped.plan.changes}
    assert all(tenant.tasks[t]["enabled"] is (t not in outcomes) for t in planned)

    resumed = await resume_in_process(stopped, tenant)
    assert resumed == dict.fromkeys(planned - set(outcomes), 1), "each left once, none again"
    assert set(recorded(stopped.run)) == planned
    assert not any(tenant.tasks[t]["enabled"] for t in planned)


async def test_dropped_executes_are_sent_once_on_resume(tmp_path: Any) -> None:
    """Executes dropped at the stop are armed but unrecorded; resume settles them by the
    task's executions (none since the arm), sends each once, and never repeats the two sent."""
    tenant = SimTenant.seed(DEMO_TASKS, DEMO_SEED)
    stopped = await stop_a_saturated_run(tmp_path, tenant, EXECUTE_JOB, on_the_wire=True)
    planned = [c.task_id for c in stopped.plan.changes]
    executed = {t for t in planned if tenant.executions.get(t)}
    assert len(executed) == 2 and set(recorded(stopped.run)) == executed
    checkpoint = Checkpoint(stopped.run.checkpoint)
    armed = {stopped.plan.changes[i].task_id for i in checkpoint.armed()}
    checkpoint.close()
    assert len(armed - executed) >= 2, "the dropped executes were armed before their wait"

    await resume_in_process(stopped, tenant)
    assert {t: len(tenant.executions.get(t, [])) for t in planned} == dict.fromkeys(planned, 1)
    assert set(recorded(stopped.run)) == set(planned)


# --- the command, stopped by SIGTERM -------------------------------------------------------


async def start(wd: Workdir, *args: str) -> asyncio.subprocess.Process:
    """`python -m bulkshare ARGS --config <wd>` started, not awaited."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bulkshare", *args, "--config", str(wd.config),
        cwd=wd.path, env=wd.env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def writes_in(timeline: list[list[Any]]) -> int:
    """The writes a stretch of the simulator's timeline holds."""
    return sum(
        1 for _, method, path, _ in timeline if method in WRITES and "/sharing-tasks" in path
    )


async def test_sigterm_in_a_saturated_300s_window_exits_130_and_resumes_exactly(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """SIGTERM with Tier 2 spent for a 300 s window: exit 130 (not after the window), nothing
    sent after the signal but what was in flight, and resume finishes with each task written once.
    """
    before = await demo_sim.tasks()
    plain = workdir.config.read_text()
    # 1 write a minute over 300 s: five writes, then every write waits out the window
    workdir.config.write_text(plain + "[tenants.t.limits]\ntier2_per_minute = 1\nwindow_s = 300\n")
    await demo_sim.reset_stats()
    proc = await start(workdir, "apply", str(job_file(workdir)), "--yes", "--concurrency", "4")

    def window_spent() -> bool:
        run = run_dir(workdir)
        return run is not None and len(change_records(run)) == 5

    await wait_for(proc, window_spent, "the window's five writes recorded")
    seen = len((await demo_sim.stats())["timeline"])
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):  # a guard against waiting out the window, not a measure
        _, err = await proc.communicate()
    assert proc.returncode == 130, err.decode()
    assert "requests not yet sent are dropped" in err.decode()
    timeline = (await demo_sim.stats())["timeline"]
    assert writes_in(timeline[seen:]) == 0, "a write was sent after the signal"
    assert len(timeline[seen:]) <= 4, "more than the requests in flight went out"
    run = run_dir(workdir)
    assert run is not None
    assert writes_in(timeline) == len(change_records(run)) == 5
    assert orjson.loads((run / "run.json").read_bytes())["state"] == "interrupted"

    workdir.config.write_text(plain)
    await resume_and_check(demo_sim, workdir, run, before)
