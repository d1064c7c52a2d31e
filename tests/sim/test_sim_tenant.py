"""The tenant document and the domain rules, exercised without HTTP."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkshare.sim import SimTenant
from bulkshare.sim.errors import SimError


def user(uid: str, status: Any = "active") -> dict[str, Any]:
    return {"id": uid, "name": f"User {uid}", "email": f"{uid}@x.example", "status": status}


def task(tid: str, owner: str = "u1", **extra: Any) -> dict[str, Any]:
    base = {"id": tid, "name": f"Task {tid}", "type": "chart-sharing", "owner": owner}
    return base | {"ownerName": f"User {owner}", "enabled": True, "enabledByUser": True} | extra


def small() -> SimTenant:
    doc = {
        "sharingTasks": [task("t1", taskErrors=[{"value": "ORPHAN"}], owner="gone"), task("t2")],
        "users": [user("u1"), user("u2"), user("u3", "disabled"), user("u4", "deleted")],
    }
    return SimTenant.from_document(doc)


def test_document_round_trip() -> None:
    """to_document then from_document gives the same document."""
    tenant = SimTenant.seed(100, 1)
    again = SimTenant.from_document(orjson.loads(tenant.dumps()))
    assert again.to_document() == orjson.loads(tenant.dumps())


def test_apps_come_from_the_document_or_the_tasks() -> None:
    """A document's apps list is the tenant's apps; without one, the apps its tasks name."""
    tasks = [task("a", appId="app-1", appName="One"), task("b", appId="app-1"), task("c")]
    derived = SimTenant.from_document({"sharingTasks": tasks, "users": []})
    assert derived.apps == {"app-1": {"id": "app-1", "name": "One"}}
    listed = [{"id": "app-2", "name": "Two", "spaceId": "s"}]
    given = SimTenant.from_document({"sharingTasks": tasks, "users": [], "apps": listed})
    assert list(given.apps) == ["app-2"] and given.app_name("app-2") == "Two"
    assert given.to_document()["apps"] == listed


def test_seeded_apps_are_the_apps_tasks_use() -> None:
    """A seeded tenant has its apps, every task's app among them, with names and spaces."""
    tenant = SimTenant.seed(300, 3)
    assert {t["appId"] for t in tenant.tasks.values()} <= set(tenant.apps)
    for t in tenant.tasks.values():
        app = tenant.apps[t["appId"]]
        assert (app["name"], app["spaceId"]) == (t["appName"], t["spaceId"])


def test_save_and_load(tmp_path: Path) -> None:
    """save writes the whole document atomically and load reads it back, leaving no temp file."""
    path = tmp_path / "state" / "sim-tenant.json"
    tenant = SimTenant.seed(50, 2)
    tenant.patch_task(
        next(iter(tenant.tasks)), [{"op": "replace", "path": "/tags", "value": ["x"]}]
    )
    tenant.save(path)
    assert os.listdir(path.parent) == ["sim-tenant.json"]
    assert SimTenant.load(path).to_document() == tenant.to_document()


def test_load_or_seed(tmp_path: Path) -> None:
    """load_or_seed seeds and saves once, then loads what it saved."""
    path = tmp_path / "t.json"
    first = SimTenant.load_or_seed(path, 30, 4)
    assert path.exists()
    assert SimTenant.load_or_seed(path, 999, 5).to_document() == first.to_document()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "expected a JSON object"),
        ({"users": []}, "'sharingTasks' must be a list"),
        (
            {"sharingTasks": [{"id": "a", "name": "n"}], "users": []},
            "missing required field 'type'",
        ),
        ({"sharingTasks": [task("a"), task("a")], "users": []}, "duplicate id 'a'"),
        ({"sharingTasks": [task("a", type="report")], "users": []}, "'type' must be one of"),
        ({"sharingTasks": [task("a", enabled="yes")], "users": []}, "'enabled' must be a boolean"),
        ({"sharingTasks": [task("a", tags="x")], "users": []}, "'tags' must be a list of strings"),
        ({"sharingTasks": [], "users": [user("u", "gone")]}, "'status' must be one of"),
        ({"sharingTasks": [], "users": [{"name": "x"}]}, "missing required field 'id'"),
        ({"sharingTasks": [], "users": [], "executions": {"a": ["x"]}}, "executions"),
        ({"sharingTasks": [task("a", type=["chart-sharing"])], "users": []}, "'type' must be"),
        ({"sharingTasks": [task("a", statusCode={})], "users": []}, "'statusCode' must be"),
        (
            {"sharingTasks": [task("a", taskErrors=[{"value": ["ORPHAN"]}])], "users": []},
            "'taskErrors' must be",
        ),
        ({"sharingTasks": [], "users": [user("u", ["active"])]}, "'status' must be one of"),
        ({"sharingTasks": [], "users": [], "apps": {}}, "'apps' must be a list"),
        ({"sharingTasks": [], "users": [], "apps": [{"name": "x"}]}, r"apps\[0\]: missing"),
        ({"sharingTasks": [], "users": [], "apps": [{"id": "a"}, {"id": "a"}]}, "duplicate"),
        ({"sharingTasks": [], "users": [], "apps": [{"id": "a", "name": 1}]}, "'name' must be"),
        ({"sharingTasks": [], "users": [], "ownerTaskErrors": []}, "'ownerTaskErrors' must be"),
    ],
)
def test_malformed_documents_are_refused(doc: Any, message: str) -> None:
    """A malformed document is refused with a ValueError naming the problem."""
    with pytest.raises(ValueError, match=message):
        SimTenant.from_document(doc)


