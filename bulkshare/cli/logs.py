"""Where log events go: stderr, as readable lines on a terminal or JSON lines otherwise, each
bound to its tenant and run, every value escaped for where it lands; 429s once per burst.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from bulkshare.commands.throttle import BurstLog
from bulkshare.report.terminal import json_safe, printable

__all__ = ["Logging", "configure_logging", "json_line"]


@dataclass(frozen=True)
class Logging:
    """How the command logs: its format, and the 429 bursts it reports (None with -v)."""

    fmt: str
    bursts: BurstLog | None


def configure_logging(args: argparse.Namespace) -> Logging:
    """Readable lines on a terminal, JSON lines otherwise; 429s once per burst unless -v."""
    verbose = bool(getattr(args, "verbose", False))
    level = (
        logging.DEBUG
        if verbose
        else logging.ERROR
        if getattr(args, "quiet", False)
        else logging.INFO
    )
    bursts = None if verbose else BurstLog()
    fmt = getattr(args, "log_format", None) or ("console" if sys.stderr.isatty() else "json")
    renderers: list[structlog.typing.Processor] = (
        [structlog.processors.JSONRenderer(serializer=json_line)]
        if fmt == "json"
        else [_printable_values, structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            *([bursts] if bursts is not None else []),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *renderers,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    return Logging(fmt, bursts)


def json_line(event: Any, **_: Any) -> str:
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
