"""Two cron jobs at once on one tenant and identity: one purges then reassigns a departed user's
tasks, the other disables orphans. Both exit 0 and every task ends as intended, 10 runs of 10."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulkshare import audit
from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.conftest import ROOT, TEST_KEY, TEST_KEY_ENV, Result, Workdir
from tests.test_read_back import change_records, run_dirs, summary, task_writes

# slow (`.ci/run` runs it with `pytest -m slow`): two applies at once, ten times
pytestmark = pytest.mark.slow

Tasks = dict[str, dict[str, Any]]
OWNER_GONE = {"ORPHAN", "OWNER_DISABLED"}


@dataclass(frozen=True)
class Departure:
    """A deleted user's tasks (some of them DELETING) and the active user taking them over."""

    tenant: SimTenant
    gone: str
    successor: str


def departure() -> Departure:
    """A seeded tenant where a deleted user owns a third of the tasks, enabled and orphaned
    (five of them DELETING): both jobs want the same tasks at the same time."""
    doc = SimTenant.seed(300, 7).to_document()
    status = {u["id"]: u.get("status") for u in doc["users"]}
    gone = next(u for u, s in status.items() if s == "deleted")
    now = "2025-01-01T00:00:00Z"
    for index, task in enumerate(doc["sharingTasks"][::3]):
        task["owner"], task["enabled"] = gone, True
        task["statusCode"] = "DELETING" if index < 5 else "VALID"
        task["taskErrors"] = [{"value": "ORPHAN", "timestamp": now}]
    successor = next(u for u, s in status.items() if s == "active")
    return Departure(SimTenant.from_document(doc), gone, successor)


def purge_then_reassign(path: Path, d: Departure) -> Path:
    """Job A: delete the departed user's DELETING tasks, then give the rest to the successor."""
    path.write_text(
        '[job]\nname = "offboard"\n'
        f'[[operations]]\naction = "delete"\nwhere.owner = "{d.gone}"\nwhere.status = "DELETING"\n'
        f'[[operations]]\naction = "reassign-owner"\nto = "{d.successor}"\n'
        f'where.owner = "{d.gone}"\n'
    )
    return path


async def spawn(wd: Workdir, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bulkshare", *args, "--config", str(wd.config)),
        cwd=wd.path,
        env=wd.env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finished(proc: asyncio.subprocess.Process) -> Result:
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def intended_problems(before: Tasks, after: Tasks, d: Departure) -> list[str]:
    """What is not as intended, by the jobs' meaning alone (no engine code involved)."""
    problems = []
    for task_id, task in before.items():
        if task["owner"] != d.gone:
            continue
        if task["statusCode"] == "DELETING" and task_id in after:
            problems.append(f"{task_id}: DELETING task of the departed user still there")
        elif task["statusCode"] != "DELETING" and after[task_id]["owner"] != d.successor:
            problems.append(f"{task_id}: still owned by {after[task_id]['owner']}")
    for task_id, task in after.items():
        errors = {e.get("value") for e in task.get("taskErrors") or []}
        orphaned = bool(errors & OWNER_GONE) and task["statusCode"] != "DELETING"
        if orphaned and task["enabled"] is not False:
            problems.append(f"{task_id}: still orphaned and enabled")
    return problems


@pytest.mark.timeout(120)
@pytest.mark.parametrize("attempt", range(5))
@pytest.mark.parametrize("disables", [True, False], ids=["disables", "keeps-enabled"])
async def test_two_jobs_at_once_both_succeed(tmp_path: Path, disables: bool, attempt: int) -> None:
    """Offboarding and disable-orphaned, as two `bulkshare apply` processes started together on
    one identity: both exit 0, every task ends as intended, one write per task and job."""
    d = departure()
    config = SimConfig(api_key=TEST_KEY, owner_change_disables=disables, latency_ms=5)
    async with running_sim(d.tenant, config) as url, aiohttp.ClientSession() as http:
        cfg = tmp_path / "bulkshare.toml"
        cfg.write_text(
            f'state_dir = "state"\n[defaults]\nconcurrency = 4\n[tenants.t]\nurl = "{url}"\n'
            f'api_key_env = "{TEST_KEY_ENV}"\n'
        )
        wd = Workdir(tmp_path, cfg, {**os.environ, TEST_KEY_ENV: TEST_KEY})
        async with http.get(f"{url}/__sim/tenant") as resp:
            before = {t["id"]: t for t in (await resp.json())["sharingTasks"]}
        job_a = purge_then_reassign(tmp_path / "offboard.toml", d)
        job_b = ROOT / "jobs" / "disable-orphaned.toml"
        procs = [await spawn(wd, "apply", str(job), "--yes") for job in (job_a, job_b)]
        results = await asyncio.gather(*(finished(p) for p in procs))
        assert [r.code for r in results] == [0, 0], [r.err[-2000:] for r in results]
        async with http.get(f"{url}/__sim/tenant") as resp:
            after = {t["id"]: t for t in (await resp.json())["sharingTasks"]}
        async with http.get(f"{url}/__sim/stats") as resp:
            writes = task_writes(await resp.json())
    assert intended_problems(before, after, d) == []
    runs = run_dirs(wd)
    assert len(runs) == 2
    applied: Counter[str] = Counter()
    for run in runs:
        assert audit.verify(run / "audit.jsonl").ok
        assert summary(run)["exit_code"] == 0
        for task_id, record in change_records(run).items():
            assert record["outcome"] in ("applied", "skipped", "absent"), record
            applied[task_id] += record["outcome"] == "applied"
    # every write the tenant took is one applied record of one job: none sent twice
    assert writes == +applied
    assert max(writes.values()) <= 2
