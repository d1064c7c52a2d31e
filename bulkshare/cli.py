"""Parse the command line, call the library, print; map every error to its exit code."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import structlog

from bulkshare import commands
from bulkshare.config import load_config
from bulkshare.errors import BulkshareError, UsageError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 through our own path."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"usage: {self.prog}: {message}")


def _common() -> _Parser:
    # global options are accepted before or after the command name
    common = _Parser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help="config file (TOML)")
    common.add_argument("--log-format", choices=("console", "json"), default=argparse.SUPPRESS)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS)
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
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of hours")
    return timedelta(hours=value)


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog="bulkshare",
        parents=[common],
        description="Bulk administration of Qlik Cloud sharing tasks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", parents=[common], help="check job files")
    p.add_argument("jobs", nargs="+")

    p = sub.add_parser("plan", parents=[common], help="dry run: show every change")
    p.add_argument("job")
    p.add_argument("--tenant", action="append", default=[])
    p.add_argument("--out", help="write the plan to this file, for `apply PLAN.json`")
    _add_accept_incomplete(p)
    _add_report_options(p)

    p = sub.add_parser("apply", parents=[common], help="plan and apply a job, or apply a plan")
    p.add_argument("target", help="a job file, or a plan saved with `plan --out`")
    p.add_argument("--tenant", action="append", default=[])
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--max-changes", type=_non_negative_int)
    p.add_argument("--no-verify", action="store_true", help="do not re-read tasks before writes")
    p.add_argument("--concurrency", type=_positive_int)
    p.add_argument(
        "--max-age",
        type=_hours,
        default=timedelta(hours=24),
        help="refuse a saved plan older than this many hours (default 24)",
    )
    _add_accept_incomplete(p)

    p = sub.add_parser("resume", parents=[common], help="continue an interrupted run")
    p.add_argument("run_id")

    p = sub.add_parser("undo", parents=[common], help="apply the inverse of a finished run")
    p.add_argument("run_id")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="only show the inverse plan")

    p = sub.add_parser("runs", parents=[common], help="list runs")
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = sub.add_parser("show", parents=[common], help="show one run")
    p.add_argument("run_id")
    _add_report_options(p)

    p = sub.add_parser("audit", parents=[common], help="audit log tools")
    audit_sub = p.add_subparsers(dest="audit_command", required=True, parser_class=_Parser)
    v = audit_sub.add_parser("verify", parents=[common], help="verify a run's hash chain")
    v.add_argument("target", help="run id, run directory or audit.jsonl path")

    _add_sim(sub, common)
    return parser


def _add_accept_incomplete(p: _Parser) -> None:
    p.add_argument(
        "--accept-incomplete",
        action="store_true",
        help="plan the tasks listed even when they do not add up to the tenant's totalCount",
    )


def _add_report_options(p: _Parser) -> None:
    # no default: an explicit --format also prints to stdout when --report writes a file
    p.add_argument("--format", choices=("table", "json", "csv", "markdown", "html"))
    p.add_argument(
        "--report",
        metavar="FILE",
        help="write the report to FILE, in --format or else by suffix (.html .md .csv .json)",
    )


def _add_sim(sub: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    p = sub.add_parser("sim", parents=[common], help="serve a simulated tenant")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_non_negative_int, default=8080)
    p.add_argument("--tasks", type=_non_negative_int, default=1000)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--data", help="load the tenant from a JSON document")
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--latency-ms", type=_non_negative_int, default=0)
    p.add_argument("--tier1-per-minute", type=_positive_int, default=1000)
    p.add_argument("--tier2-per-minute", type=_positive_int, default=100)
    p.add_argument("--window-s", type=float, default=300.0)
    p.add_argument("--api-key")
    p.add_argument("--client-id")
    p.add_argument("--client-secret")
    p.add_argument("--token-ttl-s", type=float, default=21600.0)
    p.add_argument(
        "--deleting-phase",
        action="store_true",
        help="DELETE first puts a task in DELETING, as the real service can",
    )


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
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    return fmt


def _json_line(event: Any, **_: Any) -> str:
    return orjson.dumps(event, default=str).decode()


def _stderr_logger(*_: Any) -> structlog.PrintLogger:
    # looked up per call, so a live progress display that wraps stderr keeps log lines above it
    return structlog.PrintLogger(sys.stderr)


def _dispatch(args: argparse.Namespace, output: commands.Output) -> int:
    if args.command == "validate":
        return commands.validate(args.jobs, output)
    if args.command == "sim":
        return _sim(args)
    config = load_config(getattr(args, "config", None))
    if args.command == "plan":
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
    if args.command == "apply":
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
        return asyncio.run(commands.apply(config, req, output))
    if args.command == "resume":
        return asyncio.run(commands.resume(config, args.run_id, output))
    if args.command == "undo":
        undo_req = commands.UndoRequest(args.run_id, args.yes, args.dry_run, sys.stdin.isatty())
        return asyncio.run(commands.undo(config, undo_req, output))
    if args.command == "runs":
        return commands.runs(config, output, args.format)
    if args.command == "show":
        return commands.show(config, args.run_id, output, args.format, args.report)
    return commands.audit_verify(config, args.target, output)


def _sim(args: argparse.Namespace) -> int:
    from bulkshare.sim import SimConfig, SimTenant, serve

    if args.data:
        try:
            tenant = SimTenant.load(Path(args.data))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--data {args.data}: {exc}") from None
    else:
        tenant = SimTenant.seed(args.tasks, args.seed)
    if bool(args.client_id) != bool(args.client_secret):
        raise UsageError("usage: bulkshare sim: --client-id and --client-secret go together")
    config = SimConfig(
        tier1_per_minute=args.tier1_per_minute,
        tier2_per_minute=args.tier2_per_minute,
        window_s=args.window_s,
        api_key=args.api_key,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl_s=args.token_ttl_s,
        fault_rate=args.fault_rate,
        seed=args.seed,
        latency_ms=args.latency_ms,
        deleting_phase=args.deleting_phase,
    )
    serve(args.host, args.port, tenant, config)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bulkshare` command; returns the exit code."""
    output = commands.Output()
    try:
        args = build_parser().parse_args(argv)
        output.quiet = bool(getattr(args, "quiet", False))
        output.structured = _configure_logging(args) == "json"
        return _dispatch(args, output)
    except BulkshareError as exc:
        output.error(f"bulkshare: {exc}", exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        output.error("bulkshare: interrupted", 130)
        return 130


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
