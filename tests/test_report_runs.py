"""Run and copy reports for an approver: failures grouped by error, each conflict's moved field
(planned vs found), and copies as source → target with the id map, in every format."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bulkshare.sim import SimTenant
from tests.conftest import Workdir, bulkshare
from tests.copy_setup import copy_job, pair_maps, two_tenants, write_map
from tests.simdir import demo_tenant, sim_running, workdir_for
from tests.test_safety import patch_task


@dataclass(frozen=True)
class TroubledRun:
    """A finished run with failures of two kinds and a conflict."""

    wd: Workdir
    run_id: str
    too_old: list[str]  #: patch refused: the schedule starts too far back
    deleted_owner: list[str]  #: reassign refused: the new owner was deleted after planning
    conflict: str  #: its owner moved to another user after planning
    owners: dict[str, str]  #: user id -> name


def owners_with_valid_tasks(tenant: SimTenant, count: int) -> list[tuple[str, list[str]]]:
    """Active owners with at least three VALID tasks, and those tasks."""
    found = []
    for user_id, user in tenant.users.items():
        mine = [
            i
            for i, t in tenant.tasks.items()
            if t["owner"] == user_id and t["statusCode"] == "VALID"
        ]
        if user.get("status") == "active" and len(mine) >= 3:
            found.append((user_id, sorted(mine)))
    assert len(found) >= count
    return found[:count]


@pytest.fixture
async def troubled(tmp_path: Path) -> AsyncIterator[TroubledRun]:
    """Plan a schedule from 2001 for a's tasks (refused) and hand b's to c; then delete c (every
    reassignment refused) and give one of b's tasks to a (a conflict); apply the saved plan."""
    tenant = demo_tenant()
    async with sim_running(tenant=tenant) as sim:
        wd = workdir_for(tmp_path, sim.url)
        (a, a_tasks), (b, b_tasks), (c, _) = owners_with_valid_tasks(tenant, 3)
        job = tmp_path / "handover.toml"
        job.write_text(
            '[job]\nname = "handover"\n'
            f'[[operations]]\naction = "patch"\nwhere.owner = "{a}"\nwhere.status = "VALID"\n'
            'ops = [{ op = "replace", path = "/scheduleOptions", value = { recurrence = '
            '["RRULE:FREQ=DAILY"], startDateTime = "2001-01-01T08:00:00", timezone = "UTC" } }]\n'
            f'[[operations]]\naction = "reassign-owner"\nto = "{c}"\nenable = true\n'
            f'where.owner = "{b}"\nwhere.status = "VALID"\n'
        )
        plan_file = tmp_path / "plan.json"
        planned = await bulkshare(wd, "plan", str(job), "--out", str(plan_file))
        assert planned.code == 0, planned.err
        await patch_task(sim, b_tasks[0], [{"op": "replace", "path": "/ownerId", "value": a}])
        tenant.users[c]["status"] = "deleted"  # an admin removed the new owner meanwhile
        applied = await bulkshare(wd, "apply", str(plan_file), "--yes")
        assert applied.code == 1, applied.err
        [run] = (wd.state / "runs").iterdir()
        names = {u: str(tenant.users[u]["name"]) for u in (a, b, c)}
        yield TroubledRun(wd, run.name, a_tasks, b_tasks[1:], b_tasks[0], names)


def md_cell(text: str) -> str:
    """Text as a Markdown cell writes it: specials escaped."""
    return re.sub(r"([\\`*_\[\]<>|#~!])", r"\\\1", text)


def md_id(text: str) -> str:
    """A regex finding `text` in a Markdown cell."""
    return re.escape(md_cell(text))


def listed(line: str) -> set[str]:
    """The shortened task ids a grouped-failures line names."""
    found = set(re.findall(r"\b([0-9a-f]{11})…", line))
    assert found
    return found


def group_line(text: str, count: int, needle: str) -> str:
    """The one line of the grouped-failures table that holds `needle` and ends in `count`."""
    lines = [line for line in text.splitlines() if needle in line and line.endswith(str(count))]
    assert len(lines) == 1, (needle, lines)
    return lines[0]


async def test_failures_grouped_and_conflict_field_in_text(troubled: TroubledRun) -> None:
    """`show` groups the failures by error (two kinds, with counts and ids) and says the
    conflict's owner moved: planned before, planned after and found, by name."""
    shown = await bulkshare(troubled.wd, "show", troubled.run_id)
    assert shown.code == 0, shown.err
    out = shown.out
    section = out[out.index("Failures by error:") :]
    old = group_line(section, len(troubled.too_old), "older than")
    assert old.startswith("failed ") and listed(old) <= {i[:11] for i in troubled.too_old}
    assert f" +{len(troubled.too_old) - 5} more " in old
    gone = group_line(section, len(troubled.deleted_owner), "is deleted")
    assert gone.startswith("failed ")
    assert listed(gone) <= {i[:11] for i in troubled.deleted_owner}
    # the owner change behind bulkshare's back also disabled the task: both fields moved
    moved = group_line(section, 1, "owner, enabled changed since planning")
    assert moved.startswith("conflict ") and listed(moved) == {troubled.conflict[:11]}
    conflicts = out[out.index("Conflicts: the task changed since planning") :]
    owner, enabled = [x for x in conflicts.splitlines() if x.startswith(troubled.conflict)]
    _, b, c = troubled.owners.values()
    assert re.search(rf" owner +{b} \(\S+\) +{c} \(\S+\) +\S+$", owner), owner
    assert re.search(r" enabled +true +true +false$", enabled), enabled


