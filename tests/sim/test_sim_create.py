"""POST of a task as the reference says: required fields and template data, the caller as owner,
executeOnCreation, apps the tenant knows, and schedule start dates not too far in the past."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bulkshare.sim import SimCaller, SimConfig, SimTenant

from .conftest import TASKS, StartSim, error_of

DAY = 86_400


def local(days_ago: float) -> str:
    """A local date time (no offset) `days_ago` days before now."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - days_ago * DAY))


def chart_body(app_id: str, **extra: Any) -> dict[str, Any]:
    """A valid chart-sharing create request for `app_id`."""
    chart = {
        "appId": app_id,
        "sheetId": "sheet-1",
        "objectId": "object-1",
        "widthPx": 800,
        "heightPx": 600,
    }
    return {
        "name": "New task",
        "type": "chart-sharing",
        "state": {"selections": []},
        "templates": [{"type": "chart", "chartData": chart, "fileAlias": "chart"}],
        "tags": ["new"],
        "recipients": {"userIds": [{"value": "u"}], "emailAddresses": ["a@b.example"]},
    } | extra


def an_app(tenant: SimTenant) -> str:
    return next(iter(tenant.apps))


async def runs_of(sim: Any, task_id: str) -> int:
    _, runs = await sim.call("GET", f"{TASKS}/{task_id}/executions")
    count: int = runs["totalCount"]
    return count


async def test_create_task(start_sim: StartSim, tenant: SimTenant) -> None:
    """POST creates a task owned by the caller, executes it once, and answers it with 201."""
    sim = await start_sim(tenant)
    app_id = an_app(tenant)
    status, body = await sim.call("POST", TASKS, json=chart_body(app_id))
    assert status == 201
    tid = body["id"]
    task = tenant.tasks[tid]
    assert task["owner"] == task["createdBy"] == tenant.admin_id
    assert (body["appId"], body["appName"]) == (app_id, tenant.apps[app_id]["name"])
    assert body["spaceId"] == tenant.apps[app_id]["spaceId"]
    assert body["recipients"]["emailAddresses"] == [{"value": "a@b.example", "enabled": True}]
    assert await runs_of(sim, tid) == 1


async def test_the_caller_becomes_the_owner(start_sim: StartSim, tenant: SimTenant) -> None:
    """Another credential's user owns what it creates; an owner in the body is ignored."""
    user_id = next(u for u, x in tenant.users.items() if u != tenant.admin_id)
    config = SimConfig(callers=(SimCaller("other", user_id, roles=()),))
    sim = await start_sim(tenant, config, token="other")
    body = chart_body(an_app(tenant), owner=tenant.admin_id, ownerId=tenant.admin_id)
    status, task = await sim.call("POST", TASKS, json=body)
    assert status == 201
    assert (task["owner"], task["ownerName"]) == (user_id, tenant.users[user_id]["name"])
    assert tenant.tasks[task["id"]]["createdBy"] == user_id
    assert (await sim.call("GET", f"{TASKS}/{task['id']}"))[0] == 200  # its own: visible


@pytest.mark.parametrize(("flag", "runs"), [(True, 1), (False, 0), (None, 1)])
async def test_execute_on_creation(
    start_sim: StartSim, tenant: SimTenant, flag: bool | None, runs: int
) -> None:
    """An execution is recorded only when executeOnCreation is true or absent (its default)."""
    sim = await start_sim(tenant)
    extra = {} if flag is None else {"executeOnCreation": flag}
    _, task = await sim.call("POST", TASKS, json=chart_body(an_app(tenant), **extra))
    assert await runs_of(sim, task["id"]) == runs
    assert ("lastRun" in tenant.tasks[task["id"]]) == bool(runs)


