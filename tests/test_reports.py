"""Reports of plans and runs in every format, `runs` and `show`, against the real simulator."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bulkshare.config import Limits
from bulkshare.plan import Change, Plan
from bulkshare.report import ReportFormat, render_plan, render_run
from bulkshare.report.export import CSV_COLUMNS, CSV_RUN_COLUMNS
from bulkshare.report.runs import RunReport
from bulkshare.run import RunDir
from tests.conftest import ROOT, Sim, Workdir, bulkshare
from tests.test_safety import active_users, patch_task

# slow (`.ci/run` runs it with `pytest -m slow`): every report format through the CLI
pytestmark = pytest.mark.slow

HOSTILE = "<script>alert(1)</script>"
#: rich markup and a terminal escape sequence (clear screen) in a task name
MARKUP = "[bold]boss[/bold]\x1b[2J"
ORPHANED = ROOT / "jobs" / "disable-orphaned.toml"


async def planned_ids(wd: Workdir, job: Path) -> list[str]:
    """Task ids a job plans to change, in plan order."""
    result = await bulkshare(wd, "plan", str(job), "--format", "json")
    assert result.code == 0, result.err
    return [c["task_id"] for c in json.loads(result.out)["changes"]]


async def rename(sim: Sim, task_id: str, name: str) -> None:
    """Give a task a new name, as its owner would in the console."""
    await patch_task(sim, task_id, [{"op": "replace", "path": "/name", "value": name}])


@pytest.fixture
async def hostile_plan(demo_sim: Sim, workdir: Workdir) -> list[str]:
    """disable-orphaned with one planned task named like a script and one like rich markup."""
    ids = await planned_ids(workdir, ORPHANED)
    await rename(demo_sim, ids[0], HOSTILE)
    await rename(demo_sim, ids[1], MARKUP)
    return ids


def assert_self_contained(page: str) -> None:
    """No script, no external URL, no reference to any other resource."""
    lowered = page.lower()
    for needle in ("<script", "http://", "https://", "src=", "href=", "<link", "url(", "@import"):
        assert needle not in lowered, needle


async def test_plan_csv_has_one_row_per_change(workdir: Workdir, hostile_plan: list[str]) -> None:
    """`plan --format csv` parses as CSV with the documented columns and one row per change."""
    result = await bulkshare(workdir, "plan", str(ORPHANED), "--format", "csv")
    assert result.code == 0, result.err
    reader = csv.DictReader(io.StringIO(result.out))
    rows = list(reader)
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    assert [r["task_id"] for r in rows] == hostile_plan
    first = rows[0]
    assert first["name"] == HOSTILE and first["index"] == "0"
    assert (first["action"], first["method"]) == ("disable", "PATCH")
    assert json.loads(first["before"]) == {"enabled": True}
    assert json.loads(first["after"]) == {"enabled": False}
    assert first["change"] == "enabled: true → false"
    assert all(r["owner"] and r["owner_id"] and r["app_id"] and r["type"] for r in rows)


async def test_plan_markdown_table(workdir: Workdir, hostile_plan: list[str]) -> None:
    """`plan --format markdown` has the summary, the table header and a row per change."""
    result = await bulkshare(workdir, "plan", str(ORPHANED), "--format", "markdown")
    assert result.code == 0, result.err
    md = result.out
    assert md.startswith("# Plan: job disable-orphaned on tenant t\n")
    header = "| task | name | owner | app | type | action | before → after |"
    assert header in md
    lines = md[md.index(header) :].splitlines()
    assert lines[1] == "| --- | --- | --- | --- | --- | --- | --- | --- |"  # and "matched on"
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert [r.split(" | ")[0].lstrip("| ") for r in rows] == hostile_plan
    assert "\\<script\\>alert(1)\\</script\\>" in rows[0] and HOSTILE not in md
    assert f"| disable | {len(hostile_plan)} |" in md
    assert "**time:** " in md


async def test_plan_json_report_round_trips(workdir: Workdir, hostile_plan: list[str]) -> None:
    """A JSON report is the plan document plus the estimate: without it, it loads as a Plan."""
    out, report = workdir.path / "p.json", workdir.path / "r.json"
    result = await bulkshare(
        workdir, "plan", str(ORPHANED), "--out", str(out), "--report", str(report)
    )
    assert result.code == 0, result.err
    assert result.out == "" and f"report written to {report}" in result.err
    doc = json.loads(report.read_text())
    assert doc["estimate"]["writes"] == len(hostile_plan) and doc["estimate"]["fits_one_window"]
    del doc["estimate"]
    loaded = Plan.from_json(doc, report)
    assert loaded.changes == Plan.read(out).changes
    assert loaded.changes[0].task["name"] == HOSTILE


async def test_plan_html_report(workdir: Workdir, hostile_plan: list[str]) -> None:
    """The HTML report holds summary, estimate, three SVG charts and every change, all escaped."""
    report = workdir.path / "plan.html"
    result = await bulkshare(workdir, "plan", str(ORPHANED), "--report", str(report))
    assert result.code == 0, result.err
    assert result.out == ""
    page = report.read_text()
    assert_self_contained(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'id="summary"' in page and "fit in one window" in page
    assert f'<td class="num">{len(hostile_plan)}</td>' in page
    assert page.count("<svg ") == 3
    for caption in ("Changes by owner", "Changes by app", "Changes by type"):
        assert f"<figcaption>{caption}</figcaption>" in page
    table = page[page.index('<table class="changes">') :]
    ids = re.findall(r'<td class="id">([0-9a-f]+)</td>', table)
    assert ids == hostile_plan
    assert "before → after" in table and "enabled: true → false" in table


async def test_report_format_by_suffix_or_flag(workdir: Workdir, hostile_plan: list[str]) -> None:
    """The suffix picks the file's format; an explicit --format wins and also prints."""
    md, txt, forced = (workdir.path / n for n in ("r.md", "r.txt", "r.html"))
    for path in (md, txt):
        result = await bulkshare(workdir, "plan", str(ORPHANED), "--report", str(path))
        assert result.code == 0 and result.out == "", result.err
    assert md.read_text().startswith("# Plan: ")
    assert txt.read_text().startswith("plan: job disable-orphaned on tenant t: ")
    result = await bulkshare(
        workdir, "plan", str(ORPHANED), "--report", str(forced), "--format", "csv"
    )
    assert result.code == 0, result.err
    assert forced.read_text() == result.out
    assert len(list(csv.DictReader(io.StringIO(result.out)))) == len(hostile_plan)


