"""Parse the command line, call the library, print; map every error to its exit code.

Each command's parser says what it does, has a help line per flag and ends with an example.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, MutableMapping, Sequence
from datetime import timedelta
from typing import Any

import orjson
import structlog

from bulkshare import __version__, commands
from bulkshare.commands.failures import sigterm_as_sigint, traceback_text
from bulkshare.config import Config, load_config
from bulkshare.errors import InternalError, UsageError, failure_of
from bulkshare.report.terminal import json_safe, printable

__all__ = ["build_parser", "main", "run"]

_Sub = argparse._SubParsersAction  # argparse names no public type for it


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 through our own path."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"usage: {self.prog}: {message}")


def _common() -> _Parser:
    # global options are accepted before or after the command name
    common = _Parser(add_help=False)
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="config file (default: $BULKSHARE_CONFIG, else ./bulkshare.toml, else the simulator)",
    )
    common.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=argparse.SUPPRESS,
        help="stderr as readable lines or JSON events (default: console on a terminal, else json)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="errors only on stderr (results still go to stdout)",
    )
    return common


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def _hours(text: str) -> timedelta:
    value = float(text.rstrip("h"))
    if not value > 0 or value == float("inf"):  # `not >` also refuses nan
        raise argparse.ArgumentTypeError("must be a positive number of hours")
    return timedelta(hours=value)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: global options, then one sub-parser per command."""
    common = _common()
    parser = _Parser(
        prog="bulkshare",
        parents=[common],
        description="Bulk administration of Qlik Cloud sharing tasks: plan, apply, audit, "
        "resume, undo. Without a config, the tenant is the built-in simulator.",
        epilog="example: bulkshare plan jobs/disable-orphaned.toml",
    )
    parser.add_argument("--version", action="version", version=f"bulkshare {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in (_add_validate, _add_export, _add_plan, _add_apply, _add_resume, _add_undo):
        add(sub, common)
    for add in (_add_runs, _add_show, _add_unlock, _add_audit, _add_sim):
        add(sub, common)
    return parser


def _command(sub: _Sub[_Parser], common: _Parser, name: str, summary: str, example: str) -> _Parser:
    return sub.add_parser(
        name,
        parents=[common],
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_validate(sub: _Sub[_Parser], common: _Parser) -> None:
    p = _command(
        sub,
        common,
        "validate",
        "check job files; nothing is sent",
        "bulkshare validate jobs/*.toml",
    )
    p.add_argument("jobs", nargs="+", metavar="JOB", help="job files (TOML)")


def _add_tenants(p: _Parser) -> None:
    p.add_argument(
        "--tenant",
        action="append",
        default=[],
        metavar="T",
        help="a tenant of the config (repeat for several; `all` for every one)",
    )


def _add_export(sub: _Sub[_Parser], common: _Parser) -> None:
    p = _command(
        sub,
        common,
        "export",
        "write the tenant's tasks, or those a job's where selects, to a file; never writes to it",
        "bulkshare export jobs/disable-orphaned.toml --out orphaned.csv",
    )
    p.add_argument(
        "job",
        nargs="?",
        metavar="JOB",
        help="a job file: only the tasks its where selects (default: every task)",
    )
    p.add_argument("--tenant", metavar="T", help="the tenant to read (default: the only one)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--out",
        metavar="FILE",
        help="write here, whole or not at all (`-` streams to stdout)",
    )
    target.add_argument(
        "--verify",
        metavar="FILE",
        help="check an export file's header, count and SHA-256 instead; reads no tenant",
    )
    p.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        help="jsonl: full task documents (default); csv: an inventory (default for *.csv)",
    )


def _add_plan(sub: _Sub[_Parser], common: _Parser) -> None:
    p = _command(
        sub,
        common,
        "plan",
        "dry run: read the tenant and show every change; never writes",
        "bulkshare plan jobs/disable-orphaned.toml --out plan.json --report plan.html",
    )
    p.add_argument("job", metavar="JOB", help="a job file (TOML)")
    _add_tenants(p)
    p.add_argument(
        "--out", metavar="PLAN.json", help="save the plan, for `apply PLAN.json` after review"
    )
    _add_accept_incomplete(p)
    _add_report_options(p)


def _add_apply(sub: _Sub[_Parser], common: _Parser) -> None:
    p = _command(
        sub,
        common,
        "apply",
        "plan and apply a job, or apply a saved plan exactly",
        "bulkshare apply jobs/purge-deleting.toml --yes",
    )
    p.add_argument(
        "target", metavar="JOB|PLAN.json", help="a job file, or a plan from `plan --out`"
    )
    _add_tenants(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--max-changes",
        type=_non_negative_int,
        metavar="N",
        help="refuse a plan of more than N changes (overrides the job's max_changes)",
    )
    p.add_argument("--no-verify", action="store_true", help="do not re-read tasks before writes")
    p.add_argument(
        "--concurrency", type=_positive_int, metavar="N", help="requests in flight per tenant"
    )
    p.add_argument(
        "--max-age",
        type=_hours,
        metavar="HOURS",
        help="refuse a saved plan older than this many hours "
        "(default: [defaults] plan_max_age_h, else 24)",
    )
    _add_accept_incomplete(p)


def _add_resume(sub: _Sub[_Parser], common: _Parser) -> None:
    p = _command(
        sub,
        common,
        "resume",
        "continue an interrupted run; nothing done is done again",
        "bulkshare resume 20261201T081500Z-disable-orphaned-prod-3f9a",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="the run to continue (see `bulkshare runs`)")


def _add_undo(sub: _Sub[_Parser], common: _Parser) -> None:
    p = _command(
        sub,
        common,
        "undo",
        "apply the inverse of a finished run, as a new run",
        "bulkshare undo 20261201T081500Z-reassign-owners-prod-3f9a --dry-run",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="the finished run to undo")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="only show the inverse plan")


