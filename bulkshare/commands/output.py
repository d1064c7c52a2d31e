"""Where a command writes: results to stdout, announcements and errors to stderr (or as log
events with `--log-format json`). Nothing reaches a terminal with a control character raw.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

import structlog

from bulkshare.commands.throttle import BurstLog
from bulkshare.report.terminal import printable

__all__ = ["Output"]

_log = structlog.get_logger("bulkshare")
#: the notices -q keeps, logged past the level -q sets (errors only) with --log-format json
_notice_log = structlog.wrap_logger(
    None, wrapper_class=structlog.make_filtering_bound_logger(logging.INFO)
)


@dataclass
class Output:
    """Where a command writes: results to `out`, announcements to `err`.

    While a live display owns the terminal (`hold`), announcements are printed above it and
    results and final lines wait until it has stopped (`release`): none lands on its line.
    """

    # looked up when the Output is made, not when this module is imported
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    #: announcements and errors go out as log events (JSON lines with --log-format json)
    structured: bool = False
    #: the 429 bursts the log reports (set by the CLI's logging), for the progress board to end
    bursts: BurstLog | None = None
    #: prints a line above the live display, while one holds the terminal
    _above: Callable[[str], None] | None = field(default=None, repr=False)
    #: results and final lines held until the live display stops: (stdout?, text)
    _held: list[tuple[bool, str]] = field(default_factory=list, repr=False)

    def result(self, text: str) -> None:
        """Text for stdout. On a terminal every control character is escaped; into a pipe or a
        file it goes as rendered (a report's own format escapes what it must)."""
        if self._above is not None:
            self._held.append((True, text))
            return
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
            self._print_note(text)

    def notice(self, text: str) -> None:
        """An announcement shown even with -q: that the tenant is the built-in simulator, that
        the state directory is unsafe; -q hides the chatter, never these."""
        if self.structured:
            _notice_log.warning("note", message=text)  # the same event, kept by -q
        else:
            self._print_note(text)

    def _print_note(self, text: str) -> None:
        if self._above is not None:
            self._above(printable(text, lines=True))
        else:
            self._print_err(printable(text, lines=True))

    def final(self, text: str) -> None:
        """A closing line for stderr (a multi-tenant command's combined line): printed after
        the live display has stopped, below its last state."""
        if self.quiet:
            return
        if self._above is not None and not self.structured:
            self._held.append((False, text))
        else:
            self.note(text)

    def error(self, text: str, exit_code: int) -> None:
        """One line naming what is wrong; shown even with -q. Always one line: a line break in
        the text (a server's error detail) is escaped with the rest."""
        if self.structured:
            _log.error("error", message=printable(text), exit_code=exit_code)
        elif self._above is not None:
            self._above(printable(text))
        else:
            self._print_err(printable(text))

    def hold(self, above: Callable[[str], None]) -> None:
        """A live display owns the terminal: announcements go through `above`, results wait."""
        self._above = above

    def release(self) -> None:
        """The live display has stopped: print what waited for it, in order."""
        self._above = None
        held, self._held = self._held, []
        for to_stdout, text in held:
            if to_stdout:
                self.result(text)
            else:
                self.note(text)

    def _print_err(self, text: str) -> None:
        # stderr gone (closed by the caller): the exit code still tells
        with contextlib.suppress(BrokenPipeError, ValueError):
            print(text, file=self.err, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):  # a closed stream
        return False
