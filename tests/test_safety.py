"""Production safety: drift between plan and apply, tampered and stale plans, undo, the lock."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkshare import audit
from tests.conftest import ROOT, TEST_KEY, Sim, Workdir, bulkshare

# slow (`.ci/run` runs it with `pytest -m slow`): apply and undo of each action through the CLI
pytestmark = pytest.mark.slow


async def patch_task(sim: Sim, task_id: str, ops: list[dict[str, Any]]) -> None:
    """Change a task behind bulkshare's back, as a person in the console would."""
    headers = {"Authorization": f"Bearer {TEST_KEY}"}
    url = f"{sim.url}/api/v1/sharing-tasks/{task_id}"
    async with sim.session.patch(url, json=ops, headers=headers) as resp:
        assert resp.status == 204, await resp.text()


def active_users(users: list[dict[str, Any]]) -> list[str]:
    """Ids of active users."""
    return [u["id"] for u in users if u["status"] == "active"]


def reassign_job(path: Path, old: str, new: str) -> Path:
    """A job moving one owner's tasks to another, keeping them enabled."""
    path.write_text(
        f'[job]\nname = "handover"\n[[operations]]\naction = "reassign-owner"\nto = "{new}"\n'
        f'enable = true\nwhere.owner = "{old}"\nwhere.status = "VALID"\n'
    )
    return path


async def owner_with_tasks(sim: Sim) -> tuple[str, str, list[str]]:
    """An active owner with several VALID tasks, another active user, and those task ids."""
    tasks = await sim.tasks()
    users = active_users(await sim.users())
    for owner in users:
        mine = [i for i, t in tasks.items() if t["owner"] == owner and t["statusCode"] == "VALID"]
        if len(mine) >= 3:
            return owner, next(u for u in users if u != owner), mine
    raise AssertionError("no owner with three VALID tasks")


