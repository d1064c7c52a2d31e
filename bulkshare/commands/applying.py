"""`apply`, `resume` and `undo`: confirm, take the lock, start or continue a run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from structlog.contextvars import bound_contextvars

from bulkshare import audit
from bulkshare.client import ApiClient, TenantSession
from bulkshare.client.tenant import describe_tenant, open_tenant, tenant_url
from bulkshare.commands.output import Output
from bulkshare.commands.planning import plan_summary, read_plan
from bulkshare.commands.scope import Confirmation, Shared, command_scope, each_tenant
from bulkshare.config import Config, TenantConfig
from bulkshare.copy import source_name
from bulkshare.errors import InterruptedRun, RefusedError, UsageError
from bulkshare.job import Job, load_job
from bulkshare.plan import Plan
from bulkshare.plan.change import quoted
from bulkshare.plan.saved import (
    check_age,
    check_applier,
    check_requests,
    check_signature,
    check_tenant_url,
    plan_key,
)
from bulkshare.report import plan_table, summary_text
from bulkshare.run import (
    RunDir,
    RunMeta,
    Runner,
    RunOptions,
    RunState,
    Summary,
    new_run_id,
    run_lock,
)
from bulkshare.undo import build_undo

__all__ = ["ApplyRequest", "UndoRequest", "apply", "resume", "undo"]


@dataclass(frozen=True)
class ApplyRequest:
    """What `apply` was asked to do."""

    target: str  #: a job file or a saved plan (.json)
    tenants: list[str]
    yes: bool
    interactive: bool  #: a terminal is there to ask on
    max_changes: int | None = None
    verify: bool = True
    concurrency: int | None = None
    max_age: timedelta | None = None  #: `--max-age`; None: `[defaults] plan_max_age_h`
    accept_incomplete: bool = False  #: plan what was listed even if it misses totalCount
    #: a saved plan that records no tenant URL or caller is applied anyway: only for the plans
    #: of this state directory's own runs (undo of a run made by an older bulkshare)
    unbound_ok: bool = False


async def apply(config: Config, req: ApplyRequest, output: Output) -> int:
    """Plan (or load a plan), confirm once, run; tenants run concurrently, one run each."""
    if not req.yes and not req.interactive:
        raise RefusedError("no terminal to confirm on: pass --yes to apply without asking")
    plan_key(config.defaults.plan_key_env)  # a configured key must be there before anything
    job: Job | None = None
    saved: Plan | None = None
    if req.target.endswith(".json"):
        saved = _load_saved(config, req)
        tenants = [_plan_tenant(config, saved, req.tenants)]
    else:
        job = load_job(req.target)
        tenants = config.select(req.tenants)
    confirm = Confirmation(len(tenants), yes=req.yes, output=output)
    async with command_scope(config, output, confirm) as shared:
        return await each_tenant(
            tenants, lambda tenant: apply_one(config, req, tenant, job, saved, shared), output
        )


def _plan_tenant(config: Config, saved: Plan, names: list[str]) -> TenantConfig:
    if names and names != [saved.tenant]:
        raise UsageError(f"the plan was made for tenant {saved.tenant}, not {', '.join(names)}")
    return config.select([saved.tenant])[0]


def _load_saved(config: Config, req: ApplyRequest) -> Plan:
    """A saved plan, signed if the config asks, young enough, every request rebuilt and checked.

    All before the tenant is opened: a plan refused here has sent nothing.
    """
    path = Path(req.target)
    saved = Plan.read(path)
    check_signature(saved, path, plan_key(config.defaults.plan_key_env))
    check_age(saved, path, req.max_age or timedelta(hours=config.defaults.plan_max_age_h))
    return check_requests(saved, path)


async def apply_one(
    config: Config,
    req: ApplyRequest,
    tenant: TenantConfig,
    job: Job | None,
    saved: Plan | None,
    shared: Shared,
) -> int:
    job_name = job.name if job else saved.job_name if saved else "?"
    output = shared.output
    assert shared.confirm is not None
    if saved is not None:  # before the tenant is opened: a plan for another URL sends nothing
        check_tenant_url(
            saved, req.target, tenant.name, tenant_url(tenant), unbound_ok=req.unbound_ok
        )
    output.note(describe_tenant(tenant, config))
    with (
        bound_contextvars(tenant=tenant.name),
        shared.confirm.slot() as agree,
        run_lock(config.state_dir, tenant.name, job_name, on_lost=shared.stop.lock_lost) as lock,
    ):
        async with open_tenant(
            tenant, config, read_only=False, concurrency=req.concurrency
        ) as session:
            the_plan = saved or await read_plan(
                session, _must(job), accept_incomplete=req.accept_incomplete, config=config
            )
            _check_applier(the_plan, saved, session, req.target, output)
            output.note(
                plan_table(the_plan, tenant.limits, config.defaults.plan_max_age_h)
                if len(the_plan.changes) <= 20
                else plan_summary(the_plan, tenant)
            )
            _guard(the_plan, req)
            if the_plan.rejected:
                output.note(_rejected_note(the_plan))
            if not await agree(tenant.name, the_plan):
                raise RefusedError(f"tenant {tenant.name}: not confirmed; nothing was changed")
            if shared.stop.event.is_set():
                raise InterruptedRun(f"tenant {tenant.name}: stopped before its run started")
            concurrency = req.concurrency or config.defaults.concurrency
            run_dir = _start_run_dir(config, the_plan, req, concurrency, session)
            lock.bind(run_dir.run_id)
            with bound_contextvars(run_id=run_dir.run_id):
                output.note(f"run {run_dir.run_id} started ({len(the_plan.changes)} changes)")
                summary = await _run(
                    run_dir, the_plan, session.client, concurrency, req.verify, shared
                )
    output.result(summary_text(summary))
    return summary.exit_code


def _check_applier(
    the_plan: Plan, saved: Plan | None, session: TenantSession, source: str, output: Output
) -> None:
    """A saved plan (or an undo) may be applied by this caller, or PlanFileError; say so when
    the caller is not the one who planned."""
    if saved is None:
        return  # planned just now, by this very caller
    note = check_applier(the_plan, source, session.caller)
    if note is not None:
        output.note(f"tenant {session.tenant.name}: {note}")


def _rejected_note(the_plan: Plan) -> str:
    count = len(the_plan.rejected)
    return (
        f"tenant {the_plan.tenant}: {count} {'task' if count == 1 else 'tasks'} rejected (values "
        "of the wrong type from the tenant): not changed; the plan lists each with its reason"
    )


def _must(job: Job | None) -> Job:
    assert job is not None
    return job


def _guard(the_plan: Plan, req: ApplyRequest) -> None:
    limit = req.max_changes if req.max_changes is not None else the_plan.max_changes
    if limit is not None and len(the_plan.changes) > limit:
        raise RefusedError(
            f"tenant {the_plan.tenant}: the plan has {len(the_plan.changes)} changes, more "
            f"than the max_changes guard of {limit}; nothing was changed"
        )


def _start_run_dir(
    config: Config, the_plan: Plan, req: ApplyRequest, concurrency: int, session: TenantSession
) -> RunDir:
    key = plan_key(config.defaults.plan_key_env)  # before the run dir: a missing key leaves none
    run_dir = RunDir.create(config.state_dir, new_run_id(the_plan.job_name, the_plan.tenant))
    the_plan.write(run_dir.plan, key)  # signed as the input was, so resume can check it
    meta = RunMeta(
        run_id=run_dir.run_id,
        tenant=the_plan.tenant,
        job=the_plan.job_name,
        started=audit.utc_now(),
        target=req.target,
        verify=req.verify,
        concurrency=concurrency,
        applied_by=session.caller.id,
    )
    run_dir.write_meta(meta)
    return run_dir


async def _run(
    run_dir: RunDir,
    the_plan: Plan,
    client: ApiClient,
    concurrency: int,
    verify: bool,
    shared: Shared,
) -> Summary:
    runner = Runner(
        run_dir,
        the_plan,
        client,
        RunOptions(verify=verify, concurrency=concurrency),
        stop=shared.stop.event,
    )
    client.halt = shared.stop.halt  # a stop drops the requests still waiting to be sent
    shared.stop.running += 1
    shared.board.track(the_plan.tenant, runner)
    try:
        return await runner.run()
    finally:
        shared.board.finish(runner)
        shared.stop.running -= 1


async def resume(config: Config, run_id: str, output: Output) -> int:
    """Continue an interrupted run: nothing done is redone, in-doubt writes are settled."""
    run_dir = RunDir.find(config.state_dir, run_id)
    run_id = run_dir.run_id  # `last` or a prefix, resolved
    meta = run_dir.meta()
    run_dir.recorded()  # the audit chain checked before any request (read once for the run)
    if meta.state is RunState.FINISHED:
        output.note(f"run {run_id} already finished (exit {meta.exit_code})")
        return meta.exit_code or 0
    the_plan = Plan.read(run_dir.plan)
    check_signature(the_plan, run_dir.plan, plan_key(config.defaults.plan_key_env))
    the_plan = check_requests(the_plan, run_dir.plan)  # what resume sends is rebuilt too
    tenant = config.select([the_plan.tenant])[0]
    check_tenant_url(the_plan, run_dir.plan, tenant.name, tenant_url(tenant), unbound_ok=True)
    concurrency = meta.concurrency or config.defaults.concurrency
    output.note(describe_tenant(tenant, config))
    async with command_scope(config, output, None) as shared:
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
                summary = await _run(
                    run_dir,
                    the_plan,
                    session.client,
                    concurrency,
                    meta.verify,
                    shared,
                )
    output.result(summary_text(summary))
    return summary.exit_code


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


async def undo(config: Config, req: UndoRequest, output: Output) -> int:
    """Apply the inverse of a finished run as a new run; `--dry-run` only shows it."""
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
        output.result(plan_table(built.plan, tenant.limits, config.defaults.plan_max_age_h))
        return 0
    apply_req = ApplyRequest(f"undo:{req.run_id}", [], req.yes, req.interactive, unbound_ok=True)
    if not req.yes and not req.interactive:
        raise RefusedError("no terminal to confirm on: pass --yes to undo without asking")
    confirm = Confirmation(1, yes=req.yes, output=output)
    async with command_scope(config, output, confirm) as shared:
        return await apply_one(config, apply_req, tenant, None, built.plan, shared)
