"""Copy jobs end to end: tenant a -> tenant b with app and user maps, quiet creation (disabled,
never executed, marked), owner and enabled as in the source, reruns that write nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bulkshare.cli import main
from bulkshare.copy.body import app_of
from bulkshare.copy.marker import marker_for, source_name

from .conftest import bulkshare, error_lines
from .copy_setup import copy_job, marked, pair_maps, task_writes, two_tenants, write_map


async def test_copy_between_tenants(tmp_path: Path) -> None:
    """Every selected task of a exists once in b, mapped, owned and enabled as in a, never run."""
    async with two_tenants(tmp_path) as tt:
        apps, users = pair_maps(tt.tenant_a, tt.tenant_b)
        write_map(tmp_path / "apps.csv", apps)
        write_map(tmp_path / "users.csv", users)
        job = copy_job(
            tmp_path / "copy.toml",
            'from = "a"\nwhere.all = true\napp_map = "apps.csv"\nuser_map = "users.csv"\n'
            'unmapped = "keep"\n',
        )
        source = {k: v for k, v in (await tt.a.tasks()).items() if v["statusCode"] != "DELETING"}
        before_b = await tt.b.tasks()
        executions_before = (await tt.b.stats()).get("executions", {})
        done = await bulkshare(tt.wd, "apply", str(job), "--tenant", "b", "--yes")
        assert done.code == 0, done.err
        after_b = await tt.b.tasks()
        copies = marked({k: v for k, v in after_b.items() if k not in before_b})
        assert len(copies) == len(source)
        src = source_name(tt.a.url)
        for task_id, original in source.items():
            copy = copies[marker_for(src, task_id)]
            assert copy["owner"] == users[original["owner"]]
            assert copy["enabled"] is original["enabled"]
            # a template-sharing task names its app in no template: nothing to re-point
            in_template = app_of({"templates": original["templates"]}) != ""
            assert copy["appId"] == (apps[original["appId"]] if in_template else "")
            assert copy["name"] == original["name"]
        assert (await tt.b.stats()).get("executions", {}) == executions_before
        run_dir = next((tmp_path / "state" / "runs").iterdir())
        rows = list(csv.reader((run_dir / "id-map.csv").read_text().splitlines()))
        assert rows[0] == ["source_id", "target_id"]
        assert {r[0] for r in rows[1:]} == set(source)
        assert {r[1] for r in rows[1:]} == {copies[marker_for(src, s)]["id"] for s in source}
        await tt.b.reset_stats()
        await tt.a.reset_stats()
        again = await bulkshare(tt.wd, "apply", str(job), "--tenant", "b", "--yes")
        assert again.code == 0, again.err
        assert await tt.b.tasks() == after_b
        # a rerun of a finished copy sends no write to either tenant
        assert task_writes(await tt.b.stats()) == [] == task_writes(await tt.a.stats())
        assert (await tt.b.stats())["writes"] == 0


async def test_unmapped_app_refuses_the_plan(tmp_path: Path) -> None:
    """With unmapped = "refuse", an app no map names refuses the plan (exit 2), nothing written."""
    async with two_tenants(tmp_path) as tt:
        apps, users = pair_maps(tt.tenant_a, tt.tenant_b)
        missing = sorted(apps)[0]
        del apps[missing]
        job = copy_job(
            tmp_path / "copy.toml",
            f'from = "a"\nwhere.all = true\napp_map = {_inline(apps)}\n'
            f"user_map = {_inline(users)}\n",
        )
        before_b = await tt.b.tasks()
        await tt.b.reset_stats()
        await tt.a.reset_stats()
        result = await bulkshare(tt.wd, "plan", str(job), "--tenant", "b")
        assert result.code == 2, result.err
        (line,) = error_lines(result.err)
        assert missing in line and "copy.app_map" in line and "copy.toml:4" in line
        assert await tt.b.tasks() == before_b
        for stats in (await tt.b.stats(), await tt.a.stats()):
            assert stats["writes"] == 0 and task_writes(stats) == []


def _inline(mapping: dict[str, str]) -> str:
    return "{ " + ", ".join(f'"{k}" = "{v}"' for k, v in mapping.items()) + " }"


def test_validate_says_where_a_copy_job_copies_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A copy job has no operations: its `ok:` line names its source, not `0 operation(s)`."""
    every = "where.all = true\n"
    from_tenant = copy_job(tmp_path / "a.toml", f'from = "a"\ndelete_source = true\n{every}')
    export = tmp_path / "backup.jsonl"
    from_file = copy_job(tmp_path / "f.toml", f'from_file = "{export}"\n{every}', "restore")
    assert main(["validate", str(from_tenant), str(from_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"ok: {from_tenant}: job copy-a-b, copy from tenant a, then deletes the source tasks",
        f"ok: {from_file}: job restore, copy from file {export}",
    ]
