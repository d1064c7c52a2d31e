"""Completeness: a listing whose distinct tasks do not add up to totalCount (or that has none)
ends the plan with exit 4 unless accepted; a task listed twice is planned once."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp import web

from bulkshare.plan import Plan
from tests.conftest import Workdir, bulkshare, error_lines
from tests.hostile.conftest import (
    Origin,
    Reply,
    job_file,
    make_tasks,
    task_endpoints,
    task_list,
)

# slow (`.ci/run` runs it with `pytest -m slow`): incomplete listings through the CLI
pytestmark = pytest.mark.slow

TASKS = "/api/v1/sharing-tasks"

CASES: dict[str, dict[str, Any]] = {
    "no totalCount": {"total": None},
    "low totalCount": {"total": 150},
    "high totalCount": {"total": 300},
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_listing_that_does_not_add_up_exits_4_unless_accepted(
    hostile: Origin, hostile_workdir: Workdir, case: str
) -> None:
    """Missing, low or high totalCount: exit 4 naming both numbers; accepted, a plan saying so."""
    tasks = make_tasks(250)
    total = CASES[case]["total"]
    hostile.on("GET", TASKS, task_list(tasks, total=total))
    job = str(job_file(hostile_workdir))
    result = await bulkshare(hostile_workdir, "plan", job)
    assert result.code == 4, result.err
    [line] = error_lines(result.err)
    said = "gave no totalCount" if total is None else f"said {total}"
    assert "listing is incomplete" in line and said in line and "--accept-incomplete" in line
    listed = 200 if total == 150 else 250  # a low count ends offset paging early
    assert f"{listed} distinct tasks listed" in line
    out = hostile_workdir.path / "plan.json"
    result = await bulkshare(hostile_workdir, "plan", job, "--accept-incomplete", "--out", str(out))
    assert result.code == 0, result.err
    assert '"event":"listing-incomplete-accepted"' in result.err
    doc = orjson.loads(out.read_bytes())
    assert doc["accepted_incomplete"] == {"listed": listed, "total_count": total, "duplicates": 0}
    plan = Plan.read(out)
    assert plan.accepted_incomplete == doc["accepted_incomplete"]
    assert len(plan.changes) == listed


async def test_apply_refuses_an_incomplete_listing_before_any_write(
    hostile: Origin, hostile_workdir: Workdir
) -> None:
    """`apply` on a listing without totalCount: exit 4, no write; with the flag, it runs."""
    tasks = make_tasks(120)
    hostile.on("GET", TASKS, task_list(tasks, total=None))
    hostile.otherwise(task_endpoints(tasks))
    job = str(job_file(hostile_workdir))
    result = await bulkshare(hostile_workdir, "apply", job, "--yes")
    assert result.code == 4, result.err
    assert [s for s in hostile.seen if s.method != "GET"] == []
    result = await bulkshare(hostile_workdir, "apply", job, "--yes", "--accept-incomplete")
    assert result.code == 0, result.err
    assert len(hostile.requests("PATCH")) == 120


async def test_pages_capped_below_the_limit_are_read_whole(
    hostile: Origin, hostile_workdir: Workdir
) -> None:
    """A server giving 50 a page when asked for 100: the cursor walk reads all 250 tasks."""
    tasks = make_tasks(250)

    def link(request: web.Request, start: int) -> str:
        return f"/api/v1/sharing-tasks?limit=100&page={start}"

    hostile.on("GET", TASKS, task_list(tasks, page_size=50, next_link=link))
    out = hostile_workdir.path / "plan.json"
    result = await bulkshare(
        hostile_workdir, "plan", str(job_file(hostile_workdir)), "--out", str(out)
    )
    assert result.code == 0, result.err
    plan = Plan.read(out)
    assert sorted(c.task_id for c in plan.changes) == [t["id"] for t in tasks]
    assert plan.accepted_incomplete is None


@pytest.mark.parametrize("action", ["disable", "execute"])
async def test_a_task_listed_twice_is_planned_and_sent_once(
    hostile: Origin, hostile_workdir: Workdir, action: str
) -> None:
    """A task on two pages is one change, one request, and one warning counting duplicates."""
    tasks = make_tasks(250)
    listed = [*tasks[:150], tasks[120], tasks[7], *tasks[150:]]  # two ids twice
    hostile.on("GET", TASKS, task_list(listed, total=250))
    hostile.otherwise(task_endpoints(tasks))
    job = job_file(
        hostile_workdir,
        f'[job]\nname = "h"\n[[operations]]\naction = "{action}"\nwhere.all = true\n',
    )
    result = await bulkshare(hostile_workdir, "apply", str(job), "--yes")
    assert result.code == 0, result.err
    warnings = [
        orjson.loads(line)
        for line in result.err.splitlines()
        if line.startswith("{") and '"duplicate-tasks"' in line
    ]
    assert [w["duplicates"] for w in warnings] == [2]
    if action == "disable":
        sent = [s.path for s in hostile.requests("PATCH")]
        assert sorted(sent) == sorted(f"{TASKS}/{t['id']}" for t in tasks)
    else:
        sent = [s.json["sharingTaskID"] for s in hostile.requests("POST")]
        assert sorted(sent) == [t["id"] for t in tasks]


async def test_a_complete_listing_records_nothing_accepted(
    hostile: Origin, hostile_workdir: Workdir
) -> None:
    """A listing that adds up plans every task and its plan file has no incomplete mark."""
    tasks = make_tasks(230)
    hostile.on("GET", TASKS, task_list(tasks))
    out = hostile_workdir.path / "plan.json"
    result = await bulkshare(
        hostile_workdir, "plan", str(job_file(hostile_workdir)), "--out", str(out)
    )
    assert result.code == 0, result.err
    doc = orjson.loads(out.read_bytes())
    assert "accepted_incomplete" not in doc and doc["scanned"] == 230
    assert "duplicate-tasks" not in result.err


async def test_an_empty_tenant_with_a_zero_count_is_complete(
    hostile: Origin, hostile_workdir: Workdir
) -> None:
    """No tasks and totalCount 0 is a complete, empty listing: exit 0."""
    hostile.on("GET", TASKS, Reply(200, {"sharingTasks": [], "totalCount": 0}))
    result = await bulkshare(hostile_workdir, "plan", str(job_file(hostile_workdir)))
    assert result.code == 0, result.err


async def test_offset_pages_repeating_a_whole_page_fall_back_to_the_cursor(
    hostile: Origin, hostile_workdir: Workdir
) -> None:
    """Offset page 2 repeating page 1 (the order moved): the cursor walk reads every task."""
    tasks = make_tasks(250)
    cursor = task_list(tasks)

    def answer(request: web.Request) -> Reply:
        if request.query.get("offset") == "100":
            return Reply(200, {"sharingTasks": tasks[1:100] + tasks[:1], "totalCount": 250})
        return cursor(request)

    hostile.on("GET", TASKS, answer)
    out = hostile_workdir.path / "plan.json"
    job = str(job_file(hostile_workdir))
    result = await bulkshare(hostile_workdir, "plan", job, "--out", str(out))
    assert result.code == 0, result.err
    assert sorted(c.task_id for c in Plan.read(out).changes) == [t["id"] for t in tasks]
    assert any("page=" in s.query for s in hostile.seen), "the cursor walk was used"