async def test_plan_report_per_tenant(demo_sim: Sim, workdir: Workdir) -> None:
    """With several tenants, --report writes one file per tenant, named after it."""
    text = workdir.config.read_text()
    workdir.config.write_text(text + text.replace("[tenants.t]", "[tenants.u]").split("\n", 1)[1])
    report = workdir.path / "plan.html"
    result = await bulkshare(
        workdir, "plan", str(ORPHANED), "--tenant", "all", "--report", str(report)
    )
    assert result.code == 0, result.err
    for tenant in ("t", "u"):
        page = (workdir.path / f"plan.{tenant}.html").read_text()
        assert f"on tenant {tenant}</h1>" in page
    assert not report.exists()


async def test_plan_table_on_a_terminal(workdir: Workdir, hostile_plan: list[str]) -> None:
    """On a terminal the table is drawn by rich; markup and escape codes in names stay inert."""
    out = workdir.path / "p.json"
    result = await bulkshare(workdir, "plan", str(ORPHANED), "--out", str(out))
    assert result.code == 0, result.err
    assert "\x1b" not in result.out and "\\x1b[2J" in result.out
    drawn = render_plan(Plan.read(out), Limits(), ReportFormat.TABLE, True, 200)
    text = re.sub(r"\x1b\[[0-9;]*m", "", drawn)  # rich's own colours
    assert "┃ task" in text and HOSTILE in text and "Changes per action" in text
    assert "[bold]boss[/bold]\\x1b[2J" in text and "\x1b" not in text


