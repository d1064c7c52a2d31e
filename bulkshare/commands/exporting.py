"""`export`: a tenant's tasks (or those a job's `where` selects) streamed to a file; it never
writes to the tenant. `export --verify FILE` checks that a file is whole and unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from structlog.contextvars import bound_contextvars

from bulkshare.audit import utc_now
from bulkshare.client import RequestFailed, TenantSession
from bulkshare.client.tenant import open_tenant
from bulkshare.commands.notices import check_state_dir, tenant_notice
from bulkshare.commands.output import Output
from bulkshare.commands.scope import Stop
from bulkshare.config import Config, TenantConfig
from bulkshare.errors import TenantError, UsageError
from bulkshare.export import (
    BUILTIN_SIM_URL,
    STDOUT,
    CsvInventoryWriter,
    ExportHeader,
    ExportWriter,
    Selection,
    Target,
    TaskSink,
    Written,
    export_tasks,
    open_export,
    open_target,
)
from bulkshare.job import Job, load_job

__all__ = ["ExportRequest", "export", "export_format", "verify_export_file"]

FORMATS = ("jsonl", "csv")


@dataclass(frozen=True)
class ExportRequest:
    """What `bulkshare export` was asked for."""

    out: str  #: a file, or `-` for standard output
    job: str | None = None  #: a job file whose `where` selects the tasks; None: every task
    tenant: str | None = None
    fmt: str | None = None  #: jsonl or csv; None: by the file's suffix


def export_format(out: str, fmt: str | None) -> str:
    """`--format` if given, else csv for a `.csv` file, else jsonl."""
    if fmt is not None:
        return fmt
    return "csv" if Path(out).suffix.lower() == ".csv" else "jsonl"


async def export(config: Config, req: ExportRequest, output: Output) -> int:
    """Read the tenant page by page into the file; announce on stderr, one line on stdout."""
    job = load_job(req.job) if req.job else None
    tenant = _one_tenant(config, req.tenant)
    fmt = export_format(req.out, req.fmt)
    # checked and created before the tenant is asked anything: a bad --out sends nothing
    with (
        open_target(req.out) as target,
        Stop(output).installed(),
        bound_contextvars(tenant=tenant.name),
    ):
        tenant_notice(tenant, config, output)
        check_state_dir(config, output)  # the budget ledger lives there
        written, scanned = await _read_tenant(config, tenant, job, fmt, target)
        target.commit()
    line = _summary(written, scanned, tenant, target)
    if req.out == STDOUT:
        output.note(line)  # stdout holds the export itself
    else:
        output.result(line)
    return 0


def _one_tenant(config: Config, name: str | None) -> TenantConfig:
    tenants = config.select([name] if name else [])
    if len(tenants) != 1:
        raise UsageError("usage: bulkshare export: a file holds one tenant; name it with --tenant")
    return tenants[0]


async def _read_tenant(
    config: Config, tenant: TenantConfig, job: Job | None, fmt: str, target: Target
) -> tuple[Written, int]:
    async with open_tenant(tenant, config, read_only=True) as session:
        stamp = utc_now()
        now = datetime.fromisoformat(stamp)
        selection = Selection.of_job(job, now) if job is not None else None
        sink = _sink(fmt, target, _header(session, job, selection, stamp))
        try:
            stats = await export_tasks(session.client, sink, selection, tenant.name)
        except RequestFailed as exc:
            raise TenantError(
                f"tenant {tenant.name}: reading its tasks failed, nothing exported: {exc}"
            ) from None
    return sink.finish(), stats.scanned


def _header(
    session: TenantSession, job: Job | None, selection: Selection | None, stamp: str
) -> ExportHeader:
    sim = session.tenant.is_builtin_sim
    return ExportHeader(
        tenant=session.tenant.name,
        url=BUILTIN_SIM_URL if sim else session.url,
        exported_at=stamp,
        job=job.name if job is not None else None,
        where=selection.describe() if selection is not None else None,
        simulated=sim,
    )


def _sink(fmt: str, target: Target, header: ExportHeader) -> TaskSink:
    return CsvInventoryWriter(target) if fmt == "csv" else ExportWriter(target, header)


def _summary(written: Written, scanned: int, tenant: TenantConfig, target: Target) -> str:
    sim = " (SIMULATED)" if tenant.is_builtin_sim else ""
    return (
        f"exported {written.count} of {scanned} tasks of tenant {tenant.name}{sim} "
        f"to {target.name}; sha256 {written.hashed}: {written.sha256}"
    )


def verify_export_file(path: str, output: Output) -> int:
    """Check an export file through to its trailer; one line on stdout, or ExportFileError."""
    with open_export(path) as reader:
        count = sum(1 for _ in reader.tasks())
        assert reader.trailer is not None  # tasks() returns only after checking it
        digest = reader.trailer.sha256
        header = reader.header
    output.result(f"{path}: verified: {count} tasks, sha256 {digest}; {header.describe()}")
    return 0
