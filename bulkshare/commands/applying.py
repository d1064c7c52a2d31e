"""`apply`: confirm, take the lock, start a run; the run itself (`run_tracked`) and its end
(`ended`), which `resume` and `undo` share (see commands/resuming.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from structlog.contextvars import bound_contextvars

from bulkshare import audit
from bulkshare.client import ApiClient, TenantSession
from bulkshare.client.tenant import open_tenant, tenant_url
from bulkshare.commands.machine import RunFormat, RunResults
from bulkshare.commands.notices import check_state_dir, tenant_notice
from bulkshare.commands.output import Output
from bulkshare.commands.planning import plan_summary, read_plan
from bulkshare.commands.scope import Confirmation, Shared, command_scope, each_tenant
from bulkshare.config import Config, TenantConfig
from bulkshare.errors import InterruptedRun, RefusedError, UsageError
from bulkshare.job import Job, load_job
from bulkshare.plan import Plan
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
    Summary,
    new_run_id,
    run_lock,
)

__all__ = ["ApplyRequest", "apply", "apply_one", "ended", "run_tracked"]


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
    fmt: RunFormat = RunFormat.TEXT  #: `--format`: the summary as text, or one JSON object


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
    check_state_dir(config, output)
    confirm = Confirmation(len(tenants), yes=req.yes, output=output)
    results = RunResults(req.fmt)
    try:
        async with command_scope(config, output, confirm, results) as shared:
            return await each_tenant(
                tenants,
                lambda tenant: apply_one(config, req, tenant, job, saved, shared),
                output,
                combined=output.final if results.machine else None,
            )
    finally:
        results.emit(output, len(tenants))


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
    """Plan (or check the saved plan), confirm, run; the run's end told in the command's format."""
    try:
        summary = await _apply_one(config, req, tenant, job, saved, shared)
    except BaseException as exc:
        shared.results.failed(tenant.name, exc)
        raise
    return ended(summary, shared)


def ended(summary: Summary, shared: Shared) -> int:
    """The summary for people, or kept for the one JSON object."""
    shared.results.finished(summary.tenant, summary)
    if not shared.results.machine:
        shared.output.result(summary_text(summary))
    return summary.exit_code


async def _apply_one(
    config: Config,
    req: ApplyRequest,
    tenant: TenantConfig,
    job: Job | None,
    saved: Plan | None,
    shared: Shared,
) -> Summary:
    job_name = job.name if job else saved.job_name if saved else "?"
    output = shared.output
    assert shared.confirm is not None
    if saved is not None:  # before the tenant is opened: a plan for another URL sends nothing
        check_tenant_url(
            saved, req.target, tenant.name, tenant_url(tenant), unbound_ok=req.unbound_ok
        )
    tenant_notice(tenant, config, output)
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
            shared.results.started(tenant.name, run_dir)
            lock.bind(run_dir.run_id)
            with bound_contextvars(run_id=run_dir.run_id):
                output.note(f"run {run_dir.run_id} started ({len(the_plan.changes)} changes)")
                return await run_tracked(
                    run_dir, the_plan, session.client, concurrency, req.verify, shared
                )


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


async def run_tracked(
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
    # what earlier processes did is not this one's rate (read once: cached for the runner)
    shared.board.track(the_plan.tenant, runner, already_done=len(run_dir.recorded()))
    try:
        return await runner.run()
    finally:
        shared.board.finish(runner)
        shared.stop.running -= 1
