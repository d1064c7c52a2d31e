"""What the tenants of one command share: one stop on signals, one confirmation, one progress
board, and running the same work for every tenant at once.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import NoReturn

from bulkshare.client.budget import Halt
from bulkshare.commands.machine import RunResults
from bulkshare.commands.output import Output
from bulkshare.commands.progress import ProgressBoard
from bulkshare.config import Config, TenantConfig
from bulkshare.errors import BulkshareError
from bulkshare.plan import Plan

__all__ = ["Confirmation", "Shared", "Stop", "command_scope", "each_tenant"]


async def each_tenant(
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


class Stop:
    """One stop for every tenant of a command.

    The first signal stops taking new work and drops every request still waiting to be sent
    (for rate budget above all: a wait that can last a whole window), so they stay planned and
    `resume` sends them; requests already sent finish and are recorded. A second signal, or
    any signal while no run has started, interrupts at once (exit 130). A run whose lock was
    taken from it stops as on a first signal.
    """

    def __init__(self, output: Output) -> None:
        self.event = asyncio.Event()
        #: what the clients of the command's runs drop their waiting requests on
        self.halt = Halt()
        self.running = 0  #: runs in progress
        self._output = output
        self._loop = asyncio.get_running_loop()

    def __call__(self) -> None:
        if self.running == 0:
            interrupt()
        if self.event.is_set():
            # forced: cancel the requests in flight; the records of finished ones are still
            # flushed, and resume settles the cancelled ones by reading
            self._output.note("forced stop: cancelling in-flight requests")
            interrupt()
        self._stop(
            "stopping: requests not yet sent are dropped (resume sends them), those in flight "
            "finish (signal again to force)"
        )

    def _stop(self, why: str) -> None:
        self._output.note(why)
        self.event.set()
        self.halt.set()

    def lock_lost(self, why: str) -> None:
        """The lock of a run was taken from it (any thread): stop as on a first signal."""
        self._loop.call_soon_threadsafe(self._lost, why)

    def _lost(self, why: str) -> None:
        if not self.event.is_set():
            self._stop(f"stopping: {why}")

    @contextmanager
    def installed(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        sigs = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.getsignal(sig) for sig in sigs}
        for sig in sigs:
            loop.add_signal_handler(sig, self)
        try:
            yield
        finally:
            for sig in sigs:
                loop.remove_signal_handler(sig)  # leaves SIGTERM at SIG_DFL (exit 143)...
                if (handler := previous[sig]) is not None:
                    signal.signal(sig, handler)  # ...so the command's own one is put back


def interrupt() -> NoReturn:
    # raised from the event loop, so tasks are cancelled at their awaits and unwind cleanly
    raise KeyboardInterrupt


class Confirmation:
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
class Shared:
    """What the tenants of one command share."""

    output: Output
    stop: Stop
    board: ProgressBoard
    confirm: Confirmation | None
    #: how each run ended, for `--format json`
    results: RunResults


@asynccontextmanager
async def command_scope(
    config: Config,
    output: Output,
    confirm: Confirmation | None,
    results: RunResults | None = None,
) -> AsyncIterator[Shared]:
    """Signals handled and progress shown for the whole command, across its tenants."""
    stop = Stop(output)
    board = ProgressBoard(
        output,
        live=output.err.isatty(),
        every_s=config.defaults.progress_every_s,
        enabled=not output.quiet,
    )
    with stop.installed():
        async with board:
            yield Shared(output, stop, board, confirm, results or RunResults())
