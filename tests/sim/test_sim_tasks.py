"""Single-task endpoints: get, patch, delete, create, execute, cancel, executions, settings."""

from __future__ import annotations

from typing import Any

import pytest

from bulkshare.sim import SimConfig, SimTenant

from .conftest import TASKS, SimClient, StartSim, error_of


def first_where(tenant: SimTenant, **match: Any) -> str:
    for tid, task in tenant.tasks.items():
        if all(task.get(k) == v for k, v in match.items()):
            return tid
    raise AssertionError(f"no task with {match}")


def active_user(tenant: SimTenant, skip: str = "") -> str:
    return next(u for u, x in tenant.users.items() if x["status"] == "active" and u != skip)


async def patch(sim: SimClient, tid: str, body: Any) -> tuple[int, Any]:
    return await sim.call("PATCH", f"{TASKS}/{tid}", json=body)


async def test_get_task(start_sim: StartSim, tenant: SimTenant) -> None:
    """GET answers the persisted task plus its self link."""
    sim = await start_sim(tenant)
    tid = next(iter(tenant.tasks))
    status, body = await sim.call("GET", f"{TASKS}/{tid}")
    assert status == 200
    assert body.pop("links") == {"self": {"href": f"{sim.url}{TASKS}/{tid}"}}
    assert body == tenant.tasks[tid]


async def test_is_view_chart_updates_last_viewed(start_sim: StartSim, tenant: SimTenant) -> None:
    """isViewChart=true moves lastViewed to now; a plain GET does not."""
    sim = await start_sim(tenant)
    tid = next(t for t, x in tenant.tasks.items() if "lastViewed" in x)
    before = tenant.tasks[tid]["lastViewed"]
    await sim.call("GET", f"{TASKS}/{tid}")
    assert tenant.tasks[tid]["lastViewed"] == before
    _, body = await sim.call("GET", f"{TASKS}/{tid}?isViewChart=true")
    assert body["lastViewed"] > before


async def test_patch_owner_enabled_tags(start_sim: StartSim, tenant: SimTenant) -> None:
    """One PATCH reassigns, enables and retags a task, and stamps lastUpdated."""
    sim = await start_sim(tenant)
    tid = first_where(tenant, enabled=False)
    new_owner = active_user(tenant, skip=tenant.tasks[tid]["owner"])
    ops = [
        {"op": "replace", "path": "/ownerId", "value": new_owner},
        {"op": "replace", "path": "/enabled", "value": True},
        {"op": "replace", "path": "/tags", "value": ["a", "b"]},
    ]
    before = tenant.tasks[tid]["lastUpdated"]
    status, body = await patch(sim, tid, ops)
    assert (status, body) == (204, None)
    _, task = await sim.call("GET", f"{TASKS}/{tid}")
    assert task["owner"] == new_owner and task["ownerName"] == tenant.users[new_owner]["name"]
    assert task["enabled"] is True and task["enabledByUser"] is True
    assert task["tags"] == ["a", "b"] and task["lastUpdated"] > before


async def test_patch_owner_alone_disables(start_sim: StartSim, tenant: SimTenant) -> None:
    """Reassigning an enabled task without /enabled disables it, as the service does."""
    sim = await start_sim(tenant)
    tid = first_where(tenant, enabled=True)
    new_owner = active_user(tenant, skip=tenant.tasks[tid]["owner"])
    assert (await patch(sim, tid, [{"op": "replace", "path": "/ownerId", "value": new_owner}]))[
        0
    ] == 204
    task = tenant.tasks[tid]
    assert task["enabled"] is False
    assert "DISABLED_DUE_TO_OWNERSHIP_CHANGE" in {e["value"] for e in task["taskErrors"]}


@pytest.mark.parametrize(
    "body",
    [
        {"op": "replace", "path": "/name", "value": "x"},
        [],
        "nope",
        [{"op": "add", "path": "/name", "value": "x"}],
        [{"op": "replace", "path": "/owner", "value": "x"}],
        [{"op": "replace", "path": "/enabled", "value": "true"}],
        [{"op": "replace", "path": "/enabled"}],
        [{"op": "replace", "path": "/tags", "value": "one"}],
        [{"op": "replace", "path": "/tags", "value": [1]}],
        [{"op": "replace", "path": "/name", "value": 3}],
        [{"op": "replace", "path": "/ownerId", "value": "no-such-user"}],
        [{"op": "remove", "path": "/ownerId"}],
        [{"op": "replace", "path": "/transportChannels", "value": ["fax"]}],
        [
            {
                "op": "replace",
                "path": "/scheduleOptions",
                "value": {"startDateTime": "2026-01-02T16:04:05Z"},
            }
        ],
        [{"op": "replace", "path": "/name", "value": "x", "from": "/a"}],
        ["replace"],
        [{"op": "replace", "path": "/templates", "value": [{"type": ["chart"]}]}],
        [{"op": "replace", "path": "/transportChannels", "value": [["email"]]}],
    ],
)
async def test_bad_patches_are_400(start_sim: StartSim, tenant: SimTenant, body: Any) -> None:
    """Malformed bodies, unknown ops or paths and wrong value types answer 400, changing nothing."""
    sim = await start_sim(tenant)
    tid = next(iter(tenant.tasks))
    before = dict(tenant.tasks[tid])
    status, answer = await patch(sim, tid, body)
    assert status == 400
    error_of(answer, 400)
    assert tenant.tasks[tid] == before


async def test_patch_body_not_json_is_400(start_sim: StartSim, tenant: SimTenant) -> None:
    """A PATCH body that is not JSON answers 400."""
    sim = await start_sim(tenant)
    status, body = await sim.call("PATCH", f"{TASKS}/{next(iter(tenant.tasks))}", data=b"[{")
    assert status == 400
    assert "JSON" in error_of(body, 400)["detail"]


