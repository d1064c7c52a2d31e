"""Restore and undo: a delete keeps the task's document before it is sent, and undo recreates the
deleted tasks through the copy path; undo of a copy deletes what it created."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from bulkshare.copy.marker import marker_for, source_name

from .conftest import Sim, Workdir, bulkshare
from .copy_setup import copy_job, definition, marked, pair_maps, same_rhythm, two_tenants, write_map


def _records(wd: Workdir, run: str = "") -> list[dict[str, Any]]:
    runs = sorted((wd.state / "runs").iterdir())
    run_dir = next(r for r in runs if run in r.name) if run else runs[0]
    lines = (run_dir / "audit.jsonl").read_bytes().splitlines()
    return [r for r in map(orjson.loads, lines) if r.get("event") == "change"]


def _owner_with_deleting(tasks: Mapping[str, Mapping[str, Any]]) -> str:
    """The owner of the most chart-monitoring tasks among those owning a DELETING one."""
    monitoring = [t for t in tasks.values() if t["type"] == "chart-monitoring"]
    owners = {str(t["owner"]) for t in monitoring if t["statusCode"] == "DELETING"}
    return max(owners, key=lambda o: sum(t["owner"] == o for t in monitoring))


async def test_delete_then_undo_restores(workdir: Workdir, demo_sim: Sim) -> None:
    """Deleted tasks come back with their definitions; those already DELETING are not restored."""
    before = await demo_sim.tasks()
    owner = _owner_with_deleting(before)
    job = workdir.path / "purge.toml"
    job.write_text(
        '[job]\nname = "purge"\n[[operations]]\naction = "delete"\n'
        f'where.type = "chart-monitoring"\nwhere.owner = "{owner}"\n'
    )
    chosen = {
        k: v for k, v in before.items() if v["type"] == "chart-monitoring" and v["owner"] == owner
    }
    deleting = {k for k, v in chosen.items() if v["statusCode"] == "DELETING"}
    assert len(chosen) > 5 and deleting
    done = await bulkshare(workdir, "apply", str(job), "--yes")
    assert done.code == 0, done.err
    records = _records(workdir)
    assert {r["task_id"] for r in records if r.get("document")} == set(chosen)
    assert all(r["document"]["id"] == r["task_id"] for r in records if r.get("document"))
    undo = await bulkshare(workdir, "undo", "last", "--yes")
    assert undo.code == 0, undo.err
    for task_id in deleting:
        assert f"not restorable: task {task_id}" in undo.err
    after = await demo_sim.tasks()
    restored = marked({k: v for k, v in after.items() if k not in before})
    src = source_name(demo_sim.url)
    assert set(restored) == {marker_for(src, t) for t in set(chosen) - deleting}
    for task_id in set(chosen) - deleting:
        copy = restored[marker_for(src, task_id)]
        assert definition(copy) == definition(chosen[task_id])
        old, new = chosen[task_id]["scheduleOptions"], copy["scheduleOptions"]
        assert same_rhythm(old, new), (old, new)
    again = await bulkshare(
        workdir, "undo", sorted((workdir.state / "runs").iterdir())[0].name, "--yes"
    )
    assert again.code == 0, again.err
    assert await demo_sim.tasks() == after


async def test_undo_of_a_copy_deletes_its_tasks(tmp_path: Path) -> None:
    """Undo of a copy run deletes every task it created in the target, and nothing else."""
    async with two_tenants(tmp_path, tasks=30) as tt:
        apps, users = pair_maps(tt.tenant_a, tt.tenant_b)
        write_map(tmp_path / "apps.csv", apps)
        write_map(tmp_path / "users.csv", users)
        job = copy_job(
            tmp_path / "copy.toml",
            'from = "a"\nwhere.type = "chart-sharing"\napp_map = "apps.csv"\n'
            'user_map = "users.csv"\nunmapped = "keep"\n',
        )
        before = await tt.b.tasks()
        done = await bulkshare(tt.wd, "apply", str(job), "--tenant", "b", "--yes")
        assert done.code == 0, done.err
        created = {r["target_id"] for r in _records(tt.wd) if r["outcome"] == "applied"}
        assert created and created <= set(await tt.b.tasks())
        undo = await bulkshare(tt.wd, "undo", "last", "--yes")
        assert undo.code == 0, undo.err
        left = {k: v for k, v in (await tt.b.tasks()).items() if v["statusCode"] != "DELETING"}
        assert not created & set(left)
        assert set(left) == {k for k, v in before.items() if v["statusCode"] != "DELETING"}
