"""Plan reports an approver can sign: every format of a reassignment plan on the built-in
simulator shows the hash, URL, SIMULATED, description, criteria, guard verdict, expiry, the new
owners by name with their counts, and the fields each task matched on."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bulkshare.config import Limits
from bulkshare.plan import Change, Plan
from bulkshare.report import ReportFormat, render_plan
from bulkshare.report.docs import plan_doc, plan_summary
from bulkshare.report.model import matched_text, new_owner_rows
from tests.conftest import ROOT, Workdir, bulkshare

REASSIGN = ROOT / "jobs" / "reassign-owners.toml"
DESCRIPTION = "Move departed owners' tasks to their successors, keeping each task's enabled state"
CRITERIA = (
    "1. reassign-owner of 20 mapped owners, each to its new owner (enable) where enabled is true",
    "2. reassign-owner of 20 mapped owners, each to its new owner where enabled is false",
)


def builtin_workdir(path: Path, extra: str = "") -> Workdir:
    """A config naming no tenant: the built-in simulator is the only one."""
    config = path / "bulkshare.toml"
    config.write_text(f'state_dir = "state"\n{extra}')
    env = {k: v for k, v in os.environ.items() if k != "BULKSHARE_CONFIG"}
    return Workdir(path, config, env)


def expiry(plan: Plan, hours: float) -> str:
    """created_at + hours, as the reports write it."""
    created = datetime.fromisoformat(plan.created_at.replace("Z", "+00:00"))
    return (created + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_owner_counts(plan: Plan) -> Counter[str]:
    """New owner's display name -> changes handing tasks to them, from the plan file itself."""
    return Counter(str(c.task["newOwnerName"]) for c in plan.changes)


Planned = dict[str, tuple[Plan, str]]


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Planned:
    """The reassignment planned on the built-in sim once per format: each saved plan and the
    report written beside it (same content, so the same hash)."""
    wd = builtin_workdir(tmp_path_factory.mktemp("approval"), "[defaults]\nplan_max_age_h = 6\n")

    async def one(fmt: str, name: str) -> tuple[Plan, str]:
        out, report = wd.path / f"{fmt}.json", wd.path / name
        result = await bulkshare(
            wd, "plan", str(REASSIGN), "--out", str(out), "--report", str(report)
        )
        assert result.code == 0, result.err
        return Plan.read(out), report.read_text()

    async def run() -> Planned:
        names = (("table", "r.txt"), ("markdown", "r.md"), ("html", "r.html"), ("csv", "r.csv"))
        return {fmt: await one(fmt, name) for fmt, name in names}

    return asyncio.run(run())


def test_text_report_is_signable(planned: Planned) -> None:
    """The plain-text plan names hash, URL, SIMULATED, description, criteria, verdict, expiry,
    new owners by name with their counts, and what each task matched on."""
    plan, text = planned["table"]
    assert f"  plan hash: {plan.content_hash}\n" in text
    assert "  tenant URL: builtin:sim (SIMULATED: the built-in simulator" in text
    assert f"  description: {DESCRIPTION}\n" in text
    assert all(line in text for line in CRITERIA)
    limit = f"  max_changes: within the limit: {len(plan.changes)} changes, max_changes is 1000"
    assert limit in text
    assert f"  expires: {expiry(plan, 6)} (6 h after planning)" in text
    for name, count in new_owner_counts(plan).items():
        assert re.search(rf"^{re.escape(name)} +\S+ +{count}$", text, re.M), name
    for change in plan.changes[:5]:
        row = next(line for line in text.splitlines() if line.startswith(change.task_id))
        assert f"→ {change.task['newOwnerName']}" in row
        assert row.endswith(matched_text(change.selects, 28))


def test_markdown_report_is_signable(planned: Planned) -> None:
    """The Markdown plan has the same facts, a criteria table, a new-owner count table and the
    matched-on column."""
    plan, md = planned["markdown"]
    assert f"- **plan hash:** {plan.content_hash}\n" in md
    assert "builtin:sim (SIMULATED: the built-in simulator" in md
    assert f"- **description:** {DESCRIPTION}\n" in md
    assert "## Criteria" in md and all(c in md for c in CRITERIA)
    assert f"within the limit: {len(plan.changes)} changes, max\\_changes is 1000" in md
    assert f"{expiry(plan, 6)} (6 h after planning): apply refuses the saved plan after it" in md
    assert "## Changes per new owner" in md
    for name, count in new_owner_counts(plan).items():
        assert re.search(rf"^\| {re.escape(name)} \| \S+ \| {count} \|$", md, re.M), name
    assert "| before → after | matched on |" in md
    assert "| enabled: true |" in md


