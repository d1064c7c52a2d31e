"""The pieces every command's parser is built from: our argparse, the global options, value
types and the options several commands share.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

from bulkshare.errors import UsageError

__all__ = [
    "Parser",
    "Sub",
    "add_accept_incomplete",
    "add_report_options",
    "add_run_format",
    "add_tenants",
    "command",
    "common_options",
    "hours",
    "non_negative_int",
    "positive_int",
    "since",
]

Sub = argparse._SubParsersAction  # argparse names no public type for it


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 through our own path."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"usage: {self.prog}: {message}")


def common_options() -> Parser:
    """The global options, accepted before or after the command name."""
    common = Parser(add_help=False)
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


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def hours(text: str) -> timedelta:
    value = float(text.rstrip("h"))
    if not value > 0 or value == float("inf"):  # `not >` also refuses nan
        raise argparse.ArgumentTypeError("must be a positive number of hours")
    return timedelta(hours=value)


#: an age for `--since`: a number and its unit
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since(text: str, now: datetime | None = None) -> datetime:
    """WHEN of `--since`: an age back from now (`2h`, `3d`) or an ISO date or time (UTC unless
    it names its offset), as an aware datetime."""
    if age := _AGE.fullmatch(text.strip()):
        seconds = float(age.group(1)) * _UNIT_S[age.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            "want an ISO date or time (2026-12-01, 2026-12-01T08:00Z) or an age (30m, 2h, 3d, 1w)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def command(sub: Sub[Parser], common: Parser, name: str, summary: str, example: str) -> Parser:
    """A command's parser: its one-line summary as help and description, an example last."""
    return sub.add_parser(
        name,
        parents=[common],
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_tenants(p: Parser) -> None:
    p.add_argument(
        "--tenant",
        action="append",
        default=[],
        metavar="T",
        help="a tenant of the config (repeat for several; `all` for every one)",
    )


def add_accept_incomplete(p: Parser) -> None:
    p.add_argument(
        "--accept-incomplete",
        action="store_true",
        help="plan the tasks listed even when they do not add up to the tenant's totalCount",
    )


def add_report_options(p: Parser) -> None:
    # no default: an explicit --format also prints to stdout when --report writes a file
    p.add_argument(
        "--format",
        choices=("text", "table", "json", "csv", "markdown", "html"),
        help="output format (default text; `table` is the same)",
    )
    p.add_argument(
        "--report",
        metavar="FILE",
        help="write the report to FILE, in --format or else by suffix (.html .md .csv .json)",
    )


def add_run_format(p: Parser) -> None:
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: the summary (default); json: one JSON object on stdout with the run id, "
        "state, exit code and counts, and nothing else there",
    )
