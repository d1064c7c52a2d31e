"""Never twice: an execute or cancel armed but unrecorded when its process died is settled by
reading the task's executions before anything is resent, and so is one this process sent
without an answer.

A dead process is reproduced exactly as it leaves its run directory: plan.json, run.json saying
running, a checkpoint with the changes armed, an audit log with its run-start, and, on the
simulator, the requests that landed before it died (sent here directly).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bulkshare import audit
from bulkshare.client.tenant import DEMO_SEED, DEMO_TASKS
from bulkshare.job import load_job
from bulkshare.plan import Change, Plan, build_plan
from bulkshare.run import Outcome, RunDir, RunMeta, RunState, new_run_id
from bulkshare.run.checkpoint import Checkpoint
from bulkshare.run.judge import CLOCK_SKEW_S, settle_post
from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.conftest import TEST_KEY, TEST_KEY_ENV, Sim, Workdir, bulkshare
from tests.test_resume import make_client

EXECUTE_JOB = (
    '[job]\nname = "run-reports"\n[[operations]]\naction = "execute"\n'
    'where.type = "template-sharing"\nwhere.enabled = true\n'
)
CANCEL_JOB = (
    '[job]\nname = "stop-reports"\n[[operations]]\naction = "cancel"\n'
    'where.type = "template-sharing"\nwhere.enabled = true\n'
)
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


def iso(at: float) -> str:
    """Epoch seconds as the service writes times."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"


# --- the rule, on its own -----------------------------------------------------------------

EXECUTE = Change("t1", ("execute",), "POST", "/v1/sharing-tasks/actions/execute", {}, {}, {})
CANCEL = Change("t1", ("cancel",), "POST", "/v1/sharing-tasks/t1/actions/cancel", None, {}, {})


@pytest.mark.parametrize(
    ("started", "verdict"),
    [
        (1000.0, Outcome.APPLIED),  # started after the arm
        (1000.0 - CLOCK_SKEW_S + 0.5, Outcome.APPLIED),  # the service's clock a little behind
        (1000.0 - CLOCK_SKEW_S - 60, None),  # a run from before: ours did not land
        (None, None),  # never ran
    ],
)
def test_execute_settled_by_its_start_time(started: float | None, verdict: Outcome | None) -> None:
    """An execute landed if an execution started at or after its arm time, less the skew."""
    runs = (
        [] if started is None else [{"id": "e1", "status": "successful", "startTime": iso(started)}]
    )
    assert settle_post(EXECUTE, {"id": "t1"}, runs, 1000.0) is verdict


def test_execute_settled_by_last_run() -> None:
    """The task's own lastRun counts too, and unreadable times count for nothing."""
    assert settle_post(EXECUTE, {"lastRun": iso(1001.0)}, [], 1000.0) is Outcome.APPLIED
    runs = [{"startTime": "not a time"}, {"startTime": 12}, "junk"]
    assert settle_post(EXECUTE, {"lastRun": "9999-99-99"}, runs, 1000.0) is None


@pytest.mark.parametrize(
    ("task", "runs", "verdict"),
    [
        ({}, [{"status": "cancelled", "cancelledTime": iso(1002.0)}], Outcome.APPLIED),
        ({}, [{"status": "cancelling"}], Outcome.APPLIED),
        ({"statusCode": "CANCELLING"}, [], Outcome.APPLIED),
        ({}, [{"status": "in-progress", "startTime": iso(900.0)}], None),
        # cancelled long ago, and one running now: ours did not land, send it
        (
            {},
            [
                {"status": "in-progress", "startTime": iso(990.0)},
                {"status": "cancelled", "cancelledTime": iso(100.0)},
            ],
            None,
        ),
        ({}, [{"status": "successful", "startTime": iso(900.0)}], Outcome.SKIPPED),
        ({}, [], Outcome.SKIPPED),
    ],
)
def test_cancel_rule(task: dict[str, Any], runs: list[Any], verdict: Outcome | None) -> None:
    """A cancel landed if something was cancelled since; else it is sent only if a run goes on."""
    assert settle_post(CANCEL, task, runs, 1000.0) is verdict


# --- a dead process, resumed --------------------------------------------------------------


@pytest.fixture
def tenant() -> SimTenant:
    """The demo tenant, held here so a test can give tasks executions of its own."""
    return SimTenant.seed(DEMO_TASKS, DEMO_SEED)


