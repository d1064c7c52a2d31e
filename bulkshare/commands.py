"""The commands behind the CLI: each takes parsed arguments, does the work, returns an exit code.

Results go to stdout; announcements and progress to stderr.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import NoReturn, TextIO

import structlog
from structlog.contextvars import bound_contextvars

from bulkshare import audit
from bulkshare.client import ApiClient, RequestFailed
from bulkshare.config import Config, TenantConfig
from bulkshare.errors import (
    BulkshareError,
    InterruptedRun,
    PlanFileError,
    RefusedError,
    TenantError,
    UsageError,
)
from bulkshare.jobfile import Job, load_job
from bulkshare.lock import run_lock
from bulkshare.plan import Plan, build_plan
from bulkshare.progress import ProgressBoard
from bulkshare.report import (
    ReportFormat,
    RunReport,
    estimate_writes,
    list_runs,
    plan_table,
    render_plan,
    render_run,
    render_runs,
    report_format,
    summary_text,
)
from bulkshare.run import RunDir, Runner, RunOptions, Summary, new_run_id
from bulkshare.tenant import describe_tenant, open_tenant
from bulkshare.undo import build_undo

__all__ = [
    "ApplyRequest",
    "Output",
    "UndoRequest",
    "apply",
    "audit_verify",
    "plan",
    "resume",
    "runs",
    "show",
    "undo",
    "validate",
]


_log = structlog.get_logger("bulkshare")


@dataclass
class Output:
    """Where a command writes: results to `out`, announcements to `err`."""

    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    quiet: bool = False
    #: announcements and errors go out as log events (JSON lines with --log-format json)
    structured: bool = False

    def result(self, text: str) -> None:
        try:
            print(text, file=self.out, flush=True)
        except BrokenPipeError:
            # the reader left (`show ... | head`): what it read is what it wanted; the command's
            # own outcome and exit code stand, and nothing more is written to the closed pipe
            self.out = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

    def note(self, text: str) -> None:
        if self.quiet:
            return
        if self.structured:
            _log.info("note", message=text)
        else:
            print(text, file=self.err)

    def error(self, text: str, exit_code: int) -> None:
        """One line naming what is wrong; shown even with -q."""
        if self.structured:
            _log.error("error", message=text, exit_code=exit_code)
        else:
            print(text, file=self.err)


def validate(paths: Sequence[str], output: Output) -> int:
    """Check job files; one line per file."""
    worst = 0
    for path in paths:
        try:
            job = load_job(path)
        except UsageError as exc:
            print(f"error: {exc}", file=output.err)
            worst = 2
            continue
        output.result(f"ok: {path}: job {job.name}, {len(job.operations)} operation(s)")
    return worst


async def plan(
    config: Config,
    job_path: str,
    tenant_names: list[str],
    fmt: str | None,
    out_path: str | None,
    output: Output,
    report_path: str | None = None,
) -> int:
    """The dry run: read each tenant and show every change; never send a write."""
    job = load_job(job_path)
    tenants = config.select(tenant_names)
    plans: dict[str, Plan] = {}

    async def read(tenant: TenantConfig) -> int:
        with bound_contextvars(tenant=tenant.name):
            output.note(describe_tenant(tenant, config))
            async with open_tenant(tenant, config, read_only=True) as session:
                plans[tenant.name] = await _read_plan(session.client, job, tenant)
        return 0

    # tenants are read at once; their plans are shown one after another, in the order asked
    code = await _each_tenant(tenants, read, output, combined=output.note)
    for tenant in tenants:
        the_plan = plans.get(tenant.name)
        if the_plan is None:
            continue
        if out_path:
            target = _per_tenant_path(Path(out_path), tenant.name, len(tenants))
            the_plan.write(target)
            output.note(f"plan written to {target}")
        report = _report_file(report_path, tenant.name, len(tenants))
        _show(output, partial(render_plan, the_plan, tenant.limits), fmt, report)
    return code


def _per_tenant_path(path: Path, tenant: str, count: int) -> Path:
    return path if count == 1 else path.with_name(f"{path.stem}.{tenant}{path.suffix}")


def _report_file(report_path: str | None, tenant: str, count: int) -> Path | None:
    return None if report_path is None else _per_tenant_path(Path(report_path), tenant, count)


def _show(
    output: Output,
    render: Callable[[ReportFormat, bool], str],
    fmt: str | None,
    report: Path | None,
) -> None:
    """Print in `fmt` (default table); with a report file, write it there instead.

    An explicit `fmt` with a report file picks the file's format and still prints.
    """
    if report is not None:
        try:
            report.write_text(render(report_format(report, fmt), False), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--report {report}: {exc.strerror or exc}") from None
        output.note(f"report written to {report}")
    if report is None or fmt is not None:
        output.result(render(ReportFormat(fmt or "table"), output.out.isatty()).rstrip("\n"))


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
    max_age: timedelta = timedelta(hours=24)


async def apply(config: Config, req: ApplyRequest, output: Output) -> int:
    """Plan (or load a plan), confirm once, run; tenants run concurrently, one run each."""
    if not req.yes and not req.interactive:
        raise RefusedError("no terminal to confirm on: pass --yes to apply without asking")
    if req.target.endswith(".json"):
        saved = Plan.read(Path(req.target))
        _check_plan_age(saved, req)
        job: Job | None = None
        tenants = [_plan_tenant(config, saved, req.tenants)]
    else:
        job, saved = load_job(req.target), None
        tenants = config.select(req.tenants)
    confirm = _Confirmation(len(tenants), yes=req.yes, output=output)
    async with _command_scope(config, output, confirm) as shared:
        return await _each_tenant(
            tenants, lambda tenant: _apply_one(config, req, tenant, job, saved, shared), output
        )


async def _each_tenant(
    tenants: list[TenantConfig],
    work: Callable[[TenantConfig], Awaitable[int]],
    output: Output,
    *,
    combined: Callable[[str], None] | None = None,
) -> int:
    """Run `work` for every tenant at once; one combined line and the worst exit code.

    A tenant's error is that tenant's exit code: the others go on.
    """
    if len(tenants) == 1:
        return await work(tenants[0])
    results = await asyncio.gather(*(work(t) for t in tenants), return_exceptions=True)
    codes: dict[str, int] = {}
    for tenant, result in zip(tenants, results, strict=True):
        if isinstance(result, BulkshareError):
            output.error(f"bulkshare: {result}", result.exit_code)
            codes[tenant.name] = result.exit_code
        elif isinstance(result, BaseException):
            raise result
        else:
            codes[tenant.name] = result
    worst = max(codes.values())
    per_tenant = ", ".join(f"{name} exit {code}" for name, code in codes.items())
    (combined or output.result)(f"tenants: {per_tenant}; exit {worst}")
    return worst


def _plan_tenant(config: Config, saved: Plan, names: list[str]) -> TenantConfig:
    if names and names != [saved.tenant]:
        raise UsageError(f"the plan was made for tenant {saved.tenant}, not {', '.join(names)}")
    return config.select([saved.tenant])[0]


def _check_plan_age(saved: Plan, req: ApplyRequest) -> None:
    created = datetime.fromisoformat(saved.created_at.replace("Z", "+00:00"))
    age = datetime.now(UTC) - created
    if age > req.max_age:
        raise PlanFileError(
            f"{req.target}: plan is {age.total_seconds() / 3600:.1f} h old "
            f"(more than {req.max_age.total_seconds() / 3600:g} h): plan again"
        )


class _Stop:
    """One stop for every tenant of a command.

    The first signal stops taking new work (in-flight requests finish and are recorded); a
    second one, or any signal while no run has started, interrupts at once (exit 130).
    """

    def __init__(self, output: Output) -> None:
        self.event = asyncio.Event()
        self.running = 0  #: runs in progress
        self._output = output

    def __call__(self) -> None:
        if self.running == 0:
            _interrupt()
        if self.event.is_set():
            # forced: cancel the requests in flight; the records of finished ones are still
            # flushed, and resume settles the cancelled ones by reading
            self._output.note("forced stop: cancelling in-flight requests")
            _interrupt()
        self._output.note("stopping: finishing in-flight requests (signal again to force)")
        self.event.set()

    @contextmanager
    def installed(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        sigs = (signal.SIGINT, signal.SIGTERM)
        for sig in sigs:
            loop.add_signal_handler(sig, self)
        try:
            yield
        finally:
            for sig in sigs:
                loop.remove_signal_handler(sig)


def _interrupt() -> NoReturn:
    # raised from the event loop, so tasks are cancelled at their awaits and unwind cleanly
    raise KeyboardInterrupt


class _Confirmation:
    """Asks once for every tenant of an apply, when all of them have planned (or failed to).

    With `--yes` nobody waits: each tenant starts as soon as its own plan is ready.
    """

    def __init__(self, tenants: int, *, yes: bool, output: Output) -> None:
        self._waiting = tenants
        self._yes = yes
        self._output = output
        self._plans: list[tuple[str, int]] = []
        self._decided = asyncio.Event()
        self._answer = yes

    @contextmanager
    def slot(self) -> Iterator[Callable[[str, Plan], Awaitable[bool]]]:
        """A tenant's one chance to agree; leaving without asking lets the others go on."""
        asked = False

        async def agree(tenant: str, the_plan: Plan) -> bool:
            nonlocal asked
            asked = True
            if self._yes:
                return True
            self._plans.append((tenant, len(the_plan.changes)))
            self._arrive()
            await self._decided.wait()
            return self._answer

        try:
            yield agree
        finally:
            if not asked:
                self._arrive()

    def _arrive(self) -> None:
        self._waiting -= 1
        if self._waiting == 0 and not self._yes:
            if self._plans:
                self._answer = self._ask()
            self._decided.set()

    def _ask(self) -> bool:
        what = ", ".join(f"{count} changes to tenant {name}" for name, count in self._plans)
        print(f"Apply {what}? [y/N] ", end="", file=self._output.err, flush=True)
        return sys.stdin.readline().strip().lower() in {"y", "yes"}


