"""Plans bound to their tenant: plan.json records the tenant's URL and its caller; applying it to
a tenant of that name at another URL, or as a caller that may not, is refused before any request
to the tenant; and a change other than a delete that finds its task gone is a failure.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkshare.client.tenant import BUILTIN_SIM_URL
from bulkshare.export import BUILTIN_SIM_URL as EXPORT_SIM_URL
from bulkshare.plan.saved import same_tenant_url
from bulkshare.sim import SimCaller, SimConfig, SimTenant
from tests.conftest import ROOT, TEST_KEY, Sim, Workdir, bulkshare, error_lines
from tests.simdir import (
    OTHER_KEY,
    OTHER_KEY_ENV,
    demo_tenant,
    owned,
    sent,
    sim_running,
    users_with,
    workdir_for,
    write_config,
)

# slow (`.ci/run` runs it with `pytest -m slow`): plans bound to tenants, through the CLI
pytestmark = pytest.mark.slow

ORPHANED = ROOT / "jobs" / "disable-orphaned.toml"
PURGE = ROOT / "jobs" / "purge-deleting.toml"
ME = ("GET", "/api/v1/users/me")


async def plan_to(wd: Workdir, job: Path = ORPHANED) -> Path:
    """Plan `job` into plan.json in the workdir."""
    out = wd.path / "plan.json"
    result = await bulkshare(wd, "plan", str(job), "--out", str(out))
    assert result.code == 0, result.err
    return out


def rehash(path: Path, edit: dict[str, Any]) -> None:
    """Edit a plan file's top-level keys (None deletes) and recompute its content hash."""
    doc = json.loads(path.read_text())
    for key, value in edit.items():
        doc.pop(key) if value is None else doc.__setitem__(key, value)
    body = {k: v for k, v in doc.items() if k not in ("content_hash", "signature")}
    doc["content_hash"] = hashlib.sha256(
        orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    path.write_text(json.dumps(doc))


async def test_a_plan_for_another_url_is_refused_before_any_request(tmp_path: Path) -> None:
    """Planned on one simulator, applied through a config whose tenant `t` is another: exit 2,
    one line naming both URLs, neither simulator asked anything, no run."""
    async with sim_running() as first, sim_running() as second:
        wd = workdir_for(tmp_path, first.url)
        out = await plan_to(wd)
        write_config(wd, second.url)
        await first.reset_stats()
        await second.reset_stats()
        result = await bulkshare(wd, "apply", str(out), "--yes")
        assert await sent(first) == [] and await sent(second) == []
    assert result.code == 2, result.err
    [line] = error_lines(result.err)
    assert f'made for tenant t at "{first.url}"' in line and f'is at "{second.url}"' in line
    assert not (wd.state / "runs").exists()


def test_tenant_urls_compare_as_origins() -> None:
    """Host case and an explicit default port do not matter; scheme, host and port do."""
    assert same_tenant_url("https://Acme.EU.qlikcloud.com", "https://acme.eu.qlikcloud.com:443")
    assert same_tenant_url("builtin:sim", "builtin:sim")
    assert not same_tenant_url("https://acme.eu.qlikcloud.com", "http://acme.eu.qlikcloud.com")
    assert not same_tenant_url("https://acme.eu.qlikcloud.com", "https://acme.us.qlikcloud.com")
    assert not same_tenant_url("http://127.0.0.1:8080", "http://127.0.0.1:8081")
    assert not same_tenant_url("builtin:sim", "http://127.0.0.1:8080")


async def test_the_builtin_simulator_is_bound_by_name_not_port(tmp_path: Path) -> None:
    """The built-in simulator gets a new port per process: its plans say builtin:sim (as its
    exports do) and apply."""
    config = tmp_path / "bulkshare.toml"
    config.write_text('state_dir = "state"\n')
    env = {k: v for k, v in os.environ.items() if k != "BULKSHARE_CONFIG"}
    wd = Workdir(tmp_path, config, env)
    out = await plan_to(wd)
    assert json.loads(out.read_text())["tenant_url"] == BUILTIN_SIM_URL == EXPORT_SIM_URL
    result = await bulkshare(wd, "apply", str(out), "--yes")
    assert result.code == 0, result.err


def two_admins(tenant: SimTenant) -> tuple[SimConfig, str]:
    """A config where OTHER_KEY acts as a second TenantAdmin; that user's id."""
    other = next(u for u in users_with(tenant, "active") if u != tenant.admin_id)
    return SimConfig(callers=(SimCaller(OTHER_KEY, other, ("TenantAdmin",)),)), other


async def test_another_admin_may_apply_a_plan_of_every_task(tmp_path: Path) -> None:
    """An approver's plan run by another admin identity (a cron M2M client): applied, the
    difference said on stderr, the applier recorded in run.json and shown by `show`."""
    tenant = demo_tenant()
    config, other = two_admins(tenant)
    async with sim_running(config, tenant) as sim:
        wd = workdir_for(tmp_path, sim.url)
        out = await plan_to(wd)
        write_config(wd, sim.url, key_env=OTHER_KEY_ENV)
        result = await bulkshare(wd, "apply", str(out), "--yes")
        assert result.code == 0, result.err
        [run] = (wd.state / "runs").iterdir()
        shown = await bulkshare(wd, "show", run.name)
    admin, second = tenant.users[tenant.admin_id], tenant.users[other]
    assert (
        f"plan made by '{admin['name']}' (id '{admin['id']}'), applied by "
        f"'{second['name']}' (id '{other}')" in result.err
    )
    assert json.loads((run / "run.json").read_text())["applied_by"] == other
    assert f"applied by (user id): {other}" in shown.out
    assert f"planned by: '{admin['name']}'" in shown.out and f"tenant URL: {sim.url}" in shown.out


def two_users(tenant: SimTenant, roles: tuple[str, ...] = ()) -> tuple[SimConfig, str, str]:
    """TEST_KEY and OTHER_KEY acting as two users with `roles`, each owning tasks."""
    first, second = [u for u in users_with(tenant, "active") if owned(tenant, u)][:2]
    callers = (SimCaller(TEST_KEY, first, roles), SimCaller(OTHER_KEY, second, roles))
    return SimConfig(callers=callers), first, second


async def test_a_plan_of_own_tasks_is_its_callers_alone(tmp_path: Path) -> None:
    """A scope "own" plan applied as another user: exit 2; the tenant saw only /users/me."""
    tenant = demo_tenant()
    config, first, _ = two_users(tenant)
    async with sim_running(config, tenant) as sim:
        wd = workdir_for(tmp_path, sim.url, 'scope = "own"\n')
        out = await plan_to(wd, tag_job(wd))
        write_config(wd, sim.url, 'scope = "own"\n', key_env=OTHER_KEY_ENV)
        await sim.reset_stats()
        result = await bulkshare(wd, "apply", str(out), "--yes")
        assert await sent(sim) == [ME]
    assert result.code == 2, result.err
    [line] = error_lines(result.err)
    assert f"the plan covers the own tasks of '{tenant.users[first]['name']}'" in line, line


async def test_a_plan_of_every_task_needs_an_admin_to_apply_it(tmp_path: Path) -> None:
    """An admin's plan applied by a non-admin: on a scope "own" tenant exit 2, on an "all"
    tenant exit 4; either way the tenant saw only /users/me."""
    tenant = demo_tenant()
    user = next(u for u in users_with(tenant, "active") if u != tenant.admin_id)
    config = SimConfig(callers=(SimCaller(OTHER_KEY, user, ("Developer",)),))
    async with sim_running(config, tenant) as sim:
        wd = workdir_for(tmp_path, sim.url)
        out = await plan_to(wd)
        codes = {}
        for scope, expected in (("own", "covers every task of the tenant"), ("all", "neither")):
            write_config(wd, sim.url, f'scope = "{scope}"\n', key_env=OTHER_KEY_ENV)
            await sim.reset_stats()
            result = await bulkshare(wd, "apply", str(out), "--yes")
            [line] = error_lines(result.err)
            assert expected in line and await sent(sim) == [ME], line
            codes[scope] = result.code
    assert codes == {"own": 2, "all": 4}


TAMPERED: dict[str, tuple[dict[str, Any], str]] = {
    "no-tenant-url": ({"tenant_url": None}, "records no tenant URL or caller"),
    "no-caller": ({"caller": None}, "records no tenant URL or caller"),
    "caller-roles-a-string": (
        {"caller": {"id": "u1", "name": "x", "roles": "TenantAdmin"}},
        "roles is not a list of strings",
    ),
    "caller-extra-key": (
        {"caller": {"id": "u1", "name": "x", "roles": [], "admin": True}},
        "caller must be an object with id, name and roles",
    ),
    "bogus-scope": ({"scope": "everything"}, "scope must be one of all, own"),
    "url-a-number": ({"tenant_url": 8080}, "expected a string"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
async def test_a_plan_without_a_usable_binding_is_refused(
    demo_sim: Sim, workdir: Workdir, case: str
) -> None:
    """A plan file missing or mangling tenant_url, caller or scope: exit 2, nothing sent."""
    edit, expected = TAMPERED[case]
    out = await plan_to(workdir)
    rehash(out, edit)
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, "apply", str(out), "--yes")
    assert result.code == 2, result.err
    [line] = error_lines(result.err)
    assert expected in line, line
    assert (await demo_sim.stats())["requests"] == 0


async def test_resume_is_bound_to_the_tenant_url_too(tmp_path: Path) -> None:
    """A run interrupted on one tenant URL is not resumed on another: exit 2, nothing sent."""
    async with sim_running() as first, sim_running() as second:
        wd = workdir_for(tmp_path, first.url)
        applied = await bulkshare(wd, "apply", str(PURGE), "--yes")
        assert applied.code == 0, applied.err
        [run] = (wd.state / "runs").iterdir()
        meta = json.loads((run / "run.json").read_text())
        meta.update(state="interrupted")
        (run / "run.json").write_text(json.dumps(meta))
        write_config(wd, second.url)
        await second.reset_stats()
        result = await bulkshare(wd, "resume", run.name)
        assert await sent(second) == []
    assert result.code == 2, result.err
    assert "plan again against this tenant" in error_lines(result.err)[0]


def tag_job(wd: Workdir) -> Path:
    """A job that tags every task the caller sees."""
    path = wd.path / "tag.toml"
    path.write_text(
        '[job]\nname = "tag"\n[[operations]]\naction = "tag"\ntags = ["q3"]\nwhere.all = true\n'
    )
    return path


async def delete_task(sim: Sim, task_id: str) -> None:
    """Delete a task behind the plan's back, as another admin would."""
    url = f"{sim.url}/api/v1/sharing-tasks/{task_id}"
    headers = {"Authorization": f"Bearer {TEST_KEY}"}
    async with sim.session.delete(url, headers=headers) as resp:
        assert resp.status == 204


@pytest.mark.parametrize("verify", [True, False])
async def test_a_patch_whose_task_is_gone_fails_the_run(
    demo_sim: Sim, workdir: Workdir, verify: bool
) -> None:
    """A planned disable whose task was deleted meanwhile: outcome absent, counted in the
    summary as gone, listed as a problem by `show`, exit 1 (with or without the re-read)."""
    out = await plan_to(workdir)
    changes = json.loads(out.read_text())["changes"]
    gone = changes[0]["task_id"]
    await delete_task(demo_sim, gone)
    result = await bulkshare(
        workdir, "apply", str(out), "--yes", *(() if verify else ("--no-verify",))
    )
    assert result.code == 1, result.err
    assert "1 not done: the task was gone (counted as failed)" in result.out
    [run] = (workdir.state / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["counts"] == {"absent": 1, "applied": len(changes) - 1}
    assert summary["task_gone"] == 1 and summary["exit_code"] == 1
    shown = await bulkshare(workdir, "show", run.name, "--format", "json")
    assert [p["task_id"] for p in json.loads(shown.out)["problems"]] == [gone]


async def test_a_delete_whose_task_is_gone_is_done(demo_sim: Sim, workdir: Workdir) -> None:
    """A planned delete whose task went meanwhile: absent, counted as done, exit 0."""
    out = await plan_to(workdir, PURGE)
    gone = json.loads(out.read_text())["changes"][0]["task_id"]
    await delete_task(demo_sim, gone)
    result = await bulkshare(workdir, "apply", str(out), "--yes")
    assert result.code == 0, result.err
    assert "not done" not in result.out
    [run] = (workdir.state / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["counts"]["absent"] == 1 and summary["task_gone"] == 0
