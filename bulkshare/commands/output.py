"""Where a command writes: results to stdout, announcements and errors to stderr (or as log
events with `--log-format json`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

import structlog

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
