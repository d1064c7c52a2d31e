"""Check targets at plan time: every new owner a plan would write is resolved through the users
API; an unknown, deleted, disabled or invited one refuses the plan (exit 2) before any write,
and plans and reports show each new owner by name.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from bulkshare.sim import SimTenant
from tests.conftest import Workdir, bulkshare, error_lines
from tests.simdir import demo_tenant, owned, sent, sim_running, users_with, workdir_for

# slow (`.ci/run` runs it with `pytest -m slow`): new owners checked through the CLI
pytestmark = pytest.mark.slow

FILTER = ("POST", "/api/v1/users/actions/filter")


def owners_of_valid(tenant: SimTenant, count: int) -> list[str]:
    """Active users owning at least two VALID tasks, the first `count` of them."""
    found = [
        u
        for u in users_with(tenant, "active")
        if sum(tenant.tasks[t]["statusCode"] == "VALID" for t in owned(tenant, u)) >= 2
    ]
    assert len(found) >= count
    return found[:count]


def target(tenant: SimTenant, status: str) -> str:
    """A user id with this status ("unknown": one the tenant does not have)."""
    return "no-such-user-4f1e" if status == "unknown" else users_with(tenant, status)[0]


def write_job(wd: Workdir, operation: str, name: str = "handover.toml") -> Path:
    """A job file with one [[operations]] table, whose header is on line 3."""
    path = wd.path / name
    path.write_text(f'[job]\nname = "handover"\n[[operations]]\n{operation}')
    return path


def reassign(old: str, new: str) -> str:
    return (
        f'action = "reassign-owner"\nto = "{new}"\nwhere.owner = "{old}"\nwhere.status = "VALID"\n'
    )


@pytest.mark.parametrize("status", ["unknown", "deleted", "disabled", "invited"])
async def test_reassign_to_a_user_who_cannot_own_is_refused(tmp_path: Path, status: str) -> None:
    """`to` naming an unknown, deleted, disabled or invited user: plan and apply exit 2 naming
    it, its status and the operation's line; nothing is written."""
    tenant = demo_tenant()
    [old] = owners_of_valid(tenant, 1)
    new = target(tenant, status)
    async with sim_running(tenant=tenant) as sim:
        wd = workdir_for(tmp_path, sim.url)
        job = write_job(wd, reassign(old, new))
        planned = await bulkshare(wd, "plan", str(job))
        applied = await bulkshare(wd, "apply", str(job), "--yes")
        writes = (await sim.stats())["writes"]
    for result in (planned, applied):
        assert result.code == 2, result.err
        [line] = error_lines(result.err)
        why = "not a user of the tenant" if status == "unknown" else status
        assert f'{job}:3: operations[0].to: new owner "{new}" ({why}) cannot own tasks' in line
        assert line.endswith("on tenant t; nothing was changed"), line
    assert writes == 0 and not (wd.state / "runs").exists()


async def test_an_owner_id_in_a_patch_op_is_checked_too(tmp_path: Path) -> None:
    """`/ownerId` in a `patch` op naming a deleted user: exit 2 naming the op's key."""
    tenant = demo_tenant()
    [old] = owners_of_valid(tenant, 1)
    gone = target(tenant, "deleted")
    op = (
        f'action = "patch"\nwhere.owner = "{old}"\n'
        f'ops = [{{ op = "replace", path = "/ownerId", value = "{gone}" }}]\n'
    )
    async with sim_running(tenant=tenant) as sim:
        wd = workdir_for(tmp_path, sim.url)
        job = write_job(wd, op)
        result = await bulkshare(wd, "apply", str(job), "--yes")
        assert (await sim.stats())["writes"] == 0
    assert result.code == 2, result.err
    [line] = error_lines(result.err)
    assert f'{job}:3: operations[0].ops: new owner "{gone}" (deleted)' in line, line


async def test_a_mapping_file_value_is_checked_too(tmp_path: Path) -> None:
    """A mapping_file row whose new owner is disabled: exit 2 naming it and the mapping."""
    tenant = demo_tenant()
    first, second = owners_of_valid(tenant, 2)
    [active] = [u for u in users_with(tenant, "active") if u not in (first, second)][:1]
    disabled = target(tenant, "disabled")
    async with sim_running(tenant=tenant) as sim:
        wd = workdir_for(tmp_path, sim.url)
        (wd.path / "owners.csv").write_text(
            f"old_owner,new_owner\n{first},{active}\n{second},{disabled}\n"
        )
        job = write_job(
            wd, 'action = "reassign-owner"\nmapping_file = "owners.csv"\nwhere.all = true\n'
        )
        result = await bulkshare(wd, "plan", str(job))
    assert result.code == 2, result.err
    [line] = error_lines(result.err)
    assert f'operations[0].mapping: new owner "{disabled}" (disabled)' in line, line
    assert active not in line