@dataclass(frozen=True)
class ProblemRun:
    """A finished run with failures, a conflict and applied changes."""

    run_id: str
    failed: list[str]
    conflict: str
    applied: list[str]


async def owners_with_tasks(sim: Sim, count: int) -> list[tuple[str, list[str]]]:
    """Active owners with at least three VALID tasks, and those tasks."""
    tasks = await sim.tasks()
    found = []
    for owner in active_users(await sim.users()):
        mine = [i for i, t in tasks.items() if t["owner"] == owner and t["statusCode"] == "VALID"]
        if len(mine) >= 3:
            found.append((owner, sorted(mine)))
    assert len(found) >= count
    return found[:count]


@pytest.fixture
async def problem_run(demo_sim: Sim, workdir: Workdir) -> ProblemRun:
    """Plan a schedule starting in 2001 for one owner's tasks (the service refuses it) and hand
    another's to a real user; change one task in between (a conflict); apply the saved plan."""
    (a, a_tasks), (b, b_tasks), (c, _) = await owners_with_tasks(demo_sim, 3)
    job = workdir.path / "handover.toml"
    job.write_text(
        '[job]\nname = "handover"\n'
        f'[[operations]]\naction = "patch"\nwhere.owner = "{a}"\nwhere.status = "VALID"\n'
        'ops = [{ op = "replace", path = "/scheduleOptions", value = { recurrence = '
        '["RRULE:FREQ=DAILY"], startDateTime = "2001-01-01T08:00:00", timezone = "UTC" } }]\n'
        f'[[operations]]\naction = "reassign-owner"\nto = "{c}"\nenable = true\n'
        f'where.owner = "{b}"\nwhere.status = "VALID"\n'
    )
    await rename(demo_sim, b_tasks[1], HOSTILE)
    plan_file = workdir.path / "plan.json"
    planned = await bulkshare(workdir, "plan", str(job), "--out", str(plan_file))
    assert planned.code == 0, planned.err
    await patch_task(demo_sim, b_tasks[0], [{"op": "replace", "path": "/ownerId", "value": a}])
    applied = await bulkshare(workdir, "apply", str(plan_file), "--yes")
    assert applied.code == 1, applied.err
    [run] = (workdir.state / "runs").iterdir()
    return ProblemRun(run.name, a_tasks, b_tasks[0], b_tasks[1:])


async def test_show_lists_failures_and_conflicts(workdir: Workdir, problem_run: ProblemRun) -> None:
    """`show` prints outcomes per action and each failure and conflict with status and error."""
    result = await bulkshare(workdir, "show", problem_run.run_id)
    assert result.code == 0, result.err
    out = result.out
    problems = len(problem_run.failed) + 1
    assert f"failures and conflicts: {problems}" in out
    totals = rf"^total +{len(problem_run.applied)} +1 +{len(problem_run.failed)} +\d+$"
    assert re.search(totals, out, re.M), out
    for task_id in problem_run.failed:
        line = next(line for line in out.splitlines() if line.startswith(task_id))
        assert re.search(r"patch\s+failed\s+400\s+HTTP 400: .*older than", line), line
    line = next(line for line in out.splitlines() if line.startswith(problem_run.conflict))
    assert re.search(r"reassign-owner\s+conflict\s+-\s+owner is \"", line), line
    assert not any(line.startswith(tuple(problem_run.applied)) for line in out.splitlines())
    # the contract's name for this report is `text`; `table` is the same report
    for name in ("text", "table"):
        named = await bulkshare(workdir, "show", problem_run.run_id, "--format", name)
        assert (named.code, named.out) == (0, out), named.err


