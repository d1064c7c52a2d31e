"""`bulkshare export` against the simulator: the file read back equal to the tenant, job
selections, the CSV inventory with tenant text escaped, and a tenant that only ever sees reads.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulkshare.export import (
    EXPORT_FORMAT,
    INVENTORY_COLUMNS,
    ExportHeader,
    open_export,
    read_export,
    verify_export,
)
from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.conftest import (
    ROOT,
    TEST_KEY,
    TEST_KEY_ENV,
    Result,
    Sim,
    Workdir,
    bulkshare,
)

Task = dict[str, Any]
ORPHANED = ROOT / "jobs" / "disable-orphaned.toml"
PURGE = ROOT / "jobs" / "purge-deleting.toml"


def exported(path: Path) -> tuple[ExportHeader, list[Task]]:
    """The header and the tasks of a verified export file."""
    verify_export(path)
    items = list(read_export(path))
    header = items[0]
    assert isinstance(header, ExportHeader)
    return header, [t for t in items[1:] if isinstance(t, dict)]


def job_file(wd: Workdir, body: str) -> Path:
    """A job file in the workdir, named `select`."""
    path = wd.path / "select.toml"
    path.write_text(f'[job]\nname = "select"\n\n{body}')
    return path


# -- round trip ---------------------------------------------------------------------------


async def test_round_trip_reads_back_every_task_as_the_tenant_holds_it(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """Every task of the tenant comes back from the file equal to the simulator's own document."""
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, "export", "--out", "all.jsonl")
    assert result.code == 0, result.err
    header, tasks = exported(workdir.path / "all.jsonl")
    tenant = await demo_sim.tasks()
    assert [t["id"] for t in tasks] == list(tenant)  # the list's order, each task once
    assert {t["id"]: t for t in tasks} == tenant
    assert all("links" not in t for t in tasks)
    assert (header.format, header.tenant, header.url) == (EXPORT_FORMAT, "t", demo_sim.url)
    assert (header.job, header.where, header.simulated) == (None, None, False)
    lines = result.out.strip().splitlines()
    assert len(lines) == 1 and f"exported {len(tenant)} of {len(tenant)} tasks" in lines[0]
    with open_export(workdir.path / "all.jsonl") as reader:
        assert sum(1 for _ in reader.tasks()) == len(tenant)
        assert reader.trailer is not None and reader.trailer.sha256 in lines[0]
    assert f"tenant t: {demo_sim.url}" in result.err  # the announcement, on stderr
    stats = await demo_sim.stats()
    assert set(stats["by_method"]) == {"GET"} and stats["writes"] == 0


async def test_builtin_simulator_is_named_simulated_in_header_and_summary(tmp_path: Path) -> None:
    """Without a configured tenant the export says SIMULATED in its header, stdout and stderr."""
    config = tmp_path / "bulkshare.toml"
    config.write_text('state_dir = "state"\n')
    wd = Workdir(tmp_path, config, {k: v for k, v in os.environ.items() if k != "BULKSHARE_CONFIG"})
    result = await bulkshare(wd, "export", "--out", "sim.jsonl")
    assert result.code == 0, result.err
    header, tasks = exported(tmp_path / "sim.jsonl")
    assert (header.tenant, header.url, header.simulated) == ("sim", "builtin:sim", True)
    assert len(tasks) == 1000
    assert "SIMULATED" in result.out and "SIMULATED" in result.err
    check = await bulkshare(wd, "export", "--verify", "sim.jsonl")
    assert check.code == 0 and "SIMULATED" in check.out and "1000 tasks" in check.out


async def test_stdout_export_is_a_whole_file_and_the_summary_goes_to_stderr(
    workdir: Workdir, demo_sim: Sim
) -> None:
    """`--out -` streams the export on stdout (it verifies) and keeps stdout for it alone."""
    result = await bulkshare(workdir, "export", "--out", "-")
    assert result.code == 0, result.err
    path = workdir.path / "piped.jsonl"
    path.write_text(result.out)
    _, tasks = exported(path)
    assert len(tasks) == len(await demo_sim.tasks())
    assert "exported" in result.err


# -- selection by a job ---------------------------------------------------------------------


def _errors(task: Task) -> set[str]:
    return {e["value"] for e in task.get("taskErrors", [])}


async def export_ids(wd: Workdir, job: Path, out: str = "sel.jsonl") -> tuple[Result, list[str]]:
    """Run an export of `job`; the exit and the ids in the file."""
    result = await bulkshare(wd, "export", str(job), "--out", out)
    assert result.code == 0, result.err
    _, tasks = exported(wd.path / out)
    return result, [t["id"] for t in tasks]


