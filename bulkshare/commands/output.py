"""Where a command writes: results to stdout, announcements and errors to stderr (or as log
events with `--log-format json`). Nothing reaches a terminal with a control character raw.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

import structlog

from bulkshare.report.terminal import printable

__all__ = ["Output"]

_log = structlog.get_logger("bulkshare")


@dataclass
class Output:
    """Where a command writes: results to `out`, announcements to `err`."""

    # looked up when the Output is made, not when this module is imported
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    #: announcements and errors go out as log events (JSON lines with --log-format json)
    structured: bool = False

    def result(self, text: str) -> None:
        """Text for stdout. On a terminal every control character is escaped; into a pipe or a
        file it goes as rendered (a report's own format escapes what it must)."""
        if _is_terminal(self.out):
            text = printable(text, lines=True)
        try:
            print(text, file=self.out, flush=True)
        except BrokenPipeError:
            # the reader left (`show ... | head`): what it read is what it wanted; the command's
            # own outcome and exit code stand, and nothing more is written to the closed pipe
            self.out = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

    def note(self, text: str) -> None:
        """An announcement for stderr (it may be several lines: a table)."""
        if self.quiet:
            return
        if self.structured:
            _log.info("note", message=text)  # JSON escapes it (see cli.logs.json_line)
        else:
            self._print_err(printable(text, lines=True))

    def error(self, text: str, exit_code: int) -> None:
        """One line naming what is wrong; shown even with -q. Always one line: a line break in
        the text (a server's error detail) is escaped with the rest."""
        if self.structured:
            _log.error("error", message=printable(text), exit_code=exit_code)
        else:
            self._print_err(printable(text))

    def _print_err(self, text: str) -> None:
        # stderr gone (closed by the caller): the exit code still tells
        with contextlib.suppress(BrokenPipeError, ValueError):
            print(text, file=self.err, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):  # a closed stream
        return False
