"""The caller: every identity acts as a user of the tenant with roles; `/users/me` names it, and
without an admin role it sees (and may touch) only the tasks it owns."""

from __future__ import annotations

from typing import Any

import pytest

from bulkshare.cli import main
from bulkshare.sim import SimCaller, SimConfig, SimTenant, make_app

from .conftest import TASKS, StartSim, error_of

OTHER = "other-token"


def owned_by(tenant: SimTenant, user_id: str) -> list[str]:
    return [t for t, task in tenant.tasks.items() if task["owner"] == user_id]


def not_owned_by(tenant: SimTenant, user_id: str) -> str:
    return next(
        t
        for t, task in tenant.tasks.items()
        if task["owner"] != user_id and task["statusCode"] != "DELETING"
    )


async def test_users_me_names_the_admin_with_its_roles(
    start_sim: StartSim, tenant: SimTenant
) -> None:
    """By default every identity is the tenant's admin user, a TenantAdmin."""
    sim = await start_sim(tenant)
    status, me = await sim.call("GET", "/api/v1/users/me")
    assert status == 200
    user = tenant.users[tenant.admin_id]
    assert (me["id"], me["name"], me["tenantId"]) == (user["id"], user["name"], tenant.tenant_id)
    assert me["roles"] == ["TenantAdmin"]
    assert [(r["name"], r["type"], r["level"]) for r in me["assignedRoles"]] == [
        ("TenantAdmin", "default", "admin")
    ]
    assert me["links"]["self"]["href"] == f"{sim.url}/api/v1/users/{user['id']}"


async def test_users_me_needs_a_bearer(start_sim: StartSim, tenant: SimTenant) -> None:
    """/users/me without a token answers 401 like every other endpoint."""
    sim = await start_sim(tenant, token=None)
    status, body = await sim.call("GET", "/api/v1/users/me")
    assert status == 401
    error_of(body, 401)


async def test_caller_id_and_custom_roles(start_sim: StartSim, tenant: SimTenant) -> None:
    """caller_id picks the user; roles outside the system set show only in assignedRoles."""
    user_id = next(u for u in tenant.users if u != tenant.admin_id)
    config = SimConfig(caller_id=user_id, caller_roles=("Developer", "Auditor"))
    sim = await start_sim(tenant, config)
    _, me = await sim.call("GET", "/api/v1/users/me")
    assert me["id"] == user_id and me["roles"] == ["Developer"]
    assert [(r["name"], r["type"]) for r in me["assignedRoles"]] == [
        ("Developer", "default"),
        ("Auditor", "custom"),
    ]


@pytest.mark.parametrize("roles", [(), ("Developer",)])
async def test_non_admin_lists_only_its_own_tasks(
    start_sim: StartSim, tenant: SimTenant, roles: tuple[str, ...]
) -> None:
    """Without TenantAdmin or AnalyticsAdmin the list (and its total) holds the caller's tasks."""
    sim = await start_sim(tenant, SimConfig(caller_roles=roles))
    mine = owned_by(tenant, tenant.admin_id)
    assert 0 < len(mine) < len(tenant.tasks)
    seen: list[str] = []
    url: str | None = sim.at(f"{TASKS}?limit=7")
    while url:
        async with sim.session.get(url) as resp:
            page = await resp.json()
        assert page["totalCount"] == len(mine)
        seen += [t["id"] for t in page["sharingTasks"]]
        url = page["links"].get("next", {}).get("href")
    assert seen == mine


@pytest.mark.parametrize("role", ["TenantAdmin", "AnalyticsAdmin"])
async def test_admin_roles_see_every_task(
    start_sim: StartSim, tenant: SimTenant, role: str
) -> None:
    """Either admin role sees the whole tenant."""
    sim = await start_sim(tenant, SimConfig(caller_roles=("Developer", role)))
    _, page = await sim.call("GET", f"{TASKS}?limit=1")
    assert page["totalCount"] == len(tenant.tasks)


async def test_non_admin_gets_404_for_another_users_task(
    start_sim: StartSim, tenant: SimTenant
) -> None:
    """Every operation on a task the caller cannot see answers 404 and changes nothing."""
    sim = await start_sim(tenant, SimConfig(caller_roles=()))
    foreign = not_owned_by(tenant, tenant.admin_id)
    before = dict(tenant.tasks[foreign])
    tags = [{"op": "replace", "path": "/tags", "value": ["x"]}]
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"{TASKS}/{foreign}", {}),
        ("PATCH", f"{TASKS}/{foreign}", {"json": tags}),
        ("DELETE", f"{TASKS}/{foreign}", {}),
        ("POST", f"{TASKS}/actions/execute", {"json": {"sharingTaskID": foreign}}),
        ("POST", f"{TASKS}/{foreign}/actions/cancel", {}),
        ("GET", f"{TASKS}/{foreign}/executions", {}),
        ("GET", f"{TASKS}/{foreign}/executions/latest", {}),
    ]
    for method, path, kwargs in calls:
        status, body = await sim.call(method, path, **kwargs)
        assert status == 404, (method, path)
        assert "not found" in error_of(body, 404)["detail"]
    assert tenant.tasks[foreign] == before
    assert foreign not in tenant.executions