@pytest.mark.parametrize("drop", ["name", "type", "state", "templates"])
async def test_create_needs_required_fields(
    start_sim: StartSim, tenant: SimTenant, drop: str
) -> None:
    """A create request missing a required field answers 400."""
    sim = await start_sim(tenant)
    body = {k: v for k, v in chart_body(an_app(tenant)).items() if k != drop}
    status, answer = await sim.call("POST", TASKS, json=body)
    assert status == 400
    assert drop in error_of(answer, 400)["detail"]


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ({"type": ["chart"]}, "templates"),
        ({"type": "chart"}, "chartData"),
        ({"type": "chart", "chartData": {"appId": "{app}", "sheetId": "s"}}, "objectId"),
        ({"type": "story", "storyData": {"appId": "{app}"}}, "storyId"),
        ({"type": "multi-sheet", "multiSheetData": []}, "multiSheetData"),
        ({"type": "multi-sheet", "multiSheetData": [{"appId": "{app}"}]}, "sheetId"),
    ],
)
async def test_templates_carry_the_data_their_type_needs(
    start_sim: StartSim, tenant: SimTenant, template: dict[str, Any], named: str
) -> None:
    """A chart needs chartData (ids and size), a story storyData, a multi-sheet its sheets."""
    sim = await start_sim(tenant)
    filled = json.loads(json.dumps(template).replace("{app}", an_app(tenant)))
    body = chart_body(an_app(tenant)) | {"templates": [filled]}
    before = len(tenant.tasks)
    status, answer = await sim.call("POST", TASKS, json=body)
    assert status == 400
    assert named in error_of(answer, 400)["detail"]
    assert len(tenant.tasks) == before


async def test_an_app_the_tenant_lacks_is_refused(start_sim: StartSim, tenant: SimTenant) -> None:
    """Create or PATCH /templates naming an unknown app answers 400 naming it; known ones pass."""
    sim = await start_sim(tenant)
    before = len(tenant.tasks)
    status, answer = await sim.call("POST", TASKS, json=chart_body("no-such-app"))
    assert status == 400
    assert "no-such-app" in error_of(answer, 400)["detail"] and len(tenant.tasks) == before
    _, task = await sim.call("POST", TASKS, json=chart_body(an_app(tenant)))
    templates = chart_body("no-such-app")["templates"]
    ops = [{"op": "replace", "path": "/templates", "value": templates}]
    status, answer = await sim.call("PATCH", f"{TASKS}/{task['id']}", json=ops)
    assert status == 400 and "no-such-app" in error_of(answer, 400)["detail"]
    other_app = list(tenant.apps)[1]
    ops[0]["value"] = chart_body(other_app)["templates"]
    assert (await sim.call("PATCH", f"{TASKS}/{task['id']}", json=ops))[0] == 204


async def test_any_app_when_told(start_sim: StartSim, tenant: SimTenant) -> None:
    """With known_apps_only off, an app the tenant lacks is accepted."""
    sim = await start_sim(tenant, SimConfig(known_apps_only=False))
    status, task = await sim.call("POST", TASKS, json=chart_body("no-such-app"))
    assert (status, task["appId"], task["appName"]) == (201, "no-such-app", "")


@pytest.mark.parametrize(
    ("days_ago", "limit", "status"),
    [(30, 365, 201), (364, 365, 201), (400, 365, 400), (60, 30, 400), (4000, None, 201)],
)
async def test_old_schedule_starts_are_refused(
    start_sim: StartSim, tenant: SimTenant, days_ago: int, limit: int | None, status: int
) -> None:
    """A startDateTime more than max_start_age_days (+1 day for timezones) back answers 400."""
    sim = await start_sim(tenant, SimConfig(max_start_age_days=limit))
    schedule = {"timezone": "UTC", "recurrence": ["RRULE:FREQ=DAILY"]}
    schedule["startDateTime"] = local(days_ago)
    body = chart_body(an_app(tenant), scheduleOptions=schedule)
    answer_status, answer = await sim.call("POST", TASKS, json=body)
    assert answer_status == status
    if status == 400:
        assert "startDateTime" in error_of(answer, 400)["detail"]


async def test_old_schedule_start_refused_on_patch(start_sim: StartSim, tenant: SimTenant) -> None:
    """PATCH /scheduleOptions gets the same bound; an empty start date means now."""
    sim = await start_sim(tenant)
    tid = next(t for t, x in tenant.tasks.items() if x["statusCode"] != "DELETING")
    for start, status in ((local(800), 400), (local(1), 204), ("", 204)):
        ops = [{"op": "replace", "path": "/scheduleOptions", "value": {"startDateTime": start}}]
        assert (await sim.call("PATCH", f"{TASKS}/{tid}", json=ops))[0] == status, start


async def test_start_date_must_be_a_local_date_time(start_sim: StartSim, tenant: SimTenant) -> None:
    """A startDateTime that is no date answers 400 naming the field."""
    sim = await start_sim(tenant)
    body = chart_body(an_app(tenant), scheduleOptions={"startDateTime": "next tuesday"})
    status, answer = await sim.call("POST", TASKS, json=body)
    assert status == 400 and "startDateTime" in error_of(answer, 400)["detail"]
