"""The three seed jobs end to end: a real `bulkshare` process against the simulator."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bulkshare import audit
from tests.conftest import ROOT, Sim, Workdir, bulkshare

Tasks = dict[str, dict[str, Any]]
COMPARED = ("owner", "ownerName", "enabled", "tags", "name", "statusCode", "description")


def deleting(task: dict[str, Any]) -> bool:
    """Tasks on their way out are left to delete operations."""
    return task.get("statusCode") == "DELETING"


def expect_purge(before: Tasks, users: list[dict[str, Any]]) -> Tasks:
    """purge-deleting: every task in DELETING is gone, nothing else changes."""
    return {i: t for i, t in before.items() if t.get("statusCode") != "DELETING"}


def expect_disable_orphaned(before: Tasks, users: list[dict[str, Any]]) -> Tasks:
    """disable-orphaned: enabled tasks with ORPHAN/OWNER_DISABLED errors become disabled."""
    out: Tasks = {}
    for i, t in before.items():
        errors = {e.get("value") for e in t.get("taskErrors") or []}
        orphaned = bool(errors & {"ORPHAN", "OWNER_DISABLED"}) and not deleting(t)
        out[i] = {**t, "enabled": False} if orphaned and t.get("enabled") is True else t
    return out


def owner_mapping() -> dict[str, str]:
    """The shipped owners.csv as old -> new."""
    with open(ROOT / "jobs" / "owners.csv", newline="") as fh:
        return {row["old_owner"]: row["new_owner"] for row in csv.DictReader(fh)}


def expect_reassign(before: Tasks, users: list[dict[str, Any]]) -> Tasks:
    """reassign-owners: mapped owners' tasks move to the successor, enabled flag kept."""
    names = {u["id"]: u["name"] for u in users}
    mapping = owner_mapping()
    out: Tasks = {}
    for i, t in before.items():
        new = None if deleting(t) else mapping.get(t.get("owner", ""))
        out[i] = {**t, "owner": new, "ownerName": names[new]} if new else t
    return out


def view(tasks: Tasks) -> dict[str, tuple[Any, ...]]:
    """The compared fields of every task."""
    return {i: tuple(t.get(k) for k in COMPARED) for i, t in tasks.items()}


async def run_seed_job(
    sim: Sim, wd: Workdir, job: str, expect: Callable[[Tasks, list[dict[str, Any]]], Tasks]
) -> None:
    """Apply a shipped job, check the tenant, the write counts, the audit, and a second apply."""
    before = await sim.tasks()
    expected = expect(before, await sim.users())
    changed = {
        i for i in before if i not in expected or view({i: before[i]}) != view({i: expected[i]})
    }
    assert changed, "the demo tenant gives this job something to do"
    await sim.reset_stats()

    first = await bulkshare(wd, "apply", str(ROOT / "jobs" / job), "--yes")
    assert first.code == 0, first.err
    assert view(await sim.tasks()) == view(expected)
    stats = await sim.stats()
    assert stats["writes_per_task"] == dict.fromkeys(changed, 1)

    second = await bulkshare(wd, "apply", str(ROOT / "jobs" / job), "--yes")
    assert second.code == 0, second.err
    assert (await sim.stats())["writes"] == stats["writes"]
    assert view(await sim.tasks()) == view(expected)

    run_dirs = sorted((wd.state / "runs").iterdir())
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        assert audit.verify(run_dir / "audit.jsonl").ok
        verified = await bulkshare(wd, "audit", "verify", run_dir.name)
        assert verified.code == 0, verified.out + verified.err


async def test_purge_deleting(demo_sim: Sim, workdir: Workdir) -> None:
    """purge-deleting removes exactly the DELETING tasks with one DELETE each."""
    await run_seed_job(demo_sim, workdir, "purge-deleting.toml", expect_purge)


async def test_disable_orphaned(demo_sim: Sim, workdir: Workdir) -> None:
    """disable-orphaned disables exactly the enabled orphaned tasks with one PATCH each."""
    await run_seed_job(demo_sim, workdir, "disable-orphaned.toml", expect_disable_orphaned)


async def test_reassign_owners(demo_sim: Sim, workdir: Workdir) -> None:
    """reassign-owners moves departed owners' tasks to successors with one PATCH each."""
    await run_seed_job(demo_sim, workdir, "reassign-owners.toml", expect_reassign)


async def test_plan_sends_no_write(demo_sim: Sim, workdir: Workdir) -> None:
    """`plan` reads the tenant and shows the changes, and the simulator sees no write."""
    await demo_sim.reset_stats()
    result = await bulkshare(
        workdir, "plan", str(ROOT / "jobs" / "disable-orphaned.toml"), "--format", "json"
    )
    assert result.code == 0, result.err
    stats = await demo_sim.stats()
    assert stats["writes"] == 0
    assert set(stats["by_method"]) == {"GET"}
    assert '"disable"' in result.out
    assert not (workdir.state / "runs").exists()


async def test_saved_plan_applies_exactly(demo_sim: Sim, workdir: Workdir, tmp_path: Path) -> None:
    """`plan --out` then `apply PLAN.json` makes the planned changes and no others."""
    plan_file = tmp_path / "plan.json"
    planned = await bulkshare(
        workdir, "plan", str(ROOT / "jobs" / "purge-deleting.toml"), "--out", str(plan_file)
    )
    assert planned.code == 0, planned.err
    before = await demo_sim.tasks()
    applied = await bulkshare(workdir, "apply", str(plan_file), "--yes")
    assert applied.code == 0, applied.err
    assert view(await demo_sim.tasks()) == view(expect_purge(before, []))


async def test_apply_without_terminal_needs_yes(demo_sim: Sim, workdir: Workdir) -> None:
    """Without a terminal and without --yes, apply refuses with exit 3 and sends nothing."""
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, "apply", str(ROOT / "jobs" / "purge-deleting.toml"))
    assert result.code == 3
    assert "--yes" in result.err
    assert (await demo_sim.stats())["requests"] == 0


async def test_max_changes_guard(demo_sim: Sim, workdir: Workdir) -> None:
    """A plan bigger than --max-changes is refused with exit 3 and no write."""
    await demo_sim.reset_stats()
    result = await bulkshare(
        workdir, "apply", str(ROOT / "jobs" / "purge-deleting.toml"), "--yes", "--max-changes", "1"
    )
    assert result.code == 3, result.err
    assert "max_changes" in result.err
    assert (await demo_sim.stats())["writes"] == 0


async def test_jobs_that_leave_deleting_tasks_alone_do_not_list_them(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """Without a delete or `status = DELETING`, the list is asked to exclude DELETING tasks."""
    tasks = await demo_sim.tasks()
    deleting = sum(1 for t in tasks.values() if t.get("statusCode") == "DELETING")
    assert deleting
    for job, read in (
        ("disable-orphaned", len(tasks) - deleting),
        ("purge-deleting", len(tasks)),
    ):
        result = await bulkshare(workdir, "plan", str(ROOT / "jobs" / f"{job}.toml"), "-q")
        assert result.code == 0, result.err
        assert f", {read} tasks read" in result.out.splitlines()[0], result.out[:300]