def test_html_report_is_signable(planned: Planned) -> None:
    """The HTML plan shows the facts, a SIMULATED banner, criteria, the new-owner chart with one
    bar per owner, and what each change matched on."""
    plan, page = planned["html"]
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>(.*?)</dd>", page))
    assert facts["plan hash"] == plan.content_hash
    assert facts["tenant URL"].startswith("builtin:sim (SIMULATED")
    assert 'id="simulated"' in page and "SIMULATED: this tenant is the built-in simulator" in page
    assert facts["description"] == DESCRIPTION.replace("'", "&#x27;")
    assert (
        facts["max_changes"]
        == f"within the limit: {len(plan.changes)} changes, max_changes is 1000"
    )
    assert facts["expires"].startswith(f"{expiry(plan, 6)} (6 h after planning)")
    criteria = page[page.index('id="criteria"') :]
    assert all(c.replace('"', "&quot;") in criteria for c in CRITERIA)
    owners = page[page.index('id="changes-per-new-owner"') :]
    owners = owners[: owners.index("</section>")]
    counts = new_owner_counts(plan)
    for name, count in counts.most_common(10):
        assert f"<title>{name}: {count}</title>" in owners, name
    assert owners.count('<rect class="bar') == min(len(counts), 11)
    assert "<th>matched on</th>" in page and '<td class="matched">enabled: true</td>' in page