def _add_runs(sub: _Sub[_Parser], common: _Parser) -> None:
    p = _command(
        sub, common, "runs", "list runs, oldest first, with state and counts", "bulkshare runs"
    )
    p.add_argument(
        "--format", choices=("table", "json"), default="table", help="output (default table)"
    )


def _add_show(sub: _Sub[_Parser], common: _Parser) -> None:
    p = _command(
        sub,
        common,
        "show",
        "one run: counts per action and outcome, failures and conflicts",
        "bulkshare show 20261201T081500Z-disable-orphaned-prod-3f9a --report run.html",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="the run to show")
    _add_report_options(p)


def _add_unlock(sub: _Sub[_Parser], common: _Parser) -> None:
    p = _command(
        sub,
        common,
        "unlock",
        "name who holds a job's lock; remove it if its run is gone (its lease lapsed)",
        "bulkshare unlock prod disable-orphaned",
    )
    p.add_argument("tenant", metavar="TENANT", help="the tenant of the config the lock is for")
    p.add_argument("job", metavar="JOB", help="the job name (the [job] name, not the file)")
    p.add_argument(
        "--force",
        action="store_true",
        help="remove it even if its lease is live (that run then stops, resumable)",
    )


def _add_audit(sub: _Sub[_Parser], common: _Parser) -> None:
    p = _command(
        sub,
        common,
        "audit",
        "audit log tools",
        "bulkshare audit verify 20261201T081500Z-disable-orphaned-prod-3f9a",
    )
    audit_sub = p.add_subparsers(
        dest="audit_command", metavar="SUBCOMMAND", required=True, parser_class=_Parser
    )
    v = _command(
        audit_sub,
        common,
        "verify",
        "verify a run's hash chain",
        "bulkshare audit verify .bulkshare/runs/RUN_ID/audit.jsonl",
    )
    v.add_argument(
        "target", metavar="RUN_ID|PATH", help="run id, run directory or audit.jsonl path"
    )


def _add_accept_incomplete(p: _Parser) -> None:
    p.add_argument(
        "--accept-incomplete",
        action="store_true",
        help="plan the tasks listed even when they do not add up to the tenant's totalCount",
    )


def _add_report_options(p: _Parser) -> None:
    # no default: an explicit --format also prints to stdout when --report writes a file
    p.add_argument(
        "--format",
        choices=("table", "json", "csv", "markdown", "html"),
        help="output format (default table)",
    )
    p.add_argument(
        "--report",
        metavar="FILE",
        help="write the report to FILE, in --format or else by suffix (.html .md .csv .json)",
    )


def _add_sim(sub: _Sub[_Parser], common: _Parser) -> None:
    from bulkshare.sim.command import add_arguments

    p = _command(
        sub,
        common,
        "sim",
        "serve a simulated tenant on a local port",
        "bulkshare sim --port 8080 --tasks 5000 --api-key demo-key",
    )
    add_arguments(p)  # the simulator's own flags, each with its help line


