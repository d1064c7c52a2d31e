"""`resume` and `undo`: continue an interrupted run, or apply the inverse of a finished one as a
new run; both end as `apply` does (the summary, or one JSON object with `--format json`).
"""

from __future__ import annotations

from dataclasses import dataclass

from structlog.contextvars import bound_contextvars

from bulkshare.client import TenantSession
from bulkshare.client.tenant import open_tenant, tenant_url
from bulkshare.commands.applying import ApplyRequest, apply_one, ended, run_tracked
from bulkshare.commands.machine import RunFormat, RunResults
from bulkshare.commands.notices import check_state_dir, tenant_notice
from bulkshare.commands.output import Output
from bulkshare.commands.scope import Confirmation, Shared, command_scope
from bulkshare.config import Config
from bulkshare.copy import source_name
from bulkshare.errors import RefusedError
from bulkshare.plan import Plan
from bulkshare.plan.change import quoted
from bulkshare.plan.saved import (
    check_applier,
    check_requests,
    check_signature,
    check_tenant_url,
    plan_key,
)
from bulkshare.report import ReportFormat, plan_table, render_plan
from bulkshare.run import RunDir, RunMeta, RunState, Summary, run_lock
from bulkshare.undo import build_undo

__all__ = ["UndoRequest", "resume", "undo"]


async def resume(
    config: Config, run_id: str, output: Output, fmt: RunFormat = RunFormat.TEXT
) -> int:
    """Continue an interrupted run: nothing done is redone, in-doubt writes are settled."""
    run_dir = RunDir.find(config.state_dir, run_id)
    meta = run_dir.meta()
    run_dir.recorded()  # the audit chain checked before any request (read once for the run)
    results = RunResults(fmt)
    if meta.state is RunState.FINISHED:
        return _already_finished(run_dir, meta, results, output)
    check_state_dir(config, output)
    try:
        async with command_scope(config, output, None, results) as shared:
            return await _resume_one(config, run_dir, meta, shared)
    finally:
        results.emit(output, 1)


def _already_finished(run_dir: RunDir, meta: RunMeta, results: RunResults, output: Output) -> int:
    output.note(f"run {run_dir.run_id} already finished (exit {meta.exit_code})")
    summary = Summary.read(run_dir.summary)
    if summary is not None:
        results.finished(summary.tenant, summary)
        results.emit(output, 1)
    return meta.exit_code or 0


async def _resume_one(config: Config, run_dir: RunDir, meta: RunMeta, shared: Shared) -> int:
    """The run's plan checked as apply checks a saved one, then run on from where it stopped."""
    run_id, output = run_dir.run_id, shared.output
    the_plan = Plan.read(run_dir.plan)
    check_signature(the_plan, run_dir.plan, plan_key(config.defaults.plan_key_env))
    the_plan = check_requests(the_plan, run_dir.plan)  # what resume sends is rebuilt too
    tenant = config.select([the_plan.tenant])[0]
    check_tenant_url(the_plan, run_dir.plan, tenant.name, tenant_url(tenant), unbound_ok=True)
    concurrency = meta.concurrency or config.defaults.concurrency
    tenant_notice(tenant, config, output)
    shared.results.started(tenant.name, run_dir)
    try:
        with (
            bound_contextvars(tenant=tenant.name, run_id=run_id),
            run_lock(
                config.state_dir,
                tenant.name,
                the_plan.job_name,
                run_id=run_id,
                on_lost=shared.stop.lock_lost,
            ),
        ):
            async with open_tenant(
                tenant, config, read_only=False, concurrency=concurrency
            ) as session:
                _resumed_by(the_plan, run_dir, session, output)
                output.note(f"resuming run {run_id}")
                summary = await run_tracked(
                    run_dir, the_plan, session.client, concurrency, meta.verify, shared
                )
    except BaseException as exc:
        shared.results.failed(tenant.name, exc)
        raise
    return ended(summary, shared)


def _resumed_by(the_plan: Plan, run_dir: RunDir, session: TenantSession, output: Output) -> None:
    """Resume as apply would: a caller who may apply the plan, noted if not its applier."""
    check_applier(the_plan, run_dir.plan, session.caller)
    applied_by = run_dir.meta().applied_by
    if applied_by is not None and applied_by != session.caller.id:
        output.note(
            f"tenant {session.tenant.name}: run applied by caller id {quoted(applied_by)}, "
            f"resumed by "
            f"{session.caller.describe()}"
        )


@dataclass(frozen=True)
class UndoRequest:
    """What `undo` was asked to do."""

    run_id: str
    yes: bool
    dry_run: bool
    interactive: bool
    fmt: RunFormat = RunFormat.TEXT  #: `--format`: text, or one JSON object on stdout


async def undo(config: Config, req: UndoRequest, output: Output) -> int:
    """Apply the inverse of a finished run as a new run; `--dry-run` only shows it (with
    `--format json`, as the plan JSON `plan --format json` prints)."""
    plan_key(config.defaults.plan_key_env)  # the undo run's plan is signed with it
    built = build_undo(
        RunDir.find(config.state_dir, req.run_id),
        lambda name: source_name(config.select([name])[0].url),
    )
    tenant = config.select([built.plan.tenant])[0]
    for record in built.irreversible:
        output.note(f"cannot undo: {record.action} of task {record.task_id} ({record.method})")
    for refused in built.not_restorable:
        output.note(f"not restorable: task {refused.task_id}: {refused.reason}")
    if req.dry_run:
        json = req.fmt is RunFormat.JSON
        output.result(
            render_plan(built.plan, tenant.limits, ReportFormat.JSON, False).rstrip("\n")
            if json
            else plan_table(built.plan, tenant.limits, config.defaults.plan_max_age_h)
        )
        return 0
    apply_req = ApplyRequest(
        f"undo:{req.run_id}", [], req.yes, req.interactive, unbound_ok=True, fmt=req.fmt
    )
    if not req.yes and not req.interactive:
        raise RefusedError("no terminal to confirm on: pass --yes to undo without asking")
    check_state_dir(config, output)
    confirm = Confirmation(1, yes=req.yes, output=output)
    results = RunResults(req.fmt)
    try:
        async with command_scope(config, output, confirm, results) as shared:
            return await apply_one(config, apply_req, tenant, None, built.plan, shared)
    finally:
        results.emit(output, 1)