def test_csv_report_has_matched_on(planned: Planned) -> None:
    """The CSV plan names each new owner and the fields each task matched on."""
    plan, text = planned["csv"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(plan.changes)
    names = {c.task["newOwner"]: c.task["newOwnerName"] for c in plan.changes}
    assert all(r["new_owner"] == names[r["new_owner_id"]] for r in rows)
    assert {r["matched"] for r in rows} >= {"enabled: true", "enabled: false"}


def test_rich_report_is_signable(planned: Planned) -> None:
    """On a terminal (rich) the plan shows the same facts, the SIMULATED line and the owners."""
    plan, _ = planned["table"]
    drawn = render_plan(plan, Limits(), ReportFormat.TABLE, True, 220, max_age_h=6)
    text = re.sub(r"\x1b\[[0-9;]*m", "", drawn)
    assert "SIMULATED: the built-in simulator, not a real tenant" in text
    assert str(plan.content_hash) in text and DESCRIPTION in text
    assert all(c in text for c in CRITERIA)
    assert "Changes per new owner" in text and "matched on" in text
    assert all(name in text for name in new_owner_counts(plan))
    assert expiry(plan, 6) in text


def small_plan(max_changes: int | None, extra: dict[str, Any] | None = None) -> Plan:
    """A saved plan of one disable, made in code, with the given guard."""
    doc: dict[str, Any] = {
        "task_id": "t1",
        "actions": ["disable"],
        "request": {"method": "PATCH", "path": "/v1/sharing-tasks/t1", "body": []},
        "before": {"enabled": True},
        "after": {"enabled": False},
        "task": {"name": "n", "owner": "u1", "ownerName": "Ann"},
        "selects": {"enabled": True, "statusCode": "FAILED"},
    }
    plan = Plan("t", "j", "j.toml", "0" * 64, "2026-01-01T00:00:00Z", [Change.from_json(doc)])
    plan.max_changes = max_changes
    for key, value in (extra or {}).items():
        setattr(plan, key, value)
    return plan


def test_guard_verdicts_expiry_and_incomplete() -> None:
    """Over the limit, no limit and no expiry are said in words; an accepted incomplete listing
    is shown; the hash of a plan made in code is the one its file would record."""
    over = render_plan(small_plan(0), Limits(), ReportFormat.TABLE)
    assert "max_changes: OVER the limit: 1 changes, max_changes is 0: apply refuses" in over
    assert "expires: no expiry" in over
    assert "statusCode: FAILED" in over  # not the everyday VALID: shown
    unset = render_plan(small_plan(None), Limits(), ReportFormat.MARKDOWN)
    assert "no limit set (the job has no max\\_changes)" in unset
    incomplete = {"listed": 90, "total_count": 100, "duplicates": 2}
    plan = small_plan(5, {"accepted_incomplete": incomplete})
    page = render_plan(plan, Limits(), ReportFormat.HTML, max_age_h=1)
    assert "<dt>accepted incomplete</dt><dd>yes: the listing gave 90 tasks of totalCount 100" in (
        page
    )
    assert "2026-01-01T01:00:00Z (1 h after planning)" in page
    assert f"<dd>{plan.to_json()['content_hash']}</dd>" in page
    assert "SIMULATED" not in page  # made for no tenant URL at all


def test_tenant_text_is_escaped_in_new_tables(tmp_path: Path) -> None:
    """A new owner's name from the tenant is escaped in HTML and Markdown tables and charts."""
    doc: dict[str, Any] = {
        "task_id": "t1",
        "actions": ["reassign-owner"],
        "request": {"method": "PATCH", "path": "/v1/sharing-tasks/t1", "body": []},
        "before": {"owner": "u1"},
        "after": {"owner": "u2"},
        "task": {"owner": "u1", "ownerName": "Ann", "newOwner": "u2", "newOwnerName": "<b>|x"},
    }
    plan = Plan("t", "j", "j.toml", "0" * 64, "2026-01-01T00:00:00Z", [Change.from_json(doc)])
    page = render_plan(plan, Limits(), ReportFormat.HTML)
    assert "<b>|x" not in page and "&lt;b&gt;|x" in page
    md = render_plan(plan, Limits(), ReportFormat.MARKDOWN)
    assert "| \\<b\\>\\|x | u2 | 1 |" in md
    assert (
        json.loads(render_plan(plan, Limits(), ReportFormat.JSON))["changes"][0]["task"][
            "newOwnerName"
        ]
        == "<b>|x"
    )


def test_where_in_words() -> None:
    """Every filter of a `where` is said in words, sets sorted and long ones cut short."""
    from bulkshare.job.where import Where
    from bulkshare.plan.criteria import where_text

    where = Where(
        owner=frozenset({"u2", "u1"}),
        type=frozenset({"sharing"}),
        task_errors=frozenset({"ORPHAN"}),
        enabled=False,
        tags=frozenset(f"t{i}" for i in range(7)),
        name=("Daily *",),
        not_viewed_for_days=90,
        owner_status=frozenset({"deleted"}),
    )
    assert where_text(where) == (
        'owner is one of "u1", "u2" and type is "sharing" and task errors include "ORPHAN" and '
        'enabled is false and tags include any of "t0", "t1", "t2", "t3", "t4" and 2 more and '
        'name matches "Daily *" and not viewed for 90 days or more and owner status is "deleted"'
    )
    assert where_text(Where(all=True)) == "every task"
    assert where_text(Where()) == "nothing (no filter)"


def test_text_summary_tables_match_the_full_documents() -> None:
    """The text table's summary builds rows only for the changes that give a task a new owner,
    and its facts and tables are the full document's."""

    def change(task_id: str, after: dict[str, Any], task: dict[str, Any]) -> Change:
        doc = {
            "task_id": task_id,
            "actions": ["reassign" if "owner" in after else "disable"],
            "request": {"method": "PATCH", "path": f"/v1/sharing-tasks/{task_id}", "body": []},
            "before": {k: None for k in after},
            "after": after,
            "task": {"name": task_id, "owner": "u1", "ownerName": "Ann", **task},
        }
        return Change.from_json(doc)

    changes = [
        change("t1", {"enabled": False}, {}),
        change("t2", {"owner": "u2"}, {"newOwner": "u2", "newOwnerName": "Bo"}),
        change("t3", {"enabled": False}, {}),
        change("t4", {"owner": "u3"}, {"newOwner": "u3", "newOwnerName": "Cy"}),
        change("t5", {"owner": "u2"}, {"newOwner": "u2", "newOwnerName": "Bo"}),
    ]
    plan = Plan("t", "j", "j.toml", "0" * 64, "2026-01-01T00:00:00Z", changes)
    full, summary = plan_doc(plan, Limits()), plan_summary(plan, Limits())
    assert [r.task_id for r in new_owner_rows(plan)] == ["t2", "t4", "t5"]
    assert [r.task_id for r in full.rows] == ["t1", "t2", "t3", "t4", "t5"] and summary.rows == ()
    assert summary.facts == full.facts and summary.counts == full.counts
    assert summary.tables == full.tables
    owners = next(t for t in summary.tables if t.title == "Changes per new owner")
    assert owners.rows == (("Bo", "u2", "2"), ("Cy", "u3", "1"))
