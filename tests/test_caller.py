"""Know the caller: `/users/me` is the first request to a tenant; a caller that cannot see the
whole tenant is refused (exit 4) unless the tenant is `scope = "own"`; plans record the caller.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulkshare.client.caller import Caller, MalformedCaller, caller_of
from bulkshare.config import Scope, load_config
from bulkshare.errors import ConfigError
from bulkshare.plan import Plan
from bulkshare.report import ReportFormat, render_plan
from bulkshare.sim import SimConfig, SimTenant
from tests.conftest import ROOT, Workdir, bulkshare, error_lines
from tests.simdir import demo_tenant, owned, sent, sim_running, users_with, workdir_for

# slow (`.ci/run` runs it with `pytest -m slow`): callers of every kind through the CLI
pytestmark = pytest.mark.slow

ORPHANED = ROOT / "jobs" / "disable-orphaned.toml"
ME = ("GET", "/api/v1/users/me")
TAG_ALL = (
    '[job]\nname = "tag-all"\n[[operations]]\naction = "tag"\ntags = ["q3"]\nwhere.all = true\n'
)


def tag_job(wd: Workdir) -> Path:
    """A job that tags every task it can see."""
    path = wd.path / "tag.toml"
    path.write_text(TAG_ALL)
    return path


def listed(tenant: SimTenant, user_id: str) -> list[str]:
    """The tasks of `user_id` a plan lists: all but those being deleted (excludeDeleting)."""
    return [t for t in owned(tenant, user_id) if tenant.tasks[t]["statusCode"] != "DELETING"]


COMMANDS = {
    "plan": ("plan", str(ORPHANED)),
    "apply": ("apply", str(ORPHANED), "--yes"),
    "export": ("export", "--out", "tasks.jsonl"),
}


@pytest.mark.parametrize("roles", [(), ("Developer", "Auditor")])
@pytest.mark.parametrize("command", sorted(COMMANDS))
async def test_a_non_admin_is_refused_after_only_the_identity_read(
    tmp_path: Path, roles: tuple[str, ...], command: str
) -> None:
    """Neither TenantAdmin nor AnalyticsAdmin: exit 4 in one line; the tenant saw only /users/me."""
    async with sim_running(SimConfig(caller_roles=roles)) as sim:
        wd = workdir_for(tmp_path, sim.url)
        result = await bulkshare(wd, *COMMANDS[command])
        assert result.code == 4, result.err
        [line] = error_lines(result.err)
        assert "is neither TenantAdmin nor AnalyticsAdmin" in line, line
        shown = ", ".join(f"'{r}'" for r in roles) or "none"
        assert f"(roles: {shown})" in line and 'scope = "own" in [tenants.t]' in line, line
        assert await sent(sim) == [ME]
    assert not (tmp_path / "tasks.jsonl").exists() and not (tmp_path / "state" / "runs").exists()


async def test_scope_own_plans_a_non_admins_own_tasks(tmp_path: Path) -> None:
    """`scope = "own"` lets a non-admin plan; the plan says so and holds only its own tasks."""
    tenant = demo_tenant()
    user = max(users_with(tenant, "active"), key=lambda u: len(owned(tenant, u)))
    async with sim_running(SimConfig(caller_id=user, caller_roles=("Developer",)), tenant) as sim:
        wd = workdir_for(tmp_path, sim.url, 'scope = "own"\n')
        out = tmp_path / "own.json"
        result = await bulkshare(wd, "plan", str(tag_job(wd)), "--out", str(out))
    assert result.code == 0, result.err
    assert "scope: the caller's own tasks only" in result.out
    doc = json.loads(out.read_text())
    name = tenant.users[user]["name"]
    assert doc["scope"] == "own" and doc["caller"] == {
        "id": user,
        "name": name,
        "roles": ["Developer"],
    }
    assert doc["tenant_url"] == sim.url and doc["scanned"] == len(listed(tenant, user))
    assert {c["task"]["owner"] for c in doc["changes"]} == {user}


async def test_scope_own_with_an_admin_plans_only_its_own_tasks(tmp_path: Path) -> None:
    """An admin sees every task, but `scope = "own"` still plans only the caller's own."""
    tenant = demo_tenant()
    mine = listed(tenant, tenant.admin_id)
    assert 0 < len(mine) < len(tenant.tasks)
    async with sim_running(tenant=tenant) as sim:
        wd = workdir_for(tmp_path, sim.url, 'scope = "own"\n')
        result = await bulkshare(wd, "plan", str(tag_job(wd)), "--format", "json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["scanned"] == len(mine) and doc["scope"] == "own"
    assert sorted(c["task_id"] for c in doc["changes"]) == mine


async def test_the_plan_records_its_caller_and_every_format_shows_it(tmp_path: Path) -> None:
    """plan.json holds caller and tenant URL; table, rich, json, markdown and html all show them."""
    tenant = demo_tenant()
    admin = tenant.users[tenant.admin_id]
    async with sim_running(tenant=tenant) as sim:
        wd = workdir_for(tmp_path, sim.url)
        out = tmp_path / "p.json"
        result = await bulkshare(wd, "plan", str(ORPHANED), "--out", str(out))
        assert result.code == 0, result.err
        texts = {"table": result.out}
        for fmt in ("json", "markdown", "html"):
            shown = await bulkshare(wd, "plan", str(ORPHANED), "--format", fmt)
            texts[fmt] = shown.out
    plan = Plan.read(out)
    assert plan.caller == Caller(admin["id"], admin["name"], ("TenantAdmin",))
    assert plan.tenant_url == sim.url and plan.scope == "all"
    rich = render_plan(
        plan, load_config(str(wd.config)).tenants["t"].limits, ReportFormat.TABLE, True, 240
    )
    texts["rich"] = re.sub(r"\x1b\[[0-9;]*m", "", rich)
    url_in = {"html": sim.url.replace("://", "<wbr>://")}
    for fmt, text in texts.items():
        assert admin["name"] in text and admin["id"] in text, fmt
        assert url_in.get(fmt, sim.url) in text, fmt
        assert "TenantAdmin" in text, fmt


Answer = tuple[int, bytes]


def me_server(answer: Answer, seen: list[str]) -> web.Application:
    """A tenant whose /users/me answers `answer` (status, JSON body); every request's path is
    added to `seen`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        if request.path == "/api/v1/users/me":
            status, body = answer
            return web.Response(status=status, body=body, content_type="application/json")
        return web.json_response({"sharingTasks": [], "totalCount": 0})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """`app` on a loopback port; its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def json_answer(doc: Any, status: int = 200) -> Answer:
    return status, json.dumps(doc).encode()


BAD_ME = {
    "404": (json_answer({"errors": [{"title": "Not found"}]}, 404), "answered HTTP 404"),
    "403": (json_answer({"errors": [{"title": "Forbidden"}]}, 403), "answered HTTP 403"),
    "401": (json_answer({"errors": [{"title": "Unauthorized"}]}, 401), "authentication failed"),
    "not-json": ((200, b"<html>hi</html>"), "malformed JSON"),
    "a-list": (json_answer([]), "not a JSON object"),
    "no-id": (json_answer({"name": "x", "roles": ["TenantAdmin"]}), "user id is not a string"),
    "id-with-escape": (json_answer({"id": "u\x1b[2J", "name": "x"}), "outside visible ASCII"),
    "roles-a-string": (json_answer({"id": "u1", "name": "x", "roles": "TenantAdmin"}), "roles"),
    "assigned-not-objects": (
        json_answer({"id": "u1", "name": "x", "assignedRoles": ["TenantAdmin"]}),
        "assignedRoles is not a list of objects",
    ),
    "name-a-number": (json_answer({"id": "u1", "name": 7, "roles": []}), "name is not a string"),
}


@pytest.mark.parametrize("case", sorted(BAD_ME))
async def test_a_users_me_that_cannot_be_used_exits_4_in_one_line(
    tmp_path: Path, case: str
) -> None:
    """/users/me refused, missing or malformed: exit 4, one escaped line, nothing else sent."""
    answer, expected = BAD_ME[case]
    seen: list[str] = []
    async with serving(me_server(answer, seen)) as url:
        wd = workdir_for(tmp_path, url)
        result = await bulkshare(wd, "plan", str(ORPHANED))
    assert result.code == 4, result.err
    [line] = error_lines(result.err)
    assert line.startswith("bulkshare: tenant t: ") and expected in line, line
    assert "\x1b" not in result.err and "Traceback" not in result.err
    assert set(seen) == {"/api/v1/users/me"}  # a 401 is tried twice: once after a re-auth


def test_roles_come_from_roles_and_assigned_roles() -> None:
    """Either list may name an admin role; custom roles are kept; no list means no admin."""
    analytics = caller_of({"id": "u1", "name": "A", "assignedRoles": [{"name": "AnalyticsAdmin"}]})
    assert analytics.is_admin and analytics.roles == ("AnalyticsAdmin",)
    both = caller_of(
        {"id": "u2", "name": "B", "roles": ["Developer"], "assignedRoles": [{"name": "Auditor"}]}
    )
    assert both.roles == ("Developer", "Auditor") and not both.is_admin
    assert not caller_of({"id": "u3", "name": "C"}).is_admin
    assert caller_of({"id": "u4", "roles": ["TenantAdmin"]}).name == ""
    with pytest.raises(MalformedCaller, match="assignedRoles"):
        caller_of({"id": "u5", "assignedRoles": [{"name": 5}]})


def test_a_caller_round_trips_and_a_bad_one_is_refused() -> None:
    """A plan's caller reads back as written; any other shape is MalformedCaller."""
    caller = Caller("u1", "Ann", ("TenantAdmin",))
    assert Caller.from_json(caller.to_json()) == caller
    for bad in ({"id": "u1", "name": "Ann"}, {"id": 1, "name": "A", "roles": []}, "u1", None):
        with pytest.raises(MalformedCaller):
            Caller.from_json(bad)


def test_scope_in_the_config(tmp_path: Path) -> None:
    """`scope` is "all" by default, "own" if asked; any other value names the key, exit 2."""
    config = tmp_path / "bulkshare.toml"
    base = '[tenants.t]\nurl = "https://acme.eu.qlikcloud.com"\napi_key_env = "K"\n'
    config.write_text(base)
    assert load_config(str(config), {"K": "k"}).tenants["t"].scope is Scope.ALL
    config.write_text(base + 'scope = "own"\n')
    assert load_config(str(config), {"K": "k"}).tenants["t"].scope is Scope.OWN
    for bad in ('"mine"', "true", '["own"]'):
        config.write_text(base + f"scope = {bad}\n")
        with pytest.raises(ConfigError, match=r"tenants\.t\.scope: must be \"all\""):
            load_config(str(config), {"K": "k"})
