"""The switchable answers where no public source says what the service does: the side effects of
an owner change, PATCH /ownerId to an unknown user, and PATCH or execute of a DELETING task."""

from __future__ import annotations

from typing import Any

import pytest

from bulkshare.sim import Answer, SimConfig, SimTenant

from .conftest import TASKS, SimClient, StartSim, error_of

FLAG = "DISABLED_DUE_TO_OWNERSHIP_CHANGE"
DELETING_ANSWERS = [(Answer.NOT_FOUND, 404), (Answer.BAD_REQUEST, 400), (Answer.ACCEPTED, 204)]


def user(uid: str, status: str = "active") -> dict[str, Any]:
    return {"id": uid, "name": f"User {uid}", "email": f"{uid}@x.example", "status": status}


def task(tid: str, owner: str, **extra: Any) -> dict[str, Any]:
    base = {"id": tid, "name": f"Task {tid}", "type": "chart-sharing", "owner": owner}
    state = {"enabled": True, "enabledByUser": True, "taskErrors": [], "statusCode": "VALID"}
    return base | state | extra


def small(**doc: Any) -> SimTenant:
    """Tasks t1 (enabled, u1), t2 (orphaned), t3 (DELETING); users u1, u2, u3 (disabled)."""
    orphan = [{"value": "ORPHAN", "timestamp": "2025-01-01T00:00:00.000Z"}]
    return SimTenant.from_document(
        {
            "sharingTasks": [
                task("t1", "u1"),
                task("t2", "gone", taskErrors=orphan, enabledBySystem=False),
                task("t3", "u1", statusCode="DELETING"),
            ],
            "users": [user("u1"), user("u2"), user("u3", "disabled")],
        }
        | doc
    )


def errors(tenant: SimTenant, tid: str) -> list[str]:
    return [e["value"] for e in tenant.tasks[tid]["taskErrors"]]


async def reassign(sim: SimClient, tid: str, owner: str, *more: dict[str, Any]) -> int:
    ops = [{"op": "replace", "path": "/ownerId", "value": owner}, *more]
    status, _ = await sim.call("PATCH", f"{TASKS}/{tid}", json=ops)
    return status


@pytest.mark.parametrize(
    ("disables", "enabled", "flagged"), [(True, False, True), (False, True, False)]
)
async def test_owner_change_disables_or_not(
    start_sim: StartSim, disables: bool, enabled: bool, flagged: bool
) -> None:
    """With owner_change_disables an owner change disables and flags the task; without, not."""
    tenant = small()
    sim = await start_sim(tenant, SimConfig(owner_change_disables=disables))
    assert await reassign(sim, "t1", "u2") == 204
    t1 = tenant.tasks["t1"]
    assert (t1["owner"], t1["enabled"], t1["enabledByUser"]) == ("u2", enabled, enabled)
    assert (FLAG in errors(tenant, "t1")) is flagged


@pytest.mark.parametrize("disables", [True, False])
async def test_owner_change_with_enable_stays_enabled(start_sim: StartSim, disables: bool) -> None:
    """/ownerId with /enabled true in one PATCH ends enabled and unflagged under either rule."""
    tenant = small()
    sim = await start_sim(tenant, SimConfig(owner_change_disables=disables))
    enable = {"op": "replace", "path": "/enabled", "value": True}
    assert await reassign(sim, "t1", "u2", enable) == 204
    assert tenant.tasks["t1"]["enabled"] is True and FLAG not in errors(tenant, "t1")


async def test_user_disabling_with_an_owner_change_is_not_flagged_without_the_rule(
    start_sim: StartSim,
) -> None:
    """Without the rule, /enabled false beside /ownerId disables the task without the flag."""
    tenant = small()
    sim = await start_sim(tenant, SimConfig(owner_change_disables=False))
    disable = {"op": "replace", "path": "/enabled", "value": False}
    assert await reassign(sim, "t1", "u2", disable) == 204
    assert tenant.tasks["t1"]["enabled"] is False and FLAG not in errors(tenant, "t1")


@pytest.mark.parametrize(("clears", "left"), [(True, []), (False, ["ORPHAN"])])
async def test_new_owner_clears_orphan_or_not(
    start_sim: StartSim, clears: bool, left: list[str]
) -> None:
    """A new active owner clears ORPHAN at once by default; with the rule off it stays."""
    tenant = small()
    config = SimConfig(owner_change_clears_errors=clears, owner_change_disables=False)
    sim = await start_sim(tenant, config)
    assert await reassign(sim, "t2", "u1") == 204
    assert errors(tenant, "t2") == left
    assert tenant.tasks["t2"]["enabledBySystem"] is clears


