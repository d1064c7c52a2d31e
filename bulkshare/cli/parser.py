"""The whole command line: global options, then one sub-parser per command, built group by
group (the commands that change or read a tenant here, the local ones in `cli.local`).
"""

from __future__ import annotations

import argparse

from bulkshare import __version__
from bulkshare.cli import local
from bulkshare.cli.options import (
    Parser,
    Sub,
    add_accept_incomplete,
    add_report_options,
    add_run_format,
    add_tenants,
    command,
    common_options,
    hours,
    non_negative_int,
    positive_int,
)

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: global options, then one sub-parser per command."""
    common = common_options()
    parser = Parser(
        prog="bulkshare",
        parents=[common],
        description="Bulk administration of Qlik Cloud sharing tasks: plan, apply, audit, "
        "resume, undo. Without a config, the tenant is the built-in simulator.",
        epilog="example: bulkshare plan jobs/disable-orphaned.toml",
    )
    parser.add_argument("--version", action="version", version=f"bulkshare {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for add in (_add_validate, _add_export, _add_plan, _add_apply, _add_resume, _add_undo):
        add(sub, common)
    local.add_commands(sub, common)
    return parser


def _add_validate(sub: Sub[Parser], common: Parser) -> None:
    p = command(
        sub,
        common,
        "validate",
        "check job files; nothing is sent",
        "bulkshare validate jobs/*.toml",
    )
    p.add_argument("jobs", nargs="+", metavar="JOB", help="job files (TOML)")


def _add_export(sub: Sub[Parser], common: Parser) -> None:
    p = command(
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


def _add_plan(sub: Sub[Parser], common: Parser) -> None:
    p = command(
        sub,
        common,
        "plan",
        "dry run: read the tenant and show every change; never writes",
        "bulkshare plan jobs/disable-orphaned.toml --out plan.json --report plan.html",
    )
    p.add_argument("job", metavar="JOB", help="a job file (TOML)")
    add_tenants(p)
    p.add_argument(
        "--out", metavar="PLAN.json", help="save the plan, for `apply PLAN.json` after review"
    )
    add_accept_incomplete(p)
    add_report_options(p)
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when no change is planned, 2 when some are, 1 on any error (as Terraform)",
    )


def _add_apply(sub: Sub[Parser], common: Parser) -> None:
    p = command(
        sub,
        common,
        "apply",
        "plan and apply a job, or apply a saved plan exactly",
        "bulkshare apply jobs/purge-deleting.toml --yes",
    )
    p.add_argument(
        "target", metavar="JOB|PLAN.json", help="a job file, or a plan from `plan --out`"
    )
    add_tenants(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--max-changes",
        type=non_negative_int,
        metavar="N",
        help="refuse a plan of more than N changes (overrides the job's max_changes)",
    )
    p.add_argument("--no-verify", action="store_true", help="do not re-read tasks before writes")
    p.add_argument(
        "--concurrency", type=positive_int, metavar="N", help="requests in flight per tenant"
    )
    p.add_argument(
        "--max-age",
        type=hours,
        metavar="HOURS",
        help="refuse a saved plan older than this many hours "
        "(default: [defaults] plan_max_age_h, else 24)",
    )
    add_accept_incomplete(p)
    add_run_format(p)


def _add_resume(sub: Sub[Parser], common: Parser) -> None:
    p = command(
        sub,
        common,
        "resume",
        "continue an interrupted run; nothing done is done again",
        "bulkshare resume 20261201T081500Z-disable-orphaned-prod-3f9a",
    )
    p.add_argument(
        "run_id",
        metavar="RUN_ID",
        help="the run to continue: its id, a unique prefix of it, or `last` (see `bulkshare runs`)",
    )
    add_run_format(p)


def _add_undo(sub: Sub[Parser], common: Parser) -> None:
    p = command(
        sub,
        common,
        "undo",
        "apply the inverse of a finished run, as a new run",
        "bulkshare undo 20261201T081500Z-reassign-owners-prod-3f9a --dry-run",
    )
    p.add_argument(
        "run_id", metavar="RUN_ID", help="the finished run to undo (id, unique prefix or `last`)"
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="only show the inverse plan")
    add_run_format(p)