async def test_show_json_keeps_meta_summary_problems(
    workdir: Workdir, problem_run: ProblemRun
) -> None:
    """`show --format json` has the run meta, summary and problem records, plus every change."""
    result = await bulkshare(workdir, "show", problem_run.run_id, "--format", "json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["run"]["run_id"] == problem_run.run_id and doc["run"]["state"] == "finished"
    expected = {
        "applied": len(problem_run.applied),
        "conflict": 1,
        "failed": len(problem_run.failed),
    }
    assert doc["summary"]["counts"] == doc["counts"] == expected
    assert {p["task_id"]: p["outcome"] for p in doc["problems"]} == {
        problem_run.conflict: "conflict",
        **{i: "failed" for i in problem_run.failed},
    }
    assert all(p["hash"] for p in doc["problems"])
    assert len(doc["changes"]) == sum(expected.values())


async def test_show_csv_and_markdown(workdir: Workdir, problem_run: ProblemRun) -> None:
    """A run's CSV has each change's outcome and status; its Markdown lists the problems."""
    result = await bulkshare(workdir, "show", problem_run.run_id, "--format", "csv")
    assert result.code == 0, result.err
    reader = csv.DictReader(io.StringIO(result.out))
    rows = {r["task_id"]: r for r in reader}
    assert tuple(reader.fieldnames or ()) == CSV_RUN_COLUMNS
    assert {i for i, r in rows.items() if r["outcome"] == "failed"} == set(problem_run.failed)
    assert rows[problem_run.conflict]["outcome"] == "conflict"
    assert all(rows[i]["http_status"] == "204" for i in problem_run.applied)
    assert all(rows[i]["http_status"] == "400" for i in problem_run.failed)
    assert rows[problem_run.applied[0]]["name"] == HOSTILE
    result = await bulkshare(workdir, "show", problem_run.run_id, "--format", "markdown")
    problems = len(problem_run.failed) + 1
    assert f"## Failures and conflicts ({problems})" in result.out
    assert "| action | applied | conflict | failed | total |" in result.out


async def test_show_html_report(workdir: Workdir, problem_run: ProblemRun) -> None:
    """A run's HTML page lists problems and every change with its outcome, escaped, offline."""
    report = workdir.path / "run.htm"
    result = await bulkshare(workdir, "show", problem_run.run_id, "--report", str(report))
    assert result.code == 0 and result.out == "", result.err
    page = report.read_text()
    assert_self_contained(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    problems = page[page.index('<section id="problems">') : page.index('<section id="charts">')]
    assert problems.count('<td class="outcome-failed">failed</td>') == len(problem_run.failed)
    assert problems.count('<td class="outcome-conflict">conflict</td>') == 1
    changes = page[page.index('<table class="changes">') :]
    assert changes.count('<td class="outcome-applied">applied</td>') == len(problem_run.applied)
    assert page.count("<svg ") == 3


async def test_runs_table_and_json(workdir: Workdir, problem_run: ProblemRun) -> None:
    """`runs` lists every run with job, tenant, state and counts; `--format json` too."""
    second = await bulkshare(workdir, "apply", str(ROOT / "jobs" / "purge-deleting.toml"), "--yes")
    assert second.code == 0, second.err
    result = await bulkshare(workdir, "runs")
    assert result.code == 0, result.err
    header, _, first, last = result.out.splitlines()
    assert header.split() == ["run", "id", "job", "tenant", "started", "state", "exit", "changes"]
    assert first.startswith(problem_run.run_id) and " handover " in first
    counts = f"applied {len(problem_run.applied)}, conflict 1, failed {len(problem_run.failed)}"
    assert re.search(rf" t +\S+ +finished +1 +{counts}$", first), first
    assert re.search(r" purge-deleting +t +\S+ +finished +0 +applied 40$", last), last
    listed = json.loads((await bulkshare(workdir, "runs", "--format", "json")).out)
    assert [r["job"] for r in listed] == ["handover", "purge-deleting"]
    assert listed[1]["counts"] == {"applied": 40} and listed[1]["planned"] == 40


def interrupt_after(run: Path, changes: int) -> None:
    """Leave a finished run as a crash would have: the audit log's first records only."""
    lines = (run / "audit.jsonl").read_bytes().splitlines(keepends=True)
    (run / "audit.jsonl").write_bytes(b"".join(lines[: 1 + changes]))
    # the checkpoint notes how far the log got, so a cut log would be refused: drop it too
    for name in ("checkpoint.sqlite", "checkpoint.sqlite-wal", "checkpoint.sqlite-shm"):
        (run / name).unlink(missing_ok=True)
    (run / "summary.json").unlink()
    meta = json.loads((run / "run.json").read_text())
    meta.update(state="interrupted")
    del meta["exit_code"], meta["ended"]
    (run / "run.json").write_text(json.dumps(meta))


async def test_interrupted_run_shows_pending(demo_sim: Sim, workdir: Workdir) -> None:
    """An unfinished run reports the changes it has no record of as pending."""
    result = await bulkshare(workdir, "apply", str(ROOT / "jobs" / "purge-deleting.toml"), "--yes")
    assert result.code == 0, result.err
    [run] = (workdir.state / "runs").iterdir()
    interrupt_after(run, 10)
    report = RunReport.load(RunDir(run))
    assert report.state == "interrupted" and report.summary is None
    assert report.by_outcome() == {"applied": 10, "pending": 30}
    assert [r.outcome for r in report.rows[9:11]] == ["applied", "pending"]
    listed = await bulkshare(workdir, "runs")
    assert re.search(r"interrupted +- +applied 10, pending 30$", listed.out, re.M), listed.out
    shown = await bulkshare(workdir, "show", run.name)
    assert re.search(r"^delete +10 +30 +40$", shown.out, re.M), shown.out
    assert "state: interrupted" in shown.out
    page = render_run(report, ReportFormat.HTML)
    assert page.count('<td class="outcome-pending">pending</td>') == 30


async def test_show_unknown_run_and_bad_report_path(workdir: Workdir) -> None:
    """An unknown run id, or a report path that cannot be written, ends in one line and exit 2."""
    result = await bulkshare(workdir, "show", "no-such-run")
    assert result.code == 2 and "no run 'no-such-run'" in result.err
    result = await bulkshare(
        workdir, "plan", str(ORPHANED), "--report", str(workdir.path / "missing" / "r.html")
    )
    assert result.code == 2 and "--report" in result.err and "Traceback" not in result.err


def test_csv_cells_never_run_as_formulas() -> None:
    """A cell a spreadsheet would run as a formula is written with a leading apostrophe."""
    doc: dict[str, Any] = {
        "task_id": "t1",
        "actions": ["disable"],
        "request": {"method": "PATCH", "path": "/v1/sharing-tasks/t1", "body": []},
        "before": {"enabled": True},
        "after": {"enabled": False},
        "task": {"name": '=HYPERLINK("x")', "ownerName": "@boss", "type": "chart-sharing"},
    }
    plan = Plan("t", "j", "j.toml", "0" * 64, "2026-01-01T00:00:00Z", [Change.from_json(doc)])
    [row] = csv.DictReader(io.StringIO(render_plan(plan, Limits(), ReportFormat.CSV)))
    assert row["name"] == '\'=HYPERLINK("x")' and row["owner"] == "'@boss"


def test_public_surface() -> None:
    """bulkshare.report names its public surface, and every name in it exists."""
    import bulkshare.report as report

    assert sorted(report.__all__) == [
        "ReportDoc",
        "ReportFormat",
        "Row",
        "RunListing",
        "RunReport",
        "WriteEstimate",
        "estimate_writes",
        "list_runs",
        "plan_doc",
        "plan_json",
        "plan_table",
        "render_plan",
        "render_run",
        "render_runs",
        "report_format",
        "run_doc",
        "summary_text",
    ]
    assert all(hasattr(report, name) for name in report.__all__)
