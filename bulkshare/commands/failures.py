"""SIGTERM made to stop a command as SIGINT does (exit 130, not 143), and the traceback that
only -v shows; `errors.failure_of` says what any exception ends a command with.
"""

from __future__ import annotations

import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["sigterm_as_sigint", "traceback_text"]


def traceback_text(exc: BaseException) -> str:
    """The whole traceback, for -v only."""
    return "".join(traceback.format_exception(exc))


@contextmanager
def sigterm_as_sigint() -> Iterator[None]:
    """While a command runs, SIGTERM does what SIGINT does at that moment: inside asyncio.run
    it cancels the command (which unwinds, marks its run interrupted and exits 130), outside
    it raises KeyboardInterrupt. A command that installs its own handlers (a run's Stop) takes
    over while it runs."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return
    previous = signal.signal(signal.SIGTERM, _as_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _as_sigint(signum: int, frame: FrameType | None) -> None:
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt  # SIGINT ignored (a background job): SIGTERM still stops us
