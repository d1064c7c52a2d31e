"""`plan` and `apply` of a copy job: its source read (another tenant, opened read-only, or an
export file), then `build_copy_plan` against the target tenant the command opened.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bulkshare.audit import utc_now
from bulkshare.client import ApiClient
from bulkshare.client.tenant import open_tenant
from bulkshare.config import Config, TenantConfig
from bulkshare.copy.planner import CopyRules, build_copy_plan
from bulkshare.copy.source import SourceTasks, file_source, tenant_source
from bulkshare.errors import ConfigError, JobFileError
from bulkshare.job import Job
from bulkshare.job.copy_keys import CopySpec
from bulkshare.plan.change import Plan

__all__ = ["plan_copy_job"]


async def plan_copy_job(
    config: Config, client: ApiClient, job: Job, tenant: TenantConfig, now: datetime | None = None
) -> Plan:
    """The plan of copy job `job` into `tenant` (whose client the caller holds open)."""
    spec = job.copy
    assert spec is not None
    now = now or datetime.now(UTC)
    _check_same_tenant(job, spec, tenant)
    source = await _source(config, client, job, spec, tenant, now)
    rules = CopyRules(
        spec.maps,
        spec.unmapped,
        spec.enabled,
        spec.delete_source,
        job_path=job.path,
        line=spec.line,
    )
    plan = Plan(
        tenant.name,
        job.name,
        str(job.path),
        job.source_sha256,
        utc_now(),
        max_changes=job.max_changes,
    )
    return await build_copy_plan(client, tenant.name, source, rules, plan, now)


def _check_same_tenant(job: Job, spec: CopySpec, tenant: TenantConfig) -> None:
    if spec.delete_source and spec.source_tenant != tenant.name:
        raise JobFileError(
            job.path,
            spec.line,
            "copy.delete_source",
            f"deletes the source tasks, so the copy must stay inside one tenant: from is "
            f"{spec.source_tenant!r}, the target is {tenant.name!r}",
        )


async def _source(
    config: Config,
    client: ApiClient,
    job: Job,
    spec: CopySpec,
    tenant: TenantConfig,
    now: datetime,
) -> SourceTasks:
    if spec.source_file is not None:
        return file_source(job, spec.source_file, spec.where, now)
    assert spec.source_tenant is not None
    if spec.source_tenant == tenant.name:
        return await tenant_source(client, tenant.name, tenant.url, spec.where, now)
    try:
        source = config.select([spec.source_tenant])[0]
    except ConfigError as exc:
        raise JobFileError(job.path, spec.line, "copy.from", str(exc)) from None
    async with open_tenant(source, config, read_only=True) as session:
        return await tenant_source(session.client, source.name, source.url, spec.where, now)