async def test_failures_grouped_in_markdown_html_csv(troubled: TroubledRun) -> None:
    """Markdown and HTML carry the same groups and the conflict's field; CSV has `found`."""
    md = (await bulkshare(troubled.wd, "show", troubled.run_id, "--format", "markdown")).out
    assert "## Failures by error" in md
    assert re.search(
        rf"^\| failed \| HTTP 400: .*older than.* \| {len(troubled.too_old)} \|$", md, re.M
    )
    assert re.search(
        rf"^\| failed \| HTTP 400: .*is deleted.* \| {len(troubled.deleted_owner)} \|$", md, re.M
    )
    assert "| task | name | field | planned before | planned after | found |" in md
    assert re.search(rf"^\| {troubled.conflict} \| .* \| owner \| ", md, re.M)
    page_path = troubled.wd.path / "run.html"
    result = await bulkshare(troubled.wd, "show", troubled.run_id, "--report", str(page_path))
    assert result.code == 0, result.err
    page = page_path.read_text()
    groups = page[page.index('id="failures-by-error"') :]
    groups = groups[: groups.index("</section>")]
    assert groups.count("<tr><td>failed</td>") == 2 and groups.count("<tr><td>conflict</td>") == 1
    assert f'<td class="num">{len(troubled.too_old)}</td>' in groups
    conflicts = page[page.index('id="conflicts-the-task-changed"') :]
    assert f"<td>{troubled.conflict}</td>" in conflicts and "<td>owner</td>" in conflicts
    rows = csv.DictReader(
        io.StringIO((await bulkshare(troubled.wd, "show", troubled.run_id, "--format", "csv")).out)
    )
    found = {r["task_id"]: r["found"] for r in rows if r["found"]}
    assert list(found) == [troubled.conflict]
    assert json.loads(found[troubled.conflict])["owner"] not in troubled.owners.values()


async def test_copy_plan_and_run_show_source_target_and_id_map(tmp_path: Path) -> None:
    """A copy plan shows each task source → target with owners by name, the id map it applies
    and the ids no map names; its run shows the created ids and the run's id-map.csv."""
    async with two_tenants(tmp_path, tasks=8) as tt:
        apps, users = pair_maps(tt.tenant_a, tt.tenant_b)
        write_map(tmp_path / "apps.csv", apps)
        write_map(tmp_path / "users.csv", users)
        job = copy_job(
            tmp_path / "copy.toml",
            'from = "a"\nwhere.all = true\napp_map = "apps.csv"\nuser_map = "users.csv"\n'
            'unmapped = "keep"\n',
        )
        md_path, plan_path = tmp_path / "plan.md", tmp_path / "plan.json"
        planned = await bulkshare(
            tt.wd,
            "plan",
            str(job),
            "--tenant",
            "b",
            "--out",
            str(plan_path),
            "--report",
            str(md_path),
        )
        assert planned.code == 0, planned.err
        plan = json.loads(plan_path.read_text())
        md = md_path.read_text()
        assert "## Copies: source → target" in md and "## Id map: what each source id becomes" in md
        target_names = {u: str(d["name"]) for u, d in tt.tenant_b.users.items()}
        for change in plan["changes"]:
            src_owner = str(change["task"]["owner"])
            name = target_names[users[src_owner]]
            assert re.search(
                rf"^\| {change['task_id']} \| .* \| {re.escape(name)} \| tenant b \|$", md, re.M
            )
        unmapped = plan["copy"]["unmapped"]
        if unmapped:
            assert "## Ids no map names" in md
            for kind, ids in unmapped.items():
                assert all(
                    f"| {kind} | {md_cell(i)} | kept as it is in the copy |" in md for i in ids
                )
        for old, new in list(users.items())[:3]:
            if any(c["task"]["owner"] == old for c in plan["changes"]):
                pair = rf"^\| owner \| .*{md_id(old)}\) \| .*{md_id(new)}\) \| mapped \|"
                assert re.search(pair, md, re.M), old
        done = await bulkshare(tt.wd, "apply", str(job), "--tenant", "b", "--yes")
        assert done.code == 0, done.err
        [run] = (tmp_path / "state" / "runs").iterdir()
        id_map = list(csv.reader((run / "id-map.csv").read_text().splitlines()))[1:]
        assert id_map
        shown = await bulkshare(tt.wd, "show", run.name, "--format", "markdown")
        assert shown.code == 0, shown.err
        assert "## Id map (id-map.csv): source task → created task" in shown.out
        for source, created in id_map:
            assert re.search(rf"^\| {source} \| {created} \| ", shown.out, re.M)
            assert re.search(
                rf"^\| {source} \| .* \| tenant b \| {created} \| applied \|$", shown.out, re.M
            )
        text = (await bulkshare(tt.wd, "show", run.name)).out
        assert "copy source: tenant a (" in text and "Id map (id-map.csv)" in text
        page = tmp_path / "run.html"
        await bulkshare(tt.wd, "show", run.name, "--report", str(page))
        html = page.read_text()
        assert all(f"<td>{created}</td>" in html for _, created in id_map)