async def test_only_the_targets_the_plan_uses_are_looked_up(tmp_path: Path) -> None:
    """A 5,000-row mapping of which 3 owners have tasks: one users-filter request, and the
    4,997 unused rows (naming nobody) refuse nothing."""
    tenant = demo_tenant()
    olds = owners_of_valid(tenant, 3)
    news = [u for u in users_with(tenant, "active") if u not in olds][:3]
    rows = [*zip(olds, news, strict=True), *((f"gone-{i}", f"nobody-{i}") for i in range(4997))]
    async with sim_running(tenant=tenant) as sim:
        wd = workdir_for(tmp_path, sim.url)
        lines = "".join(f"{old},{new}\n" for old, new in rows)
        (wd.path / "owners.csv").write_text("old_owner,new_owner\n" + lines)
        job = write_job(
            wd, 'action = "reassign-owner"\nmapping_file = "owners.csv"\nwhere.all = true\n'
        )
        await sim.reset_stats()
        result = await bulkshare(wd, "plan", str(job), "--format", "json")
        requests = await sent(sim)
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert {c["task"]["newOwner"] for c in doc["changes"]} == set(news)
    assert requests.count(FILTER) == 1


async def test_many_refused_targets_are_named_a_few_then_counted(tmp_path: Path) -> None:
    """Seven owners mapped to seven unknown users: five ids named, "and 2 more"."""
    tenant = demo_tenant()
    olds = owners_of_valid(tenant, 7)
    mapping = ", ".join(f'"{old}" = "ghost-{i}"' for i, old in enumerate(olds))
    async with sim_running(tenant=tenant) as sim:
        wd = workdir_for(tmp_path, sim.url)
        job = write_job(
            wd, f'action = "reassign-owner"\nmapping = {{ {mapping} }}\nwhere.all = true\n'
        )
        result = await bulkshare(wd, "plan", str(job))
    assert result.code == 2, result.err
    [line] = error_lines(result.err)
    assert "new owners " in line and line.count("(not a user of the tenant)") == 5
    assert "and 2 more cannot own tasks" in line, line


async def test_a_provisioned_user_may_own_tasks(tmp_path: Path) -> None:
    """A provisioned user exists (not signed in yet): reassigning to one plans fine."""
    tenant = demo_tenant()
    [old] = owners_of_valid(tenant, 1)
    new = target(tenant, "provisioned")
    async with sim_running(tenant=tenant) as sim:
        wd = workdir_for(tmp_path, sim.url)
        result = await bulkshare(
            wd, "plan", str(write_job(wd, reassign(old, new))), "--format", "json"
        )
    assert result.code == 0, result.err
    assert {c["after"]["owner"] for c in json.loads(result.out)["changes"]} == {new}


async def test_every_plan_format_shows_old_and_new_owner_by_name(tmp_path: Path) -> None:
    """table, rich-free markdown and html, csv and json name the old and the new owner; undo's
    plan names them the other way round."""
    tenant = demo_tenant()
    old, new = owners_of_valid(tenant, 2)
    old_name, new_name = tenant.users[old]["name"], tenant.users[new]["name"]
    async with sim_running(tenant=tenant) as sim:
        wd = workdir_for(tmp_path, sim.url)
        job = write_job(wd, reassign(old, new))
        out = {fmt: (await bulkshare(wd, "plan", str(job), "--format", fmt)).out for fmt in FORMATS}
        applied = await bulkshare(wd, "apply", str(job), "--yes")
        assert applied.code == 0, applied.err
        [run] = (wd.state / "runs").iterdir()
        undo = await bulkshare(wd, "undo", run.name, "--dry-run")
    arrow = f"owner: {old_name} → {new_name}"
    for fmt in ("table", "markdown", "html"):
        assert arrow in out[fmt], fmt
    rows = list(csv.DictReader(io.StringIO(out["csv"])))
    assert rows and all(r["new_owner"] == new_name and r["new_owner_id"] == new for r in rows)
    assert all(arrow in r["change"] and r["owner"] == old_name for r in rows)
    changes = json.loads(out["json"])["changes"]
    assert {(c["task"]["newOwner"], c["task"]["newOwnerName"]) for c in changes} == {
        (new, new_name)
    }
    assert re.search(rf"owner: {re.escape(new_name)} → {re.escape(old_name)}", undo.out), undo.out


FORMATS = ("table", "json", "csv", "markdown", "html")