async def test_patch_and_get_unknown_task_404(start_sim: StartSim, tenant: SimTenant) -> None:
    """Unknown task ids answer 404 in the error shape."""
    sim = await start_sim(tenant)
    for method, body in (
        ("GET", None),
        ("PATCH", [{"op": "remove", "path": "/tags"}]),
        ("DELETE", None),
    ):
        status, answer = await sim.call(method, f"{TASKS}/000000000000000000000000", json=body)
        assert status == 404
        error_of(answer, 404)


async def test_delete_then_404(start_sim: StartSim, tenant: SimTenant) -> None:
    """DELETE answers 204; afterwards GET, PATCH and DELETE of the task answer 404."""
    sim = await start_sim(tenant)
    tid = next(iter(tenant.tasks))
    assert await sim.call("DELETE", f"{TASKS}/{tid}") == (204, None)
    assert (await sim.call("GET", f"{TASKS}/{tid}"))[0] == 404
    assert (await patch(sim, tid, [{"op": "remove", "path": "/tags"}]))[0] == 404
    assert (await sim.call("DELETE", f"{TASKS}/{tid}"))[0] == 404


async def test_delete_deleting_task(start_sim: StartSim, tenant: SimTenant) -> None:
    """A task already DELETING is removed by DELETE."""
    sim = await start_sim(tenant)
    tid = first_where(tenant, statusCode="DELETING")
    assert (await sim.call("DELETE", f"{TASKS}/{tid}"))[0] == 204
    assert tid not in tenant.tasks


async def test_deleting_phase(start_sim: StartSim, tenant: SimTenant, clock: Any) -> None:
    """With deleting_phase, DELETE leaves the task DELETING until its linger time passes."""
    sim = await start_sim(tenant, SimConfig(deleting_phase=True, deleting_linger_s=5), clock)
    first, second = list(tenant.tasks)[:2]
    for tid in (first, second):
        assert (await sim.call("DELETE", f"{TASKS}/{tid}"))[0] == 204
    _, task = await sim.call("GET", f"{TASKS}/{first}")
    assert task["statusCode"] == "DELETING"
    assert (await sim.call("DELETE", f"{TASKS}/{first}"))[0] == 204
    assert (await sim.call("GET", f"{TASKS}/{first}"))[0] == 404
    clock.advance(5)
    assert (await sim.call("GET", f"{TASKS}/{second}"))[0] == 404


async def test_execute_and_executions(start_sim: StartSim, tenant: SimTenant) -> None:
    """execute records an execution, readable by id, as latest, and by its file."""
    sim = await start_sim(tenant)
    tid = first_where(tenant, statusCode="VALID")
    for _ in range(3):
        assert await sim.call("POST", f"{TASKS}/actions/execute", json={"sharingTaskID": tid}) == (
            204,
            None,
        )
    status, page = await sim.call("GET", f"{TASKS}/{tid}/executions?limit=2")
    assert (status, page["totalCount"], page["currentPageCount"]) == (200, 3, 2)
    async with sim.session.get(page["links"]["next"]["href"]) as resp:
        rest = await resp.json()
    assert rest["currentPageCount"] == 1
    _, latest = await sim.call("GET", f"{TASKS}/{tid}/executions/latest")
    assert latest["id"] == rest["executions"][0]["id"] and latest["status"] == "successful"
    alias = latest["files"][0]["fileAlias"]
    async with sim.session.get(
        sim.at(f"{TASKS}/{tid}/executions/{latest['id']}/files/{alias}")
    ) as resp:
        assert resp.status == 200 and await resp.read()
    assert (await sim.call("GET", f"{TASKS}/{tid}/executions/nope"))[0] == 404


async def test_execute_errors(start_sim: StartSim, tenant: SimTenant) -> None:
    """execute needs a sharingTaskID (400) of an existing task (404)."""
    sim = await start_sim(tenant)
    assert (await sim.call("POST", f"{TASKS}/actions/execute", json={}))[0] == 400
    status, _ = await sim.call("POST", f"{TASKS}/actions/execute", json={"sharingTaskID": "x"})
    assert status == 404


async def test_cancel(start_sim: StartSim, tenant: SimTenant) -> None:
    """cancel answers 204 for a task and 404 for an unknown one."""
    sim = await start_sim(tenant)
    tid = next(iter(tenant.tasks))
    assert (await sim.call("POST", f"{TASKS}/{tid}/actions/cancel"))[0] == 204
    assert (await sim.call("POST", f"{TASKS}/nope/actions/cancel"))[0] == 404


async def test_settings(start_sim: StartSim, tenant: SimTenant) -> None:
    """Settings read, patch and put; bad bodies answer 400."""
    sim = await start_sim(tenant)
    _, settings = await sim.call("GET", f"{TASKS}/settings")
    assert settings["enable-sharing"] is True
    ops = [{"op": "replace", "path": "/enable-report-subscription", "value": False}]
    assert (await sim.call("PATCH", f"{TASKS}/settings", json=ops))[0] == 204
    assert (await sim.call("PUT", f"{TASKS}/settings", json={"enable-sharing": False}))[0] == 204
    _, settings = await sim.call("GET", f"{TASKS}/settings")
    assert (settings["enable-sharing"], settings["enable-report-subscription"]) == (False, False)
    bad = [{"op": "replace", "path": "/maxRecipients", "value": 3}]
    assert (await sim.call("PATCH", f"{TASKS}/settings", json=bad))[0] == 400
    assert (await sim.call("PUT", f"{TASKS}/settings", json={"enable-sharing": "yes"}))[0] == 400
