"""Restores at scale and re-pointing under kill -9: 300 deletes undone, an export copied back
into its own tenant, and a `delete_source` copy killed mid-way then resumed."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bulkshare.copy.body import app_of
from bulkshare.copy.marker import source_name
from bulkshare.copy.users import REFUSED_STATUSES
from bulkshare.sim import SimTenant, running_sim

from .conftest import Workdir, bulkshare
from .copy_setup import (
    FAST_SIM,
    copy_job,
    definition,
    marked,
    one_tenant,
    same_rhythm,
    task_writes,
)

Task = dict[str, Any]
#: a tenant with exactly 300 live chart-sharing tasks of owners who can own tasks, 35 more of
#: deleted, disabled or invited owners, and some in DELETING
PURGE_TENANT = (1402, 9)


def _change_records(wd: Workdir) -> list[dict[str, Any]]:
    found = []
    for log in sorted(wd.state.glob("runs/*/audit.jsonl")):
        lines = log.read_bytes().splitlines()
        found += [r for r in map(orjson.loads, lines) if r.get("event") == "change"]
    return found


def _restored(before: dict[str, Task], after: dict[str, Task], url: str) -> dict[str, Task]:
    """source task id -> the new task carrying its marker."""
    new = marked({k: v for k, v in after.items() if k not in before})
    prefix = f"bulkshare-src:{source_name(url)}:"
    return {m.removeprefix(prefix): dict(t) for m, t in new.items()}


async def test_delete_300_then_undo_restores_every_one(tmp_path: Path) -> None:
    """300 live tasks deleted and undone come back with their definitions; DELETING ones, and
    those whose owner cannot own a task, are listed as not restorable (nothing sent for them),
    and nothing else in the tenant changes."""
    tenant = SimTenant.seed(*PURGE_TENANT)
    usable = {u for u, doc in tenant.users.items() if doc.get("status") not in REFUSED_STATUSES}
    async with running_sim(tenant, FAST_SIM) as url, aiohttp.ClientSession() as session:
        sim, wd = one_tenant(tmp_path, url, session)
        before = await sim.tasks()
        chosen = {k: v for k, v in before.items() if v["type"] == "chart-sharing"}
        deleting = {k for k, v in chosen.items() if v["statusCode"] == "DELETING"}
        live = set(chosen) - deleting
        orphans = {k for k in live if chosen[k]["owner"] not in usable}
        assert len(live - orphans) == 300 and deleting and orphans
        job = tmp_path / "purge.toml"
        job.write_text(
            '[job]\nname = "purge"\n[[operations]]\naction = "delete"\n'
            'where.type = "chart-sharing"\n'
        )
        done = await bulkshare(wd, "apply", str(job), "--yes")
        assert done.code == 0, done.err
        gone = await sim.tasks()
        assert not live & set(gone)
        undo = await bulkshare(wd, "undo", "last", "--yes")
        assert undo.code == 0, undo.err
        after = await sim.tasks()
        creates = [w for w in task_writes(await sim.stats()) if w[1] == "POST"]
    for task_id in deleting:
        assert f"not restorable: task {task_id}" in undo.err
    undone = {r["task_id"]: r for r in _change_records(wd) if r["action"] == "restore"}
    assert {k for k, r in undone.items() if r["outcome"] == "skipped"} == orphans
    assert all("not restorable: its owner" in undone[k]["note"] for k in orphans)
    assert all(k in undo.err for k in orphans)
    restored = _restored(before, after, url)
    assert set(restored) == live - orphans
    assert len(creates) == len(live - orphans)  # nothing was sent for the orphans
    for task_id in live - orphans:
        assert definition(restored[task_id]) == definition(chosen[task_id]), task_id
        old, new = chosen[task_id]["scheduleOptions"], restored[task_id]["scheduleOptions"]
        assert same_rhythm(old, new), (old, new)
    untouched = {k: v for k, v in before.items() if k not in chosen}
    assert {k: after[k] for k in untouched} == untouched


async def test_export_then_copy_back_restores_deleted_and_skips_present(tmp_path: Path) -> None:
    """The documented restore: an export copied back into its own tenant recreates the tasks
    deleted since, each once, skips the tasks still there, and a second run writes nothing."""
    tenant = SimTenant.seed(120, 3)
    async with running_sim(tenant, FAST_SIM) as url, aiohttp.ClientSession() as session:
        sim, wd = one_tenant(tmp_path, url, session)
        backup = tmp_path / "backup.jsonl"
        exported = await bulkshare(wd, "export", "--out", str(backup))
        assert exported.code == 0, exported.err
        before = await sim.tasks()
        active = {u for u, doc in tenant.users.items() if doc.get("status") == "active"}
        monitoring = {
            k
            for k, v in before.items()
            if v["type"] == "chart-monitoring" and _live(v) and v["owner"] in active
        }
        assert len(monitoring) > 5
        purge = tmp_path / "purge.toml"
        purge.write_text(
            '[job]\nname = "purge"\n[[operations]]\naction = "delete"\n'
            'where.type = "chart-monitoring"\nwhere.owner_status = "active"\n'
        )
        assert (await bulkshare(wd, "apply", str(purge), "--yes")).code == 0
        deleted = await sim.tasks()
        job = copy_job(
            tmp_path / "restore.toml",
            f'from_file = "{backup.name}"\nwhere.all = true\nunmapped = "keep"\n',
            name="restore",
        )
        await sim.reset_stats()
        restored = await bulkshare(wd, "apply", str(job), "--yes")
        assert restored.code == 0, restored.err
        after = await sim.tasks()
        writes = task_writes(await sim.stats())
        await sim.reset_stats()
        again = await bulkshare(wd, "apply", str(job), "--yes")
        assert again.code == 0, again.err
        assert task_writes(await sim.stats()) == []
        assert await sim.tasks() == after
    copies = _restored(deleted, after, url)
    assert set(copies) == monitoring
    for task_id in monitoring:
        assert definition(copies[task_id]) == definition(before[task_id])
    assert {k: after[k] for k in deleted} == deleted  # present ones left exactly as they were
    creates = [w for w in writes if w[1] == "POST"]
    assert len(creates) == len(monitoring)
    assert not [w for w in writes if w[1] == "PATCH" and w[2].rsplit("/", 1)[1] in deleted]


def _live(task: Task) -> bool:
    return bool(task["statusCode"] != "DELETING")


async def test_repoint_killed_and_resumed_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """A copy inside one tenant with an app map and delete_source, killed with SIGKILL mid-way and
    resumed: every source task is replaced by exactly one copy on the new app, none is lost."""
    tenant = SimTenant.seed(400, 4)
    apps = sorted(tenant.apps)
    old_app, new_app = apps[0], apps[1]
    active = {u for u, doc in tenant.users.items() if doc.get("status") == "active"}
    selected = {
        k
        for k, v in tenant.tasks.items()
        if app_of(v) == old_app and _live(v) and v["owner"] in active
    }
    # a report task names its app in no template: it cannot be re-pointed, and is kept
    chosen = {k for k in selected if app_of({"templates": tenant.tasks[k]["templates"]})}
    assert chosen and selected - chosen
    config = dataclasses.replace(FAST_SIM, latency_ms=15)
    async with running_sim(tenant, config) as url, aiohttp.ClientSession() as session:
        sim, wd = one_tenant(tmp_path, url, session)
        before = await sim.tasks()
        copy_job(
            tmp_path / "repoint.toml",
            f'from = "t"\nwhere.app_id = "{old_app}"\nwhere.owner_status = "active"\n'
            f'app_map = {{ "{old_app}" = "{new_app}" }}\nunmapped = "keep"\ndelete_source = true\n',
            name="repoint",
        )
        await _apply_killed_mid_way(wd, tenant, chosen)
        [run] = (wd.state / "runs").iterdir()
        resumed = await bulkshare(wd, "resume", run.name)
        assert resumed.code == 0, resumed.err
        after = await sim.tasks()
        stats = await sim.stats()
    copies = _restored(before, after, url)
    assert set(copies) == chosen
    for task_id in chosen:
        assert app_of(copies[task_id]) == new_app
        assert (copies[task_id]["owner"], copies[task_id]["enabled"]) == (
            before[task_id]["owner"],
            before[task_id]["enabled"],
        )
        assert task_id not in after or after[task_id]["statusCode"] == "DELETING"
    assert len(marked(after)) == len(chosen)  # marked() fails on a marker seen twice
    writes = task_writes(stats)
    assert sum(1 for w in writes if w[1] == "POST" and 200 <= w[3] < 300) == len(chosen)
    deletes = Counter(w[2] for w in writes if w[1] == "DELETE" and 200 <= w[3] < 300)
    assert max(deletes.values()) == 1 and len(deletes) == len(chosen)
    untouched = {k: v for k, v in before.items() if k not in chosen}
    assert {k: after[k] for k in untouched} == untouched


async def _apply_killed_mid_way(wd: Workdir, tenant: SimTenant, chosen: set[str]) -> None:
    """Start `apply repoint.toml` and SIGKILL it once some sources are deleted, not all."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bulkshare", "apply", str(wd.path / "repoint.toml"), "--yes",
        "--concurrency", "2", "--config", str(wd.config),
        cwd=wd.path, env=wd.env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        for _ in range(4000):  # until a few sources went, polled in a bounded loop
            if len(chosen - set(tenant.tasks)) + _deleting(tenant, chosen) >= 3:
                break
            if proc.returncode is not None:
                break
            await asyncio.sleep(0.005)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.stderr is not None
    err = (await proc.stderr.read()).decode()
    assert proc.returncode == -signal.SIGKILL, f"the apply ended before it was killed: {err}"


def _deleting(tenant: SimTenant, chosen: set[str]) -> int:
    return sum(1 for k in chosen if tenant.tasks.get(k, {}).get("statusCode") == "DELETING")