@dataclass(frozen=True)
class _Shared:
    """What the tenants of one command share."""

    output: Output
    stop: _Stop
    board: ProgressBoard
    confirm: _Confirmation | None


@asynccontextmanager
async def _command_scope(
    config: Config, output: Output, confirm: _Confirmation | None
) -> AsyncIterator[_Shared]:
    """Signals handled and progress shown for the whole command, across its tenants."""
    stop = _Stop(output)
    board = ProgressBoard(
        output.err,
        live=output.err.isatty(),
        every_s=config.defaults.progress_every_s,
        enabled=not output.quiet,
    )
    with stop.installed():
        async with board:
            yield _Shared(output, stop, board, confirm)


async def _apply_one(
    config: Config,
    req: ApplyRequest,
    tenant: TenantConfig,
    job: Job | None,
    saved: Plan | None,
    shared: _Shared,
) -> int:
    job_name = job.name if job else saved.job_name if saved else "?"
    output = shared.output
    assert shared.confirm is not None
    output.note(describe_tenant(tenant, config))
    with (
        bound_contextvars(tenant=tenant.name),
        shared.confirm.slot() as agree,
        run_lock(config.state_dir, tenant.name, job_name),
    ):
        async with open_tenant(
            tenant, config, read_only=False, concurrency=req.concurrency
        ) as session:
            the_plan = saved or await _read_plan(session.client, _must(job), tenant)
            output.note(
                plan_table(the_plan, tenant.limits)
                if len(the_plan.changes) <= 20
                else _plan_summary(the_plan, tenant)
            )
            _guard(the_plan, req)
            if not await agree(tenant.name, the_plan):
                raise RefusedError(f"tenant {tenant.name}: not confirmed; nothing was changed")
            if shared.stop.event.is_set():
                raise InterruptedRun(f"tenant {tenant.name}: stopped before its run started")
            concurrency = req.concurrency or config.defaults.concurrency
            run_dir = _start_run_dir(config, the_plan, req, concurrency)
            with bound_contextvars(run_id=run_dir.run_id):
                output.note(f"run {run_dir.run_id} started ({len(the_plan.changes)} changes)")
                summary = await _run(
                    run_dir, the_plan, session.client, concurrency, req.verify, shared
                )
    output.result(summary_text(summary))
    return summary.exit_code