def test_load_names_the_file(tmp_path: Path) -> None:
    """Loading a file that is not JSON names the file."""
    path = tmp_path / "bad.json"
    path.write_text("{nope")
    with pytest.raises(ValueError, match=r"bad\.json"):
        SimTenant.load(path)


def test_owner_change_disables_and_clears_orphan() -> None:
    """A new active owner clears ORPHAN but disables the task, flagging the ownership change."""
    tenant = small()
    tenant.patch_task("t1", [{"op": "replace", "path": "/ownerId", "value": "u2"}])
    t1 = tenant.tasks["t1"]
    assert (t1["owner"], t1["ownerName"]) == ("u2", "User u2")
    assert (t1["enabled"], t1["enabledByUser"]) == (False, False)
    assert [e["value"] for e in t1["taskErrors"]] == ["DISABLED_DUE_TO_OWNERSHIP_CHANGE"]
    assert t1["updatedBy"] == tenant.admin_id


def test_owner_change_with_enable_keeps_task_enabled() -> None:
    """Replacing /enabled with true in the same PATCH keeps the reassigned task enabled."""
    tenant = small()
    ops = [
        {"op": "replace", "path": "/enabled", "value": True},
        {"op": "replace", "path": "/ownerId", "value": "u2"},
    ]
    tenant.patch_task("t1", ops)
    assert tenant.tasks["t1"]["enabled"] is True
    assert tenant.tasks["t1"]["taskErrors"] == []


def test_owner_change_to_disabled_user_flags_it() -> None:
    """A disabled new owner turns ORPHAN into OWNER_DISABLED."""
    tenant = small()
    tenant.patch_task("t1", [{"op": "replace", "path": "/ownerId", "value": "u3"}])
    values = {e["value"] for e in tenant.tasks["t1"]["taskErrors"]}
    assert values == {"OWNER_DISABLED", "DISABLED_DUE_TO_OWNERSHIP_CHANGE"}
    assert tenant.tasks["t1"]["enabledBySystem"] is False


@pytest.mark.parametrize("owner", ["nobody", "u4"])
def test_unknown_or_deleted_owner_is_refused_atomically(owner: str) -> None:
    """An unknown or deleted new owner is a 400 and nothing of the PATCH is applied."""
    tenant = small()
    ops = [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "replace", "path": "/ownerId", "value": owner},
    ]
    with pytest.raises(SimError) as caught:
        tenant.patch_task("t2", ops)
    assert caught.value.status == 400
    assert tenant.tasks["t2"]["name"] == "Task t2"


def test_same_owner_is_no_change() -> None:
    """Replacing the owner with the current owner does not disable the task."""
    tenant = small()
    tenant.patch_task("t2", [{"op": "replace", "path": "/ownerId", "value": "u1"}])
    assert tenant.tasks["t2"]["enabled"] is True


def test_remove_clears_field() -> None:
    """remove drops an optional field."""
    tenant = small()
    tenant.patch_task("t2", [{"op": "replace", "path": "/description", "value": "d"}])
    tenant.patch_task("t2", [{"op": "remove", "path": "/description"}])
    assert "description" not in tenant.tasks["t2"]


def test_deleting_phase() -> None:
    """With a deleting phase, DELETE marks DELETING; the task goes after the linger time."""
    tenant = small()
    tenant.delete_task("t2", deleting_phase=True, now=10.0)
    assert tenant.tasks["t2"]["statusCode"] == "DELETING"
    assert tenant.purge_deleting(now=11.0, linger_s=2.0) == 0
    assert tenant.purge_deleting(now=12.0, linger_s=2.0) == 1
    assert "t2" not in tenant.tasks


def test_version_counts_changes() -> None:
    """Every change bumps the version; reads do not."""
    tenant = small()
    tenant.get_task("t2")
    assert tenant.version == 0
    tenant.execute_task("t2")
    assert tenant.version == 1
