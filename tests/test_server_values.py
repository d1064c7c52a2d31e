"""Values of the wrong type from the server: the task is rejected and reported, never coerced."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulkshare.config import Limits
from bulkshare.job import Operation, Where
from bulkshare.job.model import ActionKind
from bulkshare.plan import Plan, Rejected, plan_task
from bulkshare.plan.effects import fields_read
from bulkshare.plan.shape import shape_problem
from bulkshare.report import ReportFormat, render_plan
from tests.conftest import (
    ME_PATH,
    TEST_KEY,
    TEST_KEY_ENV,
    Workdir,
    admin_me,
    bulkshare,
    error_lines,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
OLD = "2025-01-01T00:00:00Z"


def good(task_id: str, **fields: Any) -> dict[str, Any]:
    """A task every operation of JOB selects, with `fields` overriding its values."""
    task = {
        "id": task_id,
        "name": f"report {task_id}",
        "owner": "u1",
        "ownerName": "Ann",
        "type": "template-sharing",
        "statusCode": "VALID",
        "enabled": True,
        "tags": ["keep"],
        "taskErrors": [{"value": "ORPHAN"}],
        "lastViewed": OLD,
        "dateCreated": "2024-01-01T00:00:00Z",
    }
    return task | fields


#: the acceptance cases: each task would be selected, were its value not of the wrong type
HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    "t-tags": ({"tags": "abc"}, "tags is a string, expected a list"),
    "t-enabled": ({"enabled": "yes"}, "enabled is a string, expected a boolean"),
    "t-owner": ({"owner": ["x"]}, "owner is a list, expected a string"),
    "t-errors": ({"taskErrors": "ORPHAN"}, "taskErrors is a string, expected a list"),
    "t-viewed": ({"lastViewed": "year 99999"}, 'lastViewed "year 99999" is not a date'),
}

JOB = """[job]
name = "tidy"
[[operations]]
action = "disable"
where.task_errors = ["ORPHAN"]
where.enabled = true
where.not_viewed_for_days = 30
[[operations]]
action = "tag"
tags = ["orphaned"]
where.owner = ["u1", "x"]
"""


@dataclass
class Hostile:
    """A tenant on loopback that lists crafted tasks and records every request it gets."""

    tasks: dict[str, dict[str, Any]]
    url: str = ""
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    repeat: list[str] = field(default_factory=list)  #: ids listed a second time, at the end

    def writes(self) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] != "GET"]


def hostile_app(tenant: Hostile) -> web.Application:
    """The list (limit honoured, totalCount given), GET and PATCH of one task."""

    async def record(request: web.Request) -> None:
        body = await request.json() if request.can_read_body else None
        tenant.requests.append((request.method, request.path_qs, body))

    async def listing(request: web.Request) -> web.Response:
        await record(request)
        tasks = [*tenant.tasks.values(), *(tenant.tasks[i] for i in tenant.repeat)]
        limit = int(request.query.get("limit", "100"))
        return web.json_response({"sharingTasks": tasks[:limit], "totalCount": len(tasks)})

    async def one(request: web.Request) -> web.Response:
        await record(request)
        task = tenant.tasks.get(request.match_info["id"])
        return web.json_response(task) if task else web.json_response({}, status=404)

    async def patch(request: web.Request) -> web.Response:
        await record(request)
        task = tenant.tasks[request.match_info["id"]]
        names = {"/ownerId": "owner"}
        for op in await request.json():
            task[names.get(op["path"], op["path"][1:])] = op.get("value")
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get(ME_PATH, admin_me)
    app.router.add_get("/api/v1/sharing-tasks", listing)
    app.router.add_get("/api/v1/sharing-tasks/{id}", one)
    app.router.add_patch("/api/v1/sharing-tasks/{id}", patch)
    return app


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    """Two good tasks and one per acceptance case."""
    tasks = {"t-good-1": good("t-good-1"), "t-good-2": good("t-good-2")}
    tasks |= {tid: good(tid, **fields) for tid, (fields, _) in HOSTILE.items()}
    tenant = Hostile(tasks)
    runner = web.AppRunner(hostile_app(tenant))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    tenant.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield tenant
    finally:
        await runner.cleanup()


@pytest.fixture
def hwd(tmp_path: Path, hostile: Hostile) -> Workdir:
    """A config naming the hostile tenant as `t`, and the job file."""
    config = tmp_path / "bulkshare.toml"
    config.write_text(
        f'state_dir = "state"\n[tenants.t]\nurl = "{hostile.url}"\napi_key_env = "{TEST_KEY_ENV}"\n'
    )
    (tmp_path / "tidy.toml").write_text(JOB)
    env = {**os.environ, TEST_KEY_ENV: TEST_KEY}
    env.pop("BULKSHARE_CONFIG", None)
    return Workdir(tmp_path, config, env)


async def test_wrong_types_are_rejected_with_reasons(hostile: Hostile, hwd: Workdir) -> None:
    """Each hostile task is rejected with its reason, the good ones are planned, exit 0."""
    result = await bulkshare(hwd, "plan", "tidy.toml", "--format", "json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert {r["task_id"]: r["reason"] for r in doc["rejected"]} == {
        tid: reason for tid, (_, reason) in HOSTILE.items()
    }
    assert {c["task_id"] for c in doc["changes"]} == {"t-good-1", "t-good-2"}
    assert hostile.writes() == []


async def test_apply_says_how_many_and_writes_only_good_tasks(
    hostile: Hostile, hwd: Workdir
) -> None:
    """apply names the rejected count before running and writes nothing to a rejected task."""
    before = copy.deepcopy(hostile.tasks)
    result = await bulkshare(hwd, "apply", "tidy.toml", "--yes")
    assert result.code == 0, result.err
    note = result.err.index(f"{len(HOSTILE)} tasks rejected")
    assert note < result.err.index("started"), result.err
    assert {path.rsplit("/", 1)[-1] for _, path, _ in hostile.writes()} == {"t-good-1", "t-good-2"}
    for tid in HOSTILE:
        assert hostile.tasks[tid] == before[tid]
    assert hostile.tasks["t-good-1"]["tags"] == ["keep", "orphaned"]
    [run] = list((hwd.state / "runs").iterdir())
    saved = json.loads((run / "plan.json").read_text())
    assert sorted(r["task_id"] for r in saved["rejected"]) == sorted(HOSTILE)


NASTY_NAME = "=1+<b>\x1b[2J|*"


def rejected_plan() -> Plan:
    """A plan with one rejected task whose name is hostile text."""
    plan = Plan("t", "j", "j.toml", "0" * 64, "2026-03-01T00:00:00Z", scanned=1)
    task = {"name": NASTY_NAME, "owner": "u1"}
    plan.rejected.append(Rejected("t-1", "tags is a string, expected a list", task))
    return plan


@pytest.mark.parametrize("fmt", list(ReportFormat))
def test_every_report_format_lists_rejected_tasks(fmt: ReportFormat) -> None:
    """Table, json, csv, markdown and html each show the rejected task and its reason, escaped."""
    tty = fmt is ReportFormat.TABLE
    text = render_plan(rejected_plan(), Limits(), fmt, tty=tty, width=200)
    assert "t-1" in text and "tags is a string, expected a list" in text
    escaped = {
        ReportFormat.TABLE: "\\x1b[2J",
        ReportFormat.JSON: "\\u001b[2J",
        ReportFormat.CSV: "'=1+",
        ReportFormat.MARKDOWN: "\\<b\\>",
        ReportFormat.HTML: "&lt;b&gt;",
    }
    assert escaped[fmt] in text
    if fmt in (ReportFormat.TABLE, ReportFormat.JSON):
        assert "\x1b[2J" not in text
    if fmt in (ReportFormat.HTML, ReportFormat.MARKDOWN):
        assert "<b>" not in text


def test_plain_table_counts_rejected() -> None:
    """The plain text plan says how many tasks were rejected."""
    text = render_plan(rejected_plan(), Limits(), ReportFormat.TABLE)
    assert "rejected, values of the wrong type: 1" in text
    assert "\\x1b[2J" in text  # shown, not obeyed


def test_rejected_tasks_survive_a_plan_file(tmp_path: Path) -> None:
    """plan.json keeps each rejected task with its reason."""
    path = tmp_path / "plan.json"
    rejected_plan().write(path)
    assert Plan.read(path).rejected == rejected_plan().rejected


def op(action: ActionKind, where: Where, **extra: Any) -> Operation:
    """An operation built directly, as the job loader would."""
    return Operation(0, 1, action, where, **extra)


DISABLE_ALL = (op(ActionKind.DISABLE, Where(all=True)),)
AGED = (op(ActionKind.DELETE, Where(not_viewed_for_days=30)),)


@pytest.mark.parametrize(
    ("task", "operations", "reason"),
    [
        ({"enabled": 1}, DISABLE_ALL, "enabled is a number, expected a boolean"),
        ({"enabled": None}, DISABLE_ALL, None),
        ({"tags": ["a", 2]}, (op(ActionKind.TAG, Where(all=True), tags=("b",)),), "tags[1] is"),
        (
            {"taskErrors": ["ORPHAN"]},
            (op(ActionKind.DISABLE, Where(task_errors=frozenset({"ORPHAN"}))),),
            "taskErrors[0] is a string, expected an object",
        ),
        (
            {"taskErrors": [{"value": 7}]},
            (op(ActionKind.DISABLE, Where(task_errors=frozenset({"ORPHAN"}))),),
            "taskErrors[0] is an object, expected",
        ),
        ({"statusCode": ["VALID"]}, DISABLE_ALL, "statusCode is a list"),
        ({"name": 5}, (op(ActionKind.DISABLE, Where(name=("r*",))),), "name is a number"),
        ({"name": 5}, DISABLE_ALL, None),  # the job never reads the name
        ({"tags": "abc"}, (op(ActionKind.DELETE, Where(ids=frozenset({"1"}))),), None),
        ({"owner": {"id": "u1"}}, AGED, "owner is an object, expected a string"),
        ({"lastViewed": "3000-01-01T00:00:00Z"}, AGED, "out of range"),
        ({"lastViewed": "1900-01-01T00:00:00Z"}, AGED, "out of range"),
        ({"lastViewed": 20250101}, AGED, "lastViewed 20250101 is not a date"),
        ({"lastViewed": "0001-01-01T00:00:00Z", "dateCreated": "soon"}, AGED, "dateCreated"),
        ({"lastViewed": "", "dateCreated": OLD}, AGED, None),
        ({"lastViewed": "2026-02-28T23:00:00Z", "dateCreated": "soon"}, AGED, None),
        ({"lastViewed": "year 99999"}, DISABLE_ALL, None),  # no age filter: not read
    ],
)
def test_shape_rules(
    task: dict[str, Any], operations: tuple[Operation, ...], reason: str | None
) -> None:
    """Only the fields a job reads are checked; missing and null values are no problem."""
    full = {"id": "1", "owner": "u1", "enabled": True, "statusCode": "VALID"} | task
    problem = shape_problem(full, fields_read(operations), NOW)
    assert problem == reason if reason is None else problem is not None and reason in problem


def test_rejected_task_is_neither_matched_nor_changed() -> None:
    """plan_task gives a rejected task no change and no skip, only its reason."""
    ops = (op(ActionKind.TAG, Where(all=True), tags=("x",)),)
    planned = plan_task({"id": "1", "tags": "abc"}, ops, NOW)
    assert planned.changes == () and planned.skipped == ()
    assert planned.rejected == "tags is a string, expected a list"
    assert plan_task({"id": "1", "tags": ["abc"]}, ops, NOW).changes[0].after == {
        "tags": ["abc", "x"]
    }


async def test_a_task_listed_twice_is_never_planned_twice(hostile: Hostile, hwd: Workdir) -> None:
    """A listing that repeats a task does not add up (exit 4); accepted, it plans the task once."""
    hostile.repeat.append("t-good-1")
    refused = await bulkshare(hwd, "plan", "tidy.toml", "--format", "json")
    assert refused.code == 4, refused.err
    [line] = error_lines(refused.err)
    assert "listing is incomplete" in line
    result = await bulkshare(hwd, "plan", "tidy.toml", "--format", "json", "--accept-incomplete")
    assert result.code == 0, result.err
    ids = [c["task_id"] for c in json.loads(result.out)["changes"]]
    assert ids.count("t-good-1") == 1
    assert "duplicate-tasks" in result.err
    assert hostile.writes() == []