def _configure_logging(args: argparse.Namespace) -> str:
    """Readable lines on a terminal, JSON lines otherwise; each bound to its tenant and run."""
    level = (
        logging.DEBUG
        if getattr(args, "verbose", False)
        else logging.ERROR
        if getattr(args, "quiet", False)
        else logging.INFO
    )
    fmt = getattr(args, "log_format", None) or ("console" if sys.stderr.isatty() else "json")
    renderers: list[structlog.typing.Processor] = (
        [structlog.processors.JSONRenderer(serializer=_json_line)]
        if fmt == "json"
        else [_printable_values, structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *renderers,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    return fmt


def _json_line(event: Any, **_: Any) -> str:
    """One JSON object per line; the characters JSON encoders leave raw (DEL, C1, bidi and
    other format controls) written as escapes, so the line stays valid JSON and inert."""
    try:
        return json_safe(orjson.dumps(event, default=str).decode())
    except orjson.JSONEncodeError:  # a lone surrogate (a file name that is not UTF-8)
        return json_safe(json.dumps(event, default=str))


def _printable_values(_: Any, __: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """Console log lines: every text value escaped (a server's error text, a task id)."""
    return {k: printable(v) if isinstance(v, str) else v for k, v in event.items()}


def _stderr_logger(*_: Any) -> structlog.PrintLogger:
    # looked up per call, so a live progress display that wraps stderr keeps log lines above it
    return structlog.PrintLogger(sys.stderr)


_Handler = Callable[[argparse.Namespace, commands.Output], int]


def _dispatch(args: argparse.Namespace, output: commands.Output) -> int:
    if args.command == "validate":
        return commands.validate(args.jobs, output)
    if args.command == "sim":
        return _sim(args)
    return _WITH_CONFIG[args.command](args, output)


def _config(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def _plan(args: argparse.Namespace, output: commands.Output) -> int:
    config = _config(args)
    return asyncio.run(
        commands.plan(
            config,
            args.job,
            args.tenant,
            args.format,
            args.out,
            output,
            args.report,
            accept_incomplete=args.accept_incomplete,
        )
    )


def _apply(args: argparse.Namespace, output: commands.Output) -> int:
    req = commands.ApplyRequest(
        args.target,
        args.tenant,
        args.yes,
        sys.stdin.isatty(),
        args.max_changes,
        not args.no_verify,
        args.concurrency,
        args.max_age,
        args.accept_incomplete,
    )
    return asyncio.run(commands.apply(_config(args), req, output))


def _resume(args: argparse.Namespace, output: commands.Output) -> int:
    return asyncio.run(commands.resume(_config(args), args.run_id, output))


def _undo(args: argparse.Namespace, output: commands.Output) -> int:
    req = commands.UndoRequest(args.run_id, args.yes, args.dry_run, sys.stdin.isatty())
    return asyncio.run(commands.undo(_config(args), req, output))


def _export(args: argparse.Namespace, output: commands.Output) -> int:
    if args.verify is not None:
        if args.job or args.tenant or args.format:
            raise UsageError("usage: bulkshare export: --verify takes no JOB, --tenant or --format")
        return commands.verify_export_file(args.verify, output)
    req = commands.ExportRequest(args.out, args.job, args.tenant, args.format)
    return asyncio.run(commands.export(_config(args), req, output))


def _runs(args: argparse.Namespace, output: commands.Output) -> int:
    return commands.runs(_config(args), output, args.format)


def _show(args: argparse.Namespace, output: commands.Output) -> int:
    return commands.show(_config(args), args.run_id, output, args.format, args.report)


def _unlock(args: argparse.Namespace, output: commands.Output) -> int:
    return commands.unlock(_config(args), args.tenant, args.job, args.force, output)


def _audit(args: argparse.Namespace, output: commands.Output) -> int:
    return commands.audit_verify(_config(args), args.target, output)


_WITH_CONFIG: dict[str, _Handler] = {
    "export": _export,
    "plan": _plan,
    "apply": _apply,
    "resume": _resume,
    "undo": _undo,
    "runs": _runs,
    "show": _show,
    "unlock": _unlock,
    "audit": _audit,
}


def _sim(args: argparse.Namespace) -> int:
    from bulkshare.sim import serve
    from bulkshare.sim.command import from_args

    try:
        tenant, config = from_args(args)
    except ValueError as exc:
        raise UsageError(f"usage: bulkshare sim: {exc}") from None
    serve(args.host, args.port, tenant, config)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bulkshare` command; returns the exit code.

    Whatever ends a command ends it here, as one line on stderr and a documented exit code:
    our own errors, a signal, an ExceptionGroup, a file or SQLite error, and a bug too (its
    traceback only with -v).
    """
    output = commands.Output()
    verbose = False
    with sigterm_as_sigint():
        try:
            parser = build_parser()
            args = parser.parse_args(argv)
            verbose = bool(getattr(args, "verbose", False))
            if args.command is None:
                # bare `bulkshare`: what there is to do, on stdout
                output.result(parser.format_help().rstrip("\n"))
                return 0
            output.quiet = bool(getattr(args, "quiet", False))
            output.structured = _configure_logging(args) == "json"
            return _dispatch(args, output)
        except SystemExit as exc:  # --help and --version print, then exit 0
            return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
        except BaseException as exc:  # the one place every failure ends
            failure = failure_of(exc)
            if verbose and failure.exit_code == InternalError.exit_code:
                output.err.write(traceback_text(exc))
            output.error(f"bulkshare: {failure.message}", failure.exit_code)
            return failure.exit_code


def run() -> None:
    """Console-script entry point."""
    code = main()
    # the command is over and its exit code decided: a signal now changes nothing
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    sys.exit(code)