async def test_drift_between_plan_and_apply_is_a_conflict(demo_sim: Sim, workdir: Workdir) -> None:
    """A task changed after planning is skipped as conflict and left as the person left it."""
    old, new, mine = await owner_with_tasks(demo_sim)
    other = next(u for u in active_users(await demo_sim.users()) if u not in (old, new))
    job = reassign_job(workdir.path / "handover.toml", old, new)
    plan_file = workdir.path / "plan.json"
    planned = await bulkshare(workdir, "plan", str(job), "--out", str(plan_file))
    assert planned.code == 0, planned.err
    await patch_task(
        demo_sim,
        mine[0],
        [
            {"op": "replace", "path": "/ownerId", "value": other},
            {"op": "replace", "path": "/enabled", "value": True},
        ],
    )
    applied = await bulkshare(workdir, "apply", str(plan_file), "--yes")
    assert applied.code == 1, applied.err
    tasks = await demo_sim.tasks()
    assert tasks[mine[0]]["owner"] == other
    assert all(tasks[i]["owner"] == new for i in mine[1:])
    [run] = list((workdir.state / "runs").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["counts"] == {"conflict": 1, "applied": len(mine) - 1}


async def test_tampered_and_stale_plans_are_refused(demo_sim: Sim, workdir: Workdir) -> None:
    """A plan edited after writing, or older than --max-age, is refused with exit 2 and no write."""
    plan_file = workdir.path / "plan.json"
    planned = await bulkshare(
        workdir, "plan", str(ROOT / "jobs" / "purge-deleting.toml"), "--out", str(plan_file)
    )
    assert planned.code == 0, planned.err
    await demo_sim.reset_stats()
    stale = await bulkshare(workdir, "apply", str(plan_file), "--yes", "--max-age", "0.000001")
    assert stale.code == 2 and "old" in stale.err, stale.err
    doc = json.loads(plan_file.read_text())
    doc["changes"][0]["task_id"] = "someone-elses-task"
    plan_file.write_text(json.dumps(doc))
    tampered = await bulkshare(workdir, "apply", str(plan_file), "--yes")
    assert tampered.code == 2 and "content_hash" in tampered.err, tampered.err
    assert (await demo_sim.stats())["requests"] == 0


def latest_run(wd: Workdir) -> str:
    """The newest run id."""
    return sorted(p.name for p in (wd.state / "runs").iterdir())[-1]


def fields(tasks: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """Owner, enabled flag and tags of every task."""
    return {i: (t["owner"], t["enabled"], t.get("tags")) for i, t in tasks.items()}


async def undo_and_redo(sim: Sim, wd: Workdir, job: Path) -> None:
    """Apply a job, undo it (state back), undo the undo (the change back)."""
    original = fields(await sim.tasks())
    applied = await bulkshare(wd, "apply", str(job), "--yes")
    assert applied.code == 0, applied.err
    changed = fields(await sim.tasks())
    assert changed != original
    first = latest_run(wd)
    dry = await bulkshare(wd, "undo", first, "--dry-run")
    assert dry.code == 0, dry.err
    assert fields(await sim.tasks()) == changed
    undone = await bulkshare(wd, "undo", first, "--yes")
    assert undone.code == 0, undone.err
    assert fields(await sim.tasks()) == original
    redone = await bulkshare(wd, "undo", latest_run(wd), "--yes")
    assert redone.code == 0, redone.err
    assert fields(await sim.tasks()) == changed


async def test_undo_reassign(demo_sim: Sim, workdir: Workdir) -> None:
    """Undo gives tasks back to their old owner and enabled state; undoing that redoes it."""
    old, new, _ = await owner_with_tasks(demo_sim)
    await undo_and_redo(demo_sim, workdir, reassign_job(workdir.path / "h.toml", old, new))


async def test_undo_disable(demo_sim: Sim, workdir: Workdir) -> None:
    """Undo of disable-orphaned enables those tasks again."""
    await undo_and_redo(demo_sim, workdir, ROOT / "jobs" / "disable-orphaned.toml")


async def test_undo_tag(demo_sim: Sim, workdir: Workdir) -> None:
    """Undo of a tag job puts each task's old tag list back."""
    job = workdir.path / "tag.toml"
    job.write_text(
        '[job]\nname = "tag-monitoring"\n[[operations]]\naction = "tag"\n'
        'tags = ["reviewed-2026"]\nwhere.type = "chart-monitoring"\nwhere.status = "FAILED"\n'
    )
    await undo_and_redo(demo_sim, workdir, job)


async def test_undo_lists_deletions_as_irreversible(demo_sim: Sim, workdir: Workdir) -> None:
    """Deletions of tasks already DELETING cannot be restored: undo says so for each and
    changes nothing (live tasks deleted are recreated: tests/test_copy_undo.py)."""
    applied = await bulkshare(workdir, "apply", str(ROOT / "jobs" / "purge-deleting.toml"), "--yes")
    assert applied.code == 0
    await demo_sim.reset_stats()
    undone = await bulkshare(workdir, "undo", latest_run(workdir), "--yes")
    assert undone.code == 0, undone.err
    assert undone.err.count("not restorable: task") == 40
    assert undone.err.count("it was already DELETING when it was deleted") == 40
    assert (await demo_sim.stats())["writes"] == 0


def write_lock(wd: Workdir, pid: int) -> Path:
    """A lock file for job purge-deleting on tenant t held by `pid` on this host."""
    path = wd.state / "locks" / "t--purge-deleting.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "since": "then"}))
    return path


async def test_lock_held_by_a_live_process_refuses(demo_sim: Sim, workdir: Workdir) -> None:
    """A second apply of the same job and tenant exits 3 naming the holder, and sends nothing."""
    write_lock(workdir, os.getpid())
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, "apply", str(ROOT / "jobs" / "purge-deleting.toml"), "--yes")
    assert result.code == 3, result.err
    assert f"pid {os.getpid()}" in result.err and socket.gethostname() in result.err
    assert (await demo_sim.stats())["requests"] == 0


async def test_stale_lock_is_taken_over(demo_sim: Sim, workdir: Workdir) -> None:
    """A lock whose process is gone is taken over, and released at the end."""
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    path = write_lock(workdir, dead.pid)
    result = await bulkshare(workdir, "apply", str(ROOT / "jobs" / "purge-deleting.toml"), "--yes")
    assert result.code == 0, result.err
    assert not path.exists()


def rechain(log: Path, edit: Any) -> None:
    """Rewrite a log with `edit` applied to each record and every hash recomputed (still valid)."""
    prev = audit.GENESIS
    lines = []
    for rec in audit.read_records(log):
        body = {k: v for k, v in edit(rec).items() if k != "hash"}
        body["prev_hash"] = prev
        body["hash"] = prev = audit.record_hash(prev, body)
        lines.append(orjson.dumps(body, option=orjson.OPT_SORT_KEYS) + b"\n")
    log.write_bytes(b"".join(lines))


async def test_undo_refuses_a_log_that_disagrees_with_its_plan(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """A log rewritten to hand tasks to a chosen owner, even re-chained, makes undo refuse."""
    old, new, _ = await owner_with_tasks(demo_sim)
    chosen = next(u for u in active_users(await demo_sim.users()) if u not in (old, new))
    applied = await bulkshare(
        workdir, "apply", str(reassign_job(workdir.path / "h.toml", old, new)), "--yes"
    )
    assert applied.code == 0, applied.err
    run = workdir.state / "runs" / latest_run(workdir)

    def hand_over(rec: dict[str, Any]) -> dict[str, Any]:
        if rec.get("event") == "change":
            rec["before"] = {**rec["before"], "owner": chosen}
        return rec

    rechain(run / "audit.jsonl", hand_over)
    assert audit.verify(run / "audit.jsonl", finished=True).ok  # the chain itself holds
    await demo_sim.reset_stats()
    # the checkpoint saw the real last record written; without it, the plan still disagrees
    for why in ("not the one the checkpoint saw written", "does not match the run's plan"):
        undone = await bulkshare(workdir, "undo", run.name, "--yes")
        assert undone.code == 2 and why in undone.err, undone.err
        assert "Traceback" not in undone.err
        for name in ("checkpoint.sqlite", "checkpoint.sqlite-wal", "checkpoint.sqlite-shm"):
            (run / name).unlink(missing_ok=True)
    assert (await demo_sim.stats())["requests"] == 0