async def test_job_exports_only_what_its_where_selects(demo_sim: Sim, workdir: Workdir) -> None:
    """disable-orphaned's where selects exactly the enabled tasks with an owner error."""
    tenant = await demo_sim.tasks()
    want = [
        i
        for i, t in tenant.items()
        if t.get("enabled") is True and _errors(t) & {"ORPHAN", "OWNER_DISABLED"}
    ]
    result, ids = await export_ids(workdir, ORPHANED)
    assert ids == want and 0 < len(ids) < len(tenant)
    assert f"exported {len(want)} of {len(tenant)} tasks" in result.out
    header, _ = exported(workdir.path / "sel.jsonl")
    assert header.job == "disable-orphaned"
    assert header.where == 'task_errors = ["ORPHAN", "OWNER_DISABLED"] and enabled = true'


async def test_job_with_several_operations_exports_the_union(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """A task any operation's where selects is exported once; the others are left out."""
    job = job_file(
        workdir,
        '[[operations]]\naction = "enable"\nwhere.type = "chart-monitoring"\n'
        "where.enabled = false\n\n"
        '[[operations]]\naction = "tag"\ntags = ["x"]\nwhere.tags = ["finance"]\n'
        'where.name = ["Daily*", "Weekly*"]\n',
    )
    tenant = await demo_sim.tasks()
    want = [
        i
        for i, t in tenant.items()
        if (t["type"] == "chart-monitoring" and t["enabled"] is False)
        or ("finance" in t["tags"] and t["name"].startswith(("Daily", "Weekly")))
    ]
    _, ids = await export_ids(workdir, job)
    assert ids == want and want
    header, _ = exported(workdir.path / "sel.jsonl")
    assert header.where is not None and " or " in header.where


async def test_owner_status_selection_looks_owners_up_and_sends_no_write(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """where.owner_status matches by users-API status (an absent owner is deleted); reads only."""
    job = job_file(
        workdir, '[[operations]]\naction = "delete"\nwhere.owner_status = ["deleted", "disabled"]\n'
    )
    users = {u["id"]: u["status"] for u in await demo_sim.users()}
    tenant = await demo_sim.tasks()
    want = [
        i for i, t in tenant.items() if users.get(t["owner"], "deleted") in ("deleted", "disabled")
    ]
    await demo_sim.reset_stats()
    _, ids = await export_ids(workdir, job)
    assert ids == want and want
    stats = await demo_sim.stats()
    assert stats["writes"] == 0
    sent = {(method, path) for _, method, path, _ in stats["timeline"]}
    assert {m for m, _ in sent} == {"GET", "POST"}
    assert {p for m, p in sent if m == "POST"} == {"/api/v1/users/actions/filter"}


async def test_a_job_of_writes_is_only_read_by_export(demo_sim: Sim, workdir: Workdir) -> None:
    """Exporting purge-deleting selects the DELETING tasks and sends GETs only, no DELETE."""
    tenant = await demo_sim.tasks()
    await demo_sim.reset_stats()
    _, ids = await export_ids(workdir, PURGE)
    assert ids == [i for i, t in tenant.items() if t["statusCode"] == "DELETING"] and ids
    stats = await demo_sim.stats()
    assert set(stats["by_method"]) == {"GET"} and stats["writes"] == 0
    assert await demo_sim.tasks() == tenant


# -- CSV inventory --------------------------------------------------------------------------


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The CSV file's rows, by column, as the csv module reads them."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == INVENTORY_COLUMNS
        return list(reader)


def defused(text: str) -> str:
    """What a spreadsheet would take for a formula, with the apostrophe that stops it."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def expected_row(t: Task) -> dict[str, str]:
    """The inventory row of a task without control characters, worked out from its document."""
    r = t.get("recipients", {})
    viewed = t.get("lastViewed", "")
    row = {
        "id": t["id"],
        "name": t["name"],
        "type": t["type"],
        "app": t["appName"],
        "app_id": t["appId"],
        "owner": t["ownerName"],
        "owner_id": t["owner"],
        "enabled": "true" if t["enabled"] else "false",
        "status": t["statusCode"],
        "task_errors": "; ".join(e["value"] for e in t.get("taskErrors", [])),
        "last_viewed": "" if viewed.startswith("0001") else viewed,
        "next_run": t.get("nextScheduledRun")
        or t.get("scheduleOptions", {}).get("nextExecutionTime", ""),
        "recipients": str(
            len(r.get("userIds", []))
            + len(r.get("groupIds", []))
            + len(r.get("emailAddresses", []))
        ),
    }
    return {k: defused(v) for k, v in row.items()}


async def test_csv_inventory_has_the_columns_and_values(demo_sim: Sim, workdir: Workdir) -> None:
    """`--format csv` parses with the csv module: one row per task, the values of its document."""
    result = await bulkshare(workdir, "export", "--out", "inventory.txt", "--format", "csv")
    assert result.code == 0, result.err
    rows = csv_rows(workdir.path / "inventory.txt")
    tenant = await demo_sim.tasks()
    assert [r["id"] for r in rows] == list(tenant)
    by_id = {r["id"]: r for r in rows}
    with_errors = [i for i, t in tenant.items() if len(_errors(t)) > 1][:3]
    unviewed = [i for i, t in tenant.items() if "lastViewed" not in t][:2]
    disabled = [i for i, t in tenant.items() if t["enabled"] is False][:2]
    for task_id in [*with_errors, *unviewed, *disabled, next(iter(tenant))]:
        assert by_id[task_id] == expected_row(tenant[task_id]), task_id
    assert any(r["task_errors"].count(";") for r in rows)  # several errors joined


async def test_csv_is_chosen_by_suffix_and_a_job_selects_its_rows(
    demo_sim: Sim, workdir: Workdir
) -> None:
    """An `.csv` file gets the inventory without --format; a job keeps only its tasks' rows."""
    result = await bulkshare(workdir, "export", str(ORPHANED), "--out", "orphaned.csv")
    assert result.code == 0, result.err
    rows = csv_rows(workdir.path / "orphaned.csv")
    tenant = await demo_sim.tasks()
    assert rows and all(tenant[r["id"]]["enabled"] is True for r in rows)
    assert all({"ORPHAN", "OWNER_DISABLED"} & set(r["task_errors"].split("; ")) for r in rows)


HOSTILE: dict[str, dict[str, str]] = {
    "name": {
        "=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0",
        "Weekly\x1b[31m red\nline\tend\x00": "Weekly\\x1b[31m red\\nline\\tend\\x00",
        "\t=1+1": "'\\t=1+1",
    },
    "ownerName": {"@SUM(A1:A9)": "'@SUM(A1:A9)", "-2+3": "'-2+3", "Zoë\r\n": "Zoë\\r\\n"},
    "appName": {'+HYPERLINK("http://x")': '\'+HYPERLINK("http://x")', "a\x7fb": "a\\x7fb"},
}


@pytest.fixture
async def hostile_sim() -> AsyncIterator[Sim]:
    """A tenant whose first tasks carry formulas and control characters in their text fields."""
    tenant = SimTenant.seed(40, 7)
    tasks = iter(tenant.tasks.values())
    for field, cases in HOSTILE.items():
        for raw in cases:
            next(tasks)[field] = raw
    async with (
        running_sim(tenant, SimConfig(api_key=TEST_KEY)) as url,
        aiohttp.ClientSession() as session,
    ):
        yield Sim(url, session)


def sim_workdir(tmp_path: Path, sim: Sim) -> Workdir:
    """A workdir whose only tenant `t` is `sim`."""
    config = tmp_path / "bulkshare.toml"
    config.write_text(
        f'state_dir = "state"\n[tenants.t]\nurl = "{sim.url}"\napi_key_env = "{TEST_KEY_ENV}"\n'
    )
    env = {**os.environ, TEST_KEY_ENV: TEST_KEY}
    env.pop("BULKSHARE_CONFIG", None)
    return Workdir(tmp_path, config, env)


async def test_csv_defuses_formulas_and_escapes_control_characters(
    hostile_sim: Sim, tmp_path: Path
) -> None:
    """Tenant text is data: formula-like cells get an apostrophe, control characters are escaped."""
    wd = sim_workdir(tmp_path, hostile_sim)
    assert (await bulkshare(wd, "export", "--out", "t.csv")).code == 0
    assert (await bulkshare(wd, "export", "--out", "t.jsonl")).code == 0
    data = (tmp_path / "t.csv").read_bytes()
    assert re.search(rb"[\x00-\x09\x0b-\x1f\x7f]", data) is None  # only the row ends remain
    rows = csv_rows(tmp_path / "t.csv")
    column = {"name": "name", "ownerName": "owner", "appName": "app"}
    cells = {field: {r[column[field]] for r in rows} for field in HOSTILE}
    for field, cases in HOSTILE.items():
        for raw, shown in cases.items():
            assert shown in cells[field], (field, raw)
    _, tasks = exported(tmp_path / "t.jsonl")  # the JSON lines keep the text exactly
    names = {t["name"] for t in tasks}
    assert set(HOSTILE["name"]) <= names
