"""A real `bulkshare apply` process stopped by SIGTERM or killed by SIGKILL, then resumed.

The simulator answers every request after a little latency and the apply runs with a low
concurrency, so the run is still going when the test signals it; the tests wait for a
condition (a file in the run directory, a line on stderr, a request seen by the simulator, a
write held at the gate in front of it), polled in a bounded loop, never for a length of time.
`bench/crash.py` kills at 20 random points; these few cases keep the default suite exercising
the same paths.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from bulkshare.audit import read_records
from bulkshare.client.tenant import DEMO_SEED, DEMO_TASKS
from bulkshare.sim import SimConfig, SimTenant
from tests.conftest import TEST_KEY, Sim, Workdir, bulkshare
from tests.gate import Gate, gated_sim, until
from tests.test_e2e import expect_disable_orphaned, expect_purge, view

# slow (`.ci/run` runs it with `pytest -m slow`): signals and kill -9 to real runs
pytestmark = pytest.mark.slow

LATENCY_MS = 10
JOB = """\
[job]
name = "crash-signals"

[[operations]]
action = "delete"
where.status = "DELETING"

[[operations]]
action = "disable"
where.task_errors = ["ORPHAN", "OWNER_DISABLED"]
where.enabled = true
"""
Tasks = dict[str, dict[str, Any]]
TASK_PATH = re.compile(r"^/api/v1/sharing-tasks/([^/]+)$")


@pytest.fixture
def gate() -> Gate:
    """The gate in front of the simulator, open unless a test closes it."""
    return Gate()


@pytest.fixture
async def demo_sim(gate: Gate) -> AsyncIterator[Sim]:
    """The demo tenant with latency on every request (overrides conftest's, for `workdir`)."""
    tenant = SimTenant.seed(DEMO_TASKS, DEMO_SEED)
    config = SimConfig(api_key=TEST_KEY, latency_ms=LATENCY_MS)
    async with gated_sim(tenant, gate, config) as (url, _), aiohttp.ClientSession() as session:
        yield Sim(url, session)


def job_file(wd: Workdir) -> Path:
    """The job, written into the workdir: DELETEs and PATCHes."""
    path = wd.path / "crash-signals.toml"
    path.write_text(JOB)
    return path


def expected(before: Tasks) -> Tasks:
    """The tenant an uninterrupted run of JOB leaves."""
    return expect_disable_orphaned(expect_purge(before, []), [])


def changed_by_job(before: Tasks) -> set[str]:
    """The tasks an uninterrupted run of JOB changes or deletes."""
    want = expected(before)
    return {i for i in before if i not in want or view({i: before[i]}) != view({i: want[i]})}


Starter = Callable[[], Awaitable[asyncio.subprocess.Process]]


@pytest.fixture
async def start_apply(workdir: Workdir) -> AsyncIterator[Starter]:
    """Starts `bulkshare apply JOB --yes --concurrency 2` without waiting; kills it afterwards."""
    started: list[asyncio.subprocess.Process] = []

    async def start() -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bulkshare",
            "apply",
            str(job_file(workdir)),
            "--yes",
            "--concurrency",
            "2",
            "--config",
            str(workdir.config),
            cwd=workdir.path,
            env=workdir.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()


def run_dir(wd: Workdir) -> Path | None:
    """The run's directory once `resume` can find it (its run.json is written)."""
    found = sorted(wd.state.glob("runs/*/run.json"))
    return found[-1].parent if found else None


def change_records(run: Path) -> list[dict[str, Any]]:
    """The run's `change` records, in order."""
    audit = run / "audit.jsonl"
    return [r for r in read_records(audit) if r.get("event") == "change"] if audit.exists() else []


async def wait_for(
    proc: asyncio.subprocess.Process, condition: Callable[[], bool], what: str
) -> None:
    """Poll `condition` in a bounded loop while the process runs."""
    for _ in range(2000):
        if condition():
            return
        assert proc.returncode is None, f"apply exited {proc.returncode} before {what}"
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def has_change_record(wd: Workdir) -> bool:
    """The run has at least one `change` record on disk."""
    run = run_dir(wd)
    return run is not None and bool(change_records(run))


async def successful_writes(sim: Sim) -> Counter[str]:
    """Per task, the PATCHes and DELETEs the server answered 2xx."""
    writes: Counter[str] = Counter()
    for _, method, path, status in (await sim.stats())["timeline"]:
        match = TASK_PATH.match(path)
        if method in ("PATCH", "DELETE") and match and 200 <= status < 300:
            writes[match.group(1)] += 1
    return writes


async def resume_and_check(sim: Sim, wd: Workdir, run: Path, before: Tasks) -> None:
    """`resume` exits 0, the tenant is exact, each change was written once, counts agree."""
    resumed = await bulkshare(wd, "resume", run.name)
    assert resumed.code == 0, resumed.err
    assert view(await sim.tasks()) == view(expected(before))
    changed = changed_by_job(before)
    assert await successful_writes(sim) == dict.fromkeys(changed, 1)
    records = change_records(run)
    assert sorted(r["index"] for r in records) == list(range(len(changed)))
    summary = orjson.loads((run / "summary.json").read_bytes())
    assert summary["exit_code"] == 0
    assert summary["counts"] == dict(Counter(r["outcome"] for r in records))
    verified = await bulkshare(wd, "audit", "verify", run.name)
    assert verified.code == 0, verified.out


def limit_tier(wd: Workdir, tier: str) -> None:
    """Let the tenant take one request of `tier` per minute, so the next one waits a window."""
    wd.config.write_text(
        wd.config.read_text() + f"[tenants.t.limits]\n{tier}_per_minute = 1\nwindow_s = 60\n"
    )


async def read_until(proc: asyncio.subprocess.Process, text: str) -> str:
    """Read the process's stderr up to the first line containing `text` (10 s at most)."""
    assert proc.stderr is not None
    seen = ""
    async with asyncio.timeout(10):
        while text not in seen:
            line = await proc.stderr.readline()
            assert line, f"stderr closed before {text!r}: {seen}"
            seen += line.decode()
    return seen


async def test_sigterm_stops_cleanly_and_resumes(
    demo_sim: Sim, workdir: Workdir, start_apply: Starter
) -> None:
    """SIGTERM mid-run finishes in-flight writes, records them, exits 130, and resume completes."""
    before = await demo_sim.tasks()
    await demo_sim.reset_stats()
    proc = await start_apply()
    await wait_for(proc, lambda: has_change_record(workdir), "the first change record")
    proc.send_signal(signal.SIGTERM)
    _, err = await proc.communicate()
    assert proc.returncode == 130, err.decode()
    assert "bulkshare resume" in err.decode()

    run = run_dir(workdir)
    assert run is not None
    assert '"state": "interrupted"' in (run / "run.json").read_text()
    recorded = {r["task_id"] for r in change_records(run)}
    written = await successful_writes(demo_sim)
    assert 0 < len(recorded) < len(changed_by_job(before)), "stopped part-way"
    assert set(written) <= recorded, "every write that landed was recorded before exiting"

    await resume_and_check(demo_sim, workdir, run, before)


@pytest.mark.parametrize("when", ["run-dir", "first-record"])
async def test_sigkill_then_resume(
    demo_sim: Sim, workdir: Workdir, start_apply: Starter, when: str
) -> None:
    """SIGKILL as the run starts or after its first record; resume then completes exactly."""
    before = await demo_sim.tasks()
    await demo_sim.reset_stats()
    proc = await start_apply()
    if when == "run-dir":
        await wait_for(proc, lambda: run_dir(workdir) is not None, "the run directory")
    else:
        await wait_for(proc, lambda: has_change_record(workdir), "the first change record")
    proc.send_signal(signal.SIGKILL)
    await proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    run = run_dir(workdir)
    assert run is not None
    await resume_and_check(demo_sim, workdir, run, before)


async def test_sigterm_while_planning_exits_130(
    demo_sim: Sim, workdir: Workdir, start_apply: Starter
) -> None:
    """SIGTERM while planning (which waits on the read limit) exits 130 and sends nothing."""
    plain_config = workdir.config.read_text()
    limit_tier(workdir, "tier1")
    await demo_sim.reset_stats()
    proc = await start_apply()
    for _ in range(2000):
        if (await demo_sim.stats())["requests"] or proc.returncode is not None:
            break
        await asyncio.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(10):
        _, err = await proc.communicate()
    assert proc.returncode == 130, err.decode()
    assert run_dir(workdir) is None
    assert (await demo_sim.stats())["writes"] == 0

    workdir.config.write_text(plain_config)
    again = await bulkshare(workdir, "apply", str(job_file(workdir)), "--yes")
    assert again.code == 0, again.err


async def test_second_signal_forces_stop(
    demo_sim: Sim, workdir: Workdir, start_apply: Starter, gate: Gate
) -> None:
    """The first SIGTERM waits for the writes on the wire; a second one stops at once, and
    resume settles those writes by reading (they land after their process is gone)."""
    before = await demo_sim.tasks()
    await demo_sim.reset_stats()
    proc = await start_apply()
    await wait_for(proc, lambda: has_change_record(workdir), "the first change record")
    gate.close()
    await wait_for(proc, lambda: gate.held == 2, "both workers' writes held on the wire")
    proc.send_signal(signal.SIGTERM)
    await read_until(proc, "stopping")
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(10):
        _, err = await proc.communicate()
    assert proc.returncode == 130, err.decode()
    assert "forced stop" in err.decode()
    run = run_dir(workdir)
    assert run is not None
    assert len(change_records(run)) < len(changed_by_job(before))
    assert '"state": "interrupted"' in (run / "run.json").read_text()

    gate.opened.set()
    await until(lambda: gate.held == 0, "the held writes let through")
    await resume_and_check(demo_sim, workdir, run, before)
