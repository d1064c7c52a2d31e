"""Plans and runs as ReportDocs: the facts, counts and tables every format shows, gathered once
so that table, markdown, html and csv cannot disagree about what they say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bulkshare.config import Limits
from bulkshare.plan import Plan
from bulkshare.report.approval import (
    approval_facts,
    criteria_table,
    is_simulated,
    new_owner_table,
    plan_facts,
    plan_hash,
)
from bulkshare.report.copies import copy_facts, copy_tables, id_map_table
from bulkshare.report.estimate import estimate_writes
from bulkshare.report.failures import conflict_table, failure_groups_table
from bulkshare.report.model import (
    PENDING,
    CountTable,
    ReportDoc,
    Row,
    TextTable,
    new_owner_rows,
    plan_rows,
    rejected_rows,
)
from bulkshare.report.runs import RunReport
from bulkshare.run import Outcome

__all__ = ["plan_doc", "plan_summary", "run_doc"]


def plan_doc(plan: Plan, limits: Limits, max_age_h: float | None = None) -> ReportDoc:
    """A plan with what an approver signs, its counts, tables and every change."""
    return _plan_doc(plan, limits, max_age_h, plan_rows(plan))


def plan_summary(plan: Plan, limits: Limits, max_age_h: float | None = None) -> ReportDoc:
    """`plan_doc` without a row per change (its `rows` are empty): what the text table prints
    above the changes it lists itself. Its tables come from the rows of the changes that give
    a task a new owner, the only ones they read, so a plan of 100,000 changes is not copied
    row by row to print 200 of them."""
    return replace(_plan_doc(plan, limits, max_age_h, new_owner_rows(plan)), rows=())


def _plan_doc(
    plan: Plan, limits: Limits, max_age_h: float | None, rows: tuple[Row, ...]
) -> ReportDoc:
    facts = (
        ("tenant", plan.tenant),
        *approval_facts(plan, max_age_h),
        ("job", plan.job_name),
        ("job file", plan.job_path),
        ("planned at", plan.created_at),
        ("tasks read", str(plan.scanned)),
        ("changes", str(len(plan.changes))),
        ("rejected", str(len(plan.rejected))),
        ("time", estimate_writes(plan.writes(), limits).describe()),
        *copy_facts(plan),
    )
    counts = [_one_column("Changes per action", "changes", plan.counts())]
    if plan.skipped:
        counts.append(_one_column("Skipped, already done", "tasks", dict(plan.skipped)))
    owners = new_owner_table(
        rows, "Tasks per target owner" if plan.copy else "Changes per new owner"
    )
    tables = _present(criteria_table(plan), owners, *copy_tables(plan, rows, run=False))
    title = f"Plan: job {plan.job_name} on tenant {plan.tenant}"
    rejected = rejected_rows(plan)
    return ReportDoc(
        "plan", title, facts, tuple(counts), rows, rejected, tables, is_simulated(plan)
    )


def _present(*tables: TextTable | None) -> tuple[TextTable, ...]:
    return tuple(t for t in tables if t is not None)


def _one_column(title: str, column: str, counts: Mapping[str, int]) -> CountTable:
    rows = tuple((k, (v,)) for k, v in sorted(counts.items()))
    return CountTable(title, ("action", column), (*rows, ("total", (sum(counts.values()),))))


#: outcome columns in the order a reader scans them: done, then trouble, then what is left
_OUTCOME_ORDER = [*(o.value for o in Outcome), PENDING]


def run_doc(report: RunReport) -> ReportDoc:
    """A run with its facts, outcomes per action, failures grouped, conflicts, every change."""
    meta, summary = report.meta, report.summary
    facts = [
        ("run", report.run_id),
        ("tenant", report.tenant),
        ("job", report.job),
        ("target", _str(meta.target or None)),
        ("state", report.state),
        ("exit code", _str(meta.exit_code)),
        ("started", _str(meta.started)),
        ("ended", _str(meta.ended)),
        ("took", "-" if summary is None else f"{summary.duration_s:.1f} s"),
        ("429s seen", "-" if summary is None else str(summary.throttled)),
        ("side effects", "-" if summary is None else str(summary.side_effects)),
        ("changes planned", str(len(report.rows))),
        ("task gone (failed)", "-" if summary is None else str(summary.gone)),
        ("verified before writing", _str(meta.verify)),
        *_run_callers(report),
        *copy_facts(report.plan),
    ]
    problems = tuple(r for r in report.rows if r.is_problem)
    tables = _present(
        failure_groups_table(problems),
        conflict_table(problems),
        *copy_tables(report.plan, report.rows, run=True),
        id_map_table(report.id_map, report.rows),
    )
    title = f"Run {report.run_id}: job {report.job} on tenant {report.tenant}"
    counts = (_outcome_table(report),)
    simulated = is_simulated(report.plan)
    return ReportDoc("run", title, tuple(facts), counts, report.rows, (), tables, simulated)


def _run_callers(report: RunReport) -> list[tuple[str, str]]:
    plan = report.plan
    planned = [] if plan is None else [("plan hash", plan_hash(plan)), *plan_facts(plan)[:2]]
    return [*planned, ("applied by (user id)", _str(report.meta.applied_by))]


def _str(value: Any) -> str:
    return "-" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _outcome_table(report: RunReport) -> CountTable:
    by_action, totals = report.by_action(), report.by_outcome()
    outcomes = sorted(totals, key=lambda o: [*_OUTCOME_ORDER, o].index(o))
    rows = [
        (action, (*(counts.get(o, 0) for o in outcomes), sum(counts.values())))
        for action, counts in sorted(by_action.items())
    ]
    rows.append(("total", (*(totals[o] for o in outcomes), len(report.rows))))
    return CountTable("Outcomes per action", ("action", *outcomes, "total"), tuple(rows))