@pytest.fixture
async def demo_sim(tenant: SimTenant) -> AsyncIterator[Sim]:
    """The demo tenant on a loopback port (overrides conftest's, for `workdir`)."""
    async with (
        running_sim(tenant, SimConfig(api_key=TEST_KEY)) as url,
        aiohttp.ClientSession() as session,
    ):
        yield Sim(url, session)


async def dead_run(sim: Sim, wd: Workdir, job_text: str) -> tuple[RunDir, Plan, float]:
    """The run directory a process killed right after arming every change leaves behind."""
    job_path = wd.path / "job.toml"
    job_path.write_text(job_text)
    job = load_job(job_path)
    async with make_client(sim.url) as client:
        plan = await build_plan(client, job, "t")
    assert len(plan.changes) >= 6
    run_dir = RunDir.create(wd.state, new_run_id(job.name, "t"))
    plan.write(run_dir.plan)
    meta = RunMeta(run_dir.run_id, "t", job.name, audit.utc_now(), RunState.RUNNING, pid=1)
    run_dir.write_meta(meta)
    log = audit.AuditLog(run_dir.audit, run_dir.run_id, "t", job.name)
    log.append("run-start", resumed=False, planned=len(plan.changes))
    log.close()
    checkpoint = Checkpoint(run_dir.checkpoint)
    checkpoint.arm(list(range(len(plan.changes))))
    armed_at = min(checkpoint.armed().values())
    checkpoint.close()
    return run_dir, plan, armed_at


def execution(task_id: str, status: str, started: float) -> dict[str, Any]:
    """An execution of a task, as the service lists one."""
    return {
        "id": f"e-{task_id}-{started:.0f}",
        "sharingTaskID": task_id,
        "status": status,
        "startTime": iso(started),
    }


async def post(sim: Sim, path: str, body: Any = None) -> None:
    """Send one action as the dead process did, before it died."""
    async with sim.session.post(f"{sim.url}/api{path}", json=body, headers=AUTH) as resp:
        assert resp.status == 204, await resp.text()


def posts(stats: dict[str, Any], suffix: str) -> Counter[str]:
    """POSTs the simulator answered, per path ending in `suffix`."""
    return Counter(p for _, m, p, _ in stats["timeline"] if m == "POST" and p.endswith(suffix))


def records(run_dir: RunDir) -> dict[str, dict[str, Any]]:
    """The run's change records by task id."""
    return {r["task_id"]: r for r in audit.read_records(run_dir.audit) if r["event"] == "change"}


async def test_resume_never_executes_twice(
    demo_sim: Sim, workdir: Workdir, tenant: SimTenant
) -> None:
    """Executes that landed before the kill are recorded applied by read; the rest run once."""
    run_dir, plan, armed_at = await dead_run(demo_sim, workdir, EXECUTE_JOB)
    ids = [c.task_id for c in plan.changes]
    landed, old = ids[:3], ids[3]
    for task_id in landed:
        await post(demo_sim, "/v1/sharing-tasks/actions/execute", {"sharingTaskID": task_id})
    # a run of the schedule an hour before the arm is not ours
    tenant.executions[old] = [execution(old, "successful", armed_at - 3600)]
    await demo_sim.reset_stats()

    resumed = await bulkshare(workdir, "resume", run_dir.run_id)
    assert resumed.code == 0, resumed.err
    counts = {t: len(tenant.executions.get(t, [])) for t in ids}
    assert counts == {t: 2 if t == old else 1 for t in ids}
    assert posts(await demo_sim.stats(), "/actions/execute").total() == len(ids) - len(landed)
    found = records(run_dir)
    assert all(found[t]["outcome"] == "applied" for t in ids)
    assert {t for t in ids if found[t].get("settled_by_read")} == set(landed)