async def test_disabled_new_owner_brings_owner_disabled(start_sim: StartSim) -> None:
    """A disabled new owner gives OWNER_DISABLED (once), whatever the clearing rule."""
    for clears in (True, False):
        tenant = small()
        config = SimConfig(owner_change_clears_errors=clears, owner_change_disables=False)
        sim = await start_sim(tenant, config)
        assert await reassign(sim, "t2", "u3") == 204
        assert errors(tenant, "t2").count("OWNER_DISABLED") == 1
        assert ("ORPHAN" in errors(tenant, "t2")) is not clears


async def test_new_owner_without_access_brings_its_errors(start_sim: StartSim) -> None:
    """A user listed in ownerTaskErrors gives a task those errors when made its owner."""
    tenant = small(ownerTaskErrors={"u2": ["OWNER_ACCESS", "OWNER_LICENSE"]})
    sim = await start_sim(tenant)
    enable = {"op": "replace", "path": "/enabled", "value": True}
    assert await reassign(sim, "t1", "u2", enable) == 204
    assert errors(tenant, "t1") == ["OWNER_ACCESS", "OWNER_LICENSE"]
    assert tenant.tasks["t1"]["enabled"] is True
    assert await reassign(sim, "t2", "u1") == 204  # u1 brings nothing
    assert errors(tenant, "t2") == [FLAG]
    assert SimTenant.from_document(tenant.to_document()).owner_errors == {
        "u2": ["OWNER_ACCESS", "OWNER_LICENSE"]
    }


def test_owner_task_errors_are_checked() -> None:
    """ownerTaskErrors may hold only the three owner-access errors."""
    with pytest.raises(ValueError, match=r"ownerTaskErrors\['u2'\]"):
        small(ownerTaskErrors={"u2": ["ORPHAN"]})


@pytest.mark.parametrize(("answer", "status"), [(Answer.BAD_REQUEST, 400), (Answer.NOT_FOUND, 404)])
async def test_unknown_owner_is_refused(start_sim: StartSim, answer: Answer, status: int) -> None:
    """PATCH /ownerId to no user answers 400 (the default) or 404, changing nothing."""
    tenant = small()
    sim = await start_sim(tenant, SimConfig(unknown_owner=answer))
    rename = {"op": "replace", "path": "/name", "value": "renamed"}
    assert await reassign(sim, "t1", "nobody", rename) == status
    assert tenant.tasks["t1"]["owner"] == "u1" and tenant.tasks["t1"]["name"] == "Task t1"


async def test_unknown_owner_accepted_orphans_the_task(start_sim: StartSim) -> None:
    """Accepted, an unknown owner id is stored and the task is an orphan of it."""
    tenant = small()
    sim = await start_sim(tenant, SimConfig(unknown_owner=Answer.ACCEPTED))
    assert await reassign(sim, "t1", "nobody") == 204
    t1 = tenant.tasks["t1"]
    assert (t1["owner"], t1["ownerName"], t1["enabledBySystem"]) == ("nobody", "", False)
    assert errors(tenant, "t1") == ["ORPHAN", FLAG]


@pytest.mark.parametrize(("answer", "status"), DELETING_ANSWERS)
async def test_patch_of_a_deleting_task(start_sim: StartSim, answer: Answer, status: int) -> None:
    """PATCH of a DELETING task answers 404 by default, or 400, or is applied, as configured."""
    tenant = small()
    sim = await start_sim(tenant, SimConfig(deleting_patch=answer))
    ops = [{"op": "replace", "path": "/name", "value": "renamed"}]
    got, body = await sim.call("PATCH", f"{TASKS}/t3", json=ops)
    assert got == status
    if status != 204:
        assert "being deleted" in error_of(body, status)["detail"]
    assert (tenant.tasks["t3"]["name"] == "renamed") is (status == 204)


@pytest.mark.parametrize(("answer", "status"), DELETING_ANSWERS)
async def test_execute_of_a_deleting_task(start_sim: StartSim, answer: Answer, status: int) -> None:
    """execute of a DELETING task answers 404 by default (the reference's "unable to be
    executed"), or 400, or runs it, as configured."""
    tenant = small()
    sim = await start_sim(tenant, SimConfig(deleting_execute=answer))
    got, _ = await sim.call("POST", f"{TASKS}/actions/execute", json={"sharingTaskID": "t3"})
    assert got == status
    assert len(tenant.executions.get("t3", [])) == (status == 204)