async def _read_plan(client: ApiClient, job: Job, tenant: TenantConfig) -> Plan:
    """Plan against the tenant; a tenant whose answers cannot be used fails before any change."""
    try:
        return await build_plan(client, job, tenant.name)
    except RequestFailed as exc:
        raise TenantError(
            f"tenant {tenant.name}: reading its tasks failed before any change: {exc}"
        ) from None


def _must(job: Job | None) -> Job:
    assert job is not None
    return job


def _plan_summary(the_plan: Plan, tenant: TenantConfig) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(the_plan.counts().items())) or "none"
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(the_plan.skipped.items())) or "none"
    return (
        f"plan for tenant {tenant.name}: {len(the_plan.changes)} changes ({counts}); "
        f"skipped as done: {skipped}; {the_plan.scanned} tasks read\n"
        f"time: {estimate_writes(the_plan.writes(), tenant.limits).describe()}"
    )


def _guard(the_plan: Plan, req: ApplyRequest) -> None:
    limit = req.max_changes if req.max_changes is not None else the_plan.max_changes
    if limit is not None and len(the_plan.changes) > limit:
        raise RefusedError(
            f"tenant {the_plan.tenant}: the plan has {len(the_plan.changes)} changes, more "
            f"than the max_changes guard of {limit}; nothing was changed"
        )