async def test_resume_never_cancels_twice(
    demo_sim: Sim, workdir: Workdir, tenant: SimTenant
) -> None:
    """A cancel that landed is not resent, a running task is cancelled once, an idle one skipped."""
    job_path = workdir.path / "job.toml"
    job_path.write_text(CANCEL_JOB)
    async with make_client(demo_sim.url) as client:
        ids = [c.task_id for c in (await build_plan(client, load_job(job_path), "t")).changes]
    landed, running, idle = ids[:2], ids[2:4], ids[4:]
    for task_id in landed + running:
        tenant.executions[task_id] = [execution(task_id, "in-progress", time.time() - 60)]
    run_dir, _, _ = await dead_run(demo_sim, workdir, CANCEL_JOB)
    for task_id in landed:
        await post(demo_sim, f"/v1/sharing-tasks/{task_id}/actions/cancel")
    await demo_sim.reset_stats()

    resumed = await bulkshare(workdir, "resume", run_dir.run_id)
    assert resumed.code == 0, resumed.err
    sent = posts(await demo_sim.stats(), "/actions/cancel")
    assert sent == Counter({f"/api/v1/sharing-tasks/{t}/actions/cancel": 1 for t in running})
    assert all(tenant.executions[t][0]["status"] == "cancelled" for t in landed + running)
    found = records(run_dir)
    assert {t: found[t]["outcome"] for t in ids} == {
        **dict.fromkeys(landed + running, "applied"),
        **dict.fromkeys(idle, "skipped"),
    }
    assert {t for t in ids if found[t].get("settled_by_read")} == set(landed)


async def test_unsettled_execute_is_failed_not_resent(
    demo_sim: Sim, workdir: Workdir, tenant: SimTenant
) -> None:
    """An execute whose executions cannot be read is recorded failed, never sent blind."""
    workdir.config.write_text(workdir.config.read_text() + "[defaults]\nmax_attempts = 1\n")
    run_dir, plan, _ = await dead_run(demo_sim, workdir, EXECUTE_JOB)
    target = plan.changes[0].task_id
    # an answer the settle cannot use: the executions list of this task is not a list
    tenant.executions[target] = {"not": "a list"}  # type: ignore[assignment]
    await demo_sim.reset_stats()
    resumed = await bulkshare(workdir, "resume", run_dir.run_id)
    assert resumed.code == 1, resumed.err
    found = records(run_dir)
    assert found[target]["outcome"] == "failed" and "settling read" in found[target]["error"]
    sent = posts(await demo_sim.stats(), "/actions/execute").total()
    assert sent == len(plan.changes) - 1


def use_sim(wd: Workdir, url: str) -> None:
    """Point the workdir's tenant `t` at another simulator."""
    wd.config.write_text(
        f'state_dir = "state"\n[tenants.t]\nurl = "{url}"\napi_key_env = "{TEST_KEY_ENV}"\n'
    )


async def test_faulty_service_executes_once(workdir: Workdir) -> None:
    """Executes answered 500 or cut off after landing are settled by read, not retried blindly."""
    tenant = SimTenant.seed(DEMO_TASKS, DEMO_SEED)
    config = SimConfig(api_key=TEST_KEY, fault_rate=0.4, seed=7)
    async with running_sim(tenant, config) as url:
        use_sim(workdir, url)
        job = workdir.path / "job.toml"
        job.write_text(EXECUTE_JOB)
        applied = await bulkshare(workdir, "apply", str(job), "--yes")
        assert applied.code == 0, applied.err
        [run] = (workdir.state / "runs").iterdir()
        planned = [c.task_id for c in Plan.read(run / "plan.json").changes]
    assert {t: len(tenant.executions.get(t, [])) for t in planned} == dict.fromkeys(planned, 1)


async def test_sigkill_mid_execute_run_then_resume(workdir: Workdir) -> None:
    """kill -9 in the middle of an execute run, then resume: every task executed exactly once."""
    tenant = SimTenant.seed(DEMO_TASKS, DEMO_SEED)
    async with running_sim(tenant, SimConfig(api_key=TEST_KEY, latency_ms=10)) as url:
        use_sim(workdir, url)
        job = workdir.path / "job.toml"
        job.write_text(EXECUTE_JOB)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bulkshare", "apply", str(job), "--yes",
            "--concurrency", "4", "--config", str(workdir.config),
            cwd=workdir.path, env=workdir.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(4000):  # until some executes landed, polled in a bounded loop
                if sum(map(len, tenant.executions.values())) >= 3 or proc.returncode is not None:
                    break
                await asyncio.sleep(0.005)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGKILL)
            await proc.wait()
        [run] = (workdir.state / "runs").iterdir()
        resumed = await bulkshare(workdir, "resume", run.name)
        assert resumed.code == 0, resumed.err
        planned = [c.task_id for c in Plan.read(run / "plan.json").changes]
    assert {t: len(tenant.executions.get(t, [])) for t in planned} == dict.fromkeys(planned, 1)
    assert set(records(RunDir(run))) == set(planned)