async def test_non_admin_may_touch_its_own_task(start_sim: StartSim, tenant: SimTenant) -> None:
    """A caller without an admin role reads, patches and executes the tasks it owns."""
    sim = await start_sim(tenant, SimConfig(caller_roles=()))
    own = next(
        t for t in owned_by(tenant, tenant.admin_id) if tenant.tasks[t]["statusCode"] != "DELETING"
    )
    assert (await sim.call("GET", f"{TASKS}/{own}"))[0] == 200
    tags = [{"op": "replace", "path": "/tags", "value": ["mine"]}]
    assert (await sim.call("PATCH", f"{TASKS}/{own}", json=tags))[0] == 204
    assert tenant.tasks[own]["tags"] == ["mine"]
    assert (await sim.call("POST", f"{TASKS}/actions/execute", json={"sharingTaskID": own}))[
        0
    ] == 204


async def test_non_admin_template_sharing_needs_an_app(
    start_sim: StartSim, tenant: SimTenant
) -> None:
    """As the reference says, a non-admin listing only template-sharing must give appid."""
    app_id = next(iter(tenant.apps))
    admin = await start_sim(tenant)
    assert (await admin.call("GET", f"{TASKS}?type=template-sharing"))[0] == 200
    sim = await start_sim(tenant, SimConfig(caller_roles=()))
    status, body = await sim.call("GET", f"{TASKS}?type=template-sharing")
    assert status == 400 and "appid" in error_of(body, 400)["detail"]
    assert (await sim.call("GET", f"{TASKS}?type=template-sharing&appid={app_id}"))[0] == 200


async def test_callers_map_credentials_to_users(start_sim: StartSim, tenant: SimTenant) -> None:
    """Two bearer tokens act as two users: each /users/me and each list is its own."""
    user_id = next(u for u in owned_by_users(tenant) if u != tenant.admin_id)
    config = SimConfig(callers=(SimCaller(OTHER, user_id, roles=()),))
    admin = await start_sim(tenant, config)
    other = await start_sim(tenant, config, token=OTHER)
    assert (await admin.call("GET", "/api/v1/users/me"))[1]["id"] == tenant.admin_id
    _, me = await other.call("GET", "/api/v1/users/me")
    assert me["id"] == user_id and me["roles"] == []
    _, page = await other.call("GET", f"{TASKS}?limit=100")
    assert {t["owner"] for t in page["sharingTasks"]} == {user_id}
    assert (await admin.call("GET", f"{TASKS}?limit=1"))[1]["totalCount"] == len(tenant.tasks)


def owned_by_users(tenant: SimTenant) -> list[str]:
    return [u for u, x in tenant.users.items() if x["status"] == "active" and owned_by(tenant, u)]


async def test_an_oauth_client_is_a_caller_too(start_sim: StartSim, tenant: SimTenant) -> None:
    """A SimCaller credential may name an OAuth client: its tokens act as that user."""
    user_id = owned_by_users(tenant)[-1]
    config = SimConfig(callers=(SimCaller("bot", user_id, roles=("AnalyticsAdmin",)),))
    sim = await start_sim(tenant, config, token=None)
    form = {"client_id": "bot", "client_secret": "s", "grant_type": "client_credentials"}
    _, token = await sim.call("POST", "/oauth/token", json=form)
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    _, me = await sim.call("GET", "/api/v1/users/me", headers=bearer)
    assert me["id"] == user_id and me["roles"] == ["AnalyticsAdmin"]


def test_a_caller_must_be_a_user_of_the_tenant(tenant: SimTenant) -> None:
    """make_app refuses a caller id the tenant has no user for."""
    with pytest.raises(ValueError, match="nobody"):
        make_app(tenant, SimConfig(caller_id="nobody"))
    with pytest.raises(ValueError, match="ghost"):
        make_app(tenant, SimConfig(callers=(SimCaller("t", "ghost"),)))


def test_cli_refuses_an_unknown_caller_id(capsys: pytest.CaptureFixture[str]) -> None:
    """`bulkshare sim --caller-id` naming no user exits 2 with one line, serving nothing."""
    code = main(["sim", "--tasks", "20", "--port", "0", "--caller-id", "nobody"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "--caller-id 'nobody'" in err[0]