def _start_run_dir(config: Config, the_plan: Plan, req: ApplyRequest, concurrency: int) -> RunDir:
    run_dir = RunDir.create(config.state_dir, new_run_id(the_plan.job_name, the_plan.tenant))
    the_plan.write(run_dir.plan)
    run_dir.write_meta(
        run_id=run_dir.run_id,
        tenant=the_plan.tenant,
        job=the_plan.job_name,
        target=req.target,
        verify=req.verify,
        concurrency=concurrency,
        started=audit.utc_now(),
        state="planned",
        kind="apply",
    )
    return run_dir


async def _run(
    run_dir: RunDir,
    the_plan: Plan,
    client: ApiClient,
    concurrency: int,
    verify: bool,
    shared: _Shared,
) -> Summary:
    runner = Runner(
        run_dir,
        the_plan,
        client,
        RunOptions(verify=verify, concurrency=concurrency),
        stop=shared.stop.event,
    )
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
    meta = run_dir.meta()
    if meta.get("state") == "finished":
        output.note(f"run {run_id} already finished (exit {meta.get('exit_code')})")
        return int(meta.get("exit_code", 0))
    the_plan = Plan.read(run_dir.plan)
    tenant = config.select([the_plan.tenant])[0]
    concurrency = int(meta.get("concurrency") or config.defaults.concurrency)
    output.note(describe_tenant(tenant, config))
    async with _command_scope(config, output, None) as shared:
        with (
            bound_contextvars(tenant=tenant.name, run_id=run_id),
            run_lock(config.state_dir, tenant.name, the_plan.job_name),
        ):
            async with open_tenant(
                tenant, config, read_only=False, concurrency=concurrency
            ) as session:
                output.note(f"resuming run {run_id}")
                summary = await _run(
                    run_dir,
                    the_plan,
                    session.client,
                    concurrency,
                    bool(meta.get("verify", True)),
                    shared,
                )
    output.result(summary_text(summary))
    return summary.exit_code


def runs(config: Config, output: Output, fmt: str = "table") -> int:
    """List runs, oldest first, with their state and counts."""
    found = list_runs(config.state_dir)
    if not found and fmt == "table":
        output.result(f"no runs under {config.state_dir / 'runs'}")
        return 0
    output.result(render_runs(found, ReportFormat(fmt), tty=output.out.isatty()))
    return 0


def show(
    config: Config,
    run_id: str,
    output: Output,
    fmt: str | None = None,
    report_path: str | None = None,
) -> int:
    """One run: counts per action and outcome, failures and conflicts; any report format."""
    report = RunReport.load(RunDir.find(config.state_dir, run_id))
    _show(output, partial(render_run, report), fmt, Path(report_path) if report_path else None)
    return 0


def audit_verify(config: Config, target: str, output: Output) -> int:
    """Verify a run's hash chain (by run id or path)."""
    path = Path(target)
    if path.is_dir():
        path = path / "audit.jsonl"
    elif not path.is_file():
        path = RunDir.find(config.state_dir, target).audit
    result = audit.verify(path)
    if result.ok:
        sealed = (
            f" ({result.sealed_torn_lines} torn line(s) sealed)" if result.sealed_torn_lines else ""
        )
        output.result(f"ok: {path}: {result.records} records, chain intact{sealed}")
        return 0
    output.result(f"FAILED: {result.error}")
    return 1


@dataclass(frozen=True)
class UndoRequest:
    """What `undo` was asked to do."""

    run_id: str
    yes: bool
    dry_run: bool
    interactive: bool


async def undo(config: Config, req: UndoRequest, output: Output) -> int:
    """Apply the inverse of a finished run as a new run; `--dry-run` only shows it."""
    built = build_undo(RunDir.find(config.state_dir, req.run_id))
    tenant = config.select([built.plan.tenant])[0]
    for record in built.irreversible:
        output.note(
            f"cannot undo: {record.get('action')} of task {record.get('task_id')} "
            f"({(record.get('request') or {}).get('method')})"
        )
    if req.dry_run:
        output.result(plan_table(built.plan, tenant.limits))
        return 0
    apply_req = ApplyRequest(f"undo:{req.run_id}", [], req.yes, req.interactive)
    if not req.yes and not req.interactive:
        raise RefusedError("no terminal to confirm on: pass --yes to undo without asking")
    confirm = _Confirmation(1, yes=req.yes, output=output)
    async with _command_scope(config, output, confirm) as shared:
        return await _apply_one(config, apply_req, tenant, None, built.plan, shared)
