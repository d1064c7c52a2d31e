"""`plan`, the dry run: read each tenant, show every change, never send a write."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from structlog.contextvars import bound_contextvars

from bulkshare import safefile
from bulkshare.client import RequestFailed, TenantSession
from bulkshare.client.tenant import open_tenant, tenant_url
from bulkshare.commands.notices import check_state_dir, tenant_notice
from bulkshare.commands.output import Output
from bulkshare.commands.scope import each_tenant
from bulkshare.config import Config, TenantConfig
from bulkshare.copy import plan_copy_job
from bulkshare.errors import InterruptedRun, TenantError, UsageError
from bulkshare.job import Job, load_job
from bulkshare.plan import Plan, build_plan
from bulkshare.plan.criteria import job_criteria
from bulkshare.plan.saved import plan_key
from bulkshare.report import ReportFormat, estimate_writes, render_plan, report_format
from bulkshare.report.model import scope_text

__all__ = [
    "CHANGES_PLANNED",
    "detailed_error_code",
    "plan",
    "plan_summary",
    "read_plan",
    "show_report",
]


async def plan(
    config: Config,
    job_path: str,
    tenant_names: list[str],
    fmt: str | None,
    out_path: str | None,
    output: Output,
    report_path: str | None = None,
    *,
    accept_incomplete: bool = False,
    detailed_exitcode: bool = False,
) -> int:
    """The dry run: read each tenant and show every change; never send a write.

    With `detailed_exitcode`, as Terraform: 0 no change planned, 2 some, 1 an error.
    """
    check_state_dir(config, output)  # the budget ledger lives there
    job = load_job(job_path)
    key = plan_key(config.defaults.plan_key_env) if out_path else None
    tenants = config.select(tenant_names)
    for tenant in tenants:  # a target that cannot be written is refused before any request
        if out_path:
            safefile.check_target(per_tenant_path(Path(out_path), tenant.name, len(tenants)))
        if report := report_file(report_path, tenant.name, len(tenants)):
            safefile.check_target(report)
    plans: dict[str, Plan] = {}

    async def read(tenant: TenantConfig) -> int:
        with bound_contextvars(tenant=tenant.name):
            tenant_notice(tenant, config, output)
            async with open_tenant(tenant, config, read_only=True) as session:
                plans[tenant.name] = await read_plan(
                    session, job, accept_incomplete=accept_incomplete, config=config
                )
        return 0

    # tenants are read at once; their plans are shown one after another, in the order asked
    code = await each_tenant(tenants, read, output, combined=output.note)
    for tenant in tenants:
        the_plan = plans.get(tenant.name)
        if the_plan is None:
            continue
        if out_path:
            target = per_tenant_path(Path(out_path), tenant.name, len(tenants))
            the_plan.write(target, key)
            output.note(f"plan written to {target}{' (signed)' if key else ''}")
        report = report_file(report_path, tenant.name, len(tenants))
        render = partial(
            render_plan, the_plan, tenant.limits, max_age_h=config.defaults.plan_max_age_h
        )
        show_report(output, render, fmt, report)
    if not detailed_exitcode:
        return code
    if code != 0:
        return detailed_error_code(code)
    return CHANGES_PLANNED if any(p.changes for p in plans.values()) else 0


#: `plan --detailed-exitcode`: the exit code when the plan has changes
CHANGES_PLANNED = 2


def detailed_error_code(code: int) -> int:
    """An error's exit code under `plan --detailed-exitcode`: 1, so 2 only ever means "changes
    planned" (a usage error is 2 otherwise); 130, an interruption, stays what it is."""
    return code if code in (0, InterruptedRun.exit_code) else 1


def per_tenant_path(path: Path, tenant: str, count: int) -> Path:
    return path if count == 1 else path.with_name(f"{path.stem}.{tenant}{path.suffix}")


def report_file(report_path: str | None, tenant: str, count: int) -> Path | None:
    return None if report_path is None else per_tenant_path(Path(report_path), tenant, count)


def show_report(
    output: Output,
    render: Callable[[ReportFormat, bool], str],
    fmt: str | None,
    report: Path | None,
) -> None:
    """Print in `fmt` (default table); with a report file, write it there instead.

    An explicit `fmt` with a report file picks the file's format and still prints.
    """
    if report is not None:
        text = render(report_format(report, fmt), False)
        try:
            safefile.write_atomic(report, text.encode("utf-8"))
        except UsageError as exc:
            raise UsageError(f"--report {exc}") from None
        output.note(f"report written to {report}")
    if report is None or fmt is not None:
        output.result(render(ReportFormat(fmt or "table"), output.out.isatty()).rstrip("\n"))


async def read_plan(
    session: TenantSession,
    job: Job,
    *,
    accept_incomplete: bool = False,
    config: Config | None = None,
) -> Plan:
    """Plan against the tenant as its caller; a tenant whose answers cannot be used fails
    before any change. The plan records the tenant's URL, the caller and the scope."""
    tenant = session.tenant
    try:
        if job.copy is not None:
            assert config is not None, "a copy job reads its source through the config"
            plan = await plan_copy_job(config, session.client, job, tenant)
            plan.tenant_url, plan.caller = tenant_url(tenant), session.caller
            plan.description, plan.criteria = job.description, job_criteria(job)
            return plan
        return await build_plan(
            session.client,
            job,
            tenant.name,
            accept_incomplete=accept_incomplete,
            caller=session.caller,
            tenant_url=tenant_url(tenant),
            scope=tenant.scope.value,
        )
    except RequestFailed as exc:
        raise TenantError(
            f"tenant {tenant.name}: reading its tasks failed before any change: {exc}"
        ) from None


def plan_summary(the_plan: Plan, tenant: TenantConfig) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(the_plan.counts().items())) or "none"
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(the_plan.skipped.items())) or "none"
    return (
        f"plan for tenant {tenant.name}: {len(the_plan.changes)} changes ({counts}); "
        f"skipped as done: {skipped}; {the_plan.scanned} tasks read{_scope_note(the_plan)}\n"
        f"time: {estimate_writes(the_plan.writes(), tenant.limits).describe()}"
    )


def _scope_note(the_plan: Plan) -> str:
    return f" ({scope_text(the_plan.scope)})" if the_plan.scope == "own" else ""
