"""How far each tenant's run has got: live on a terminal (rich), periodic log lines otherwise.

It only reads the runners' counters on a timer, so the engine's hot path pays nothing for it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.text import Text

from bulkshare.commands.output import Output
from bulkshare.run import Runner

__all__ = ["STALL_S", "ProgressBoard", "Snapshot"]

log = structlog.get_logger("bulkshare.progress")

#: how often the live display is redrawn
_LIVE_EVERY_S = 0.25
#: a run that has recorded nothing for this long while its requests wait is shown waiting
STALL_S = 2.0


@dataclass(frozen=True)
class Snapshot:
    """One tenant's run at one moment."""

    tenant: str
    run_id: str
    done: int  #: changes recorded, including those recorded before a resume
    total: int
    rate: float  #: changes recorded per second by this process (not by earlier ones)
    eta_s: float | None  #: None until there is a rate to go by
    throttled: int  #: 429s seen by this process
    waiting: int = 0  #: requests waiting for rate budget now
    paused_s: float = 0.0  #: seconds left in a 429 pause of the tenant
    stalled_s: float = 0.0  #: seconds since the last change was recorded

    def eta_text(self) -> str:
        if self.done >= self.total:
            return "done"
        if self.eta_s is None:
            return "-"
        minutes, secs = divmod(round(self.eta_s), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"

    @property
    def state(self) -> str:
        """running, paused (a 429 pause holds the tenant), waiting (for budget) or done."""
        if self.done >= self.total:
            return "done"
        if self.paused_s > 0:
            return "paused"
        if self.waiting and self.stalled_s >= STALL_S:
            return "waiting"
        return "running"

    def status_text(self) -> str:
        """The live line's words: rate and ETA, or why nothing moves."""
        state = self.state
        if state == "paused":
            return f"paused by 429s ({math.ceil(self.paused_s)} s left)"
        if state == "waiting":
            return f"waiting for budget ({math.floor(self.stalled_s)} s)"
        return f"{self.rate:,.0f}/s ETA {self.eta_text()}"


class _Tracked:
    __slots__ = (
        "changed_at",
        "last_done",
        "rich_task",
        "runner",
        "start_done",
        "started",
        "tenant",
    )

    def __init__(self, tenant: str, runner: Runner, now: float, already_done: int) -> None:
        self.tenant = tenant
        self.runner = runner
        self.started = now
        # what earlier processes recorded: not this process's work, so not in its rate
        self.start_done = already_done
        self.last_done = already_done
        self.changed_at = now
        self.rich_task: TaskID | None = None

    def snapshot(self, now: float) -> Snapshot:
        runner = self.runner
        done, total = max(runner.recorded, self.start_done), len(runner.plan.changes)
        if done > self.last_done:
            self.last_done, self.changed_at = done, now
        elapsed = now - self.started
        rate = (done - self.start_done) / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        budgets = runner.client.budgets
        return Snapshot(
            self.tenant,
            runner.run_dir.run_id,
            done,
            total,
            rate,
            eta,
            runner.client.throttled,
            budgets.waiting(),
            budgets.pause_left_s(),
            now - self.changed_at,
        )


class ProgressBoard:
    """Shows every tracked run: a rich display when `live`, else a log line every `every_s`.

    Live, it owns the terminal: the command's announcements print above the display, and its
    results and closing lines only once the display has stopped (see `Output.hold`).
    """

    def __init__(
        self,
        output: Output,
        *,
        live: bool,
        every_s: float,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._output = output
        self._live = live
        self._every_s = every_s
        self._enabled = enabled
        self._clock = clock
        self._tracked: dict[int, _Tracked] = {}
        self._rich: Progress | None = None
        self._ticker: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<ProgressBoard live={self._live} tracking={len(self._tracked)}>"

    async def __aenter__(self) -> ProgressBoard:
        if self._enabled:
            self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for tracked in list(self._tracked.values()):
            self.finish(tracked.runner)
        if self._output.bursts is not None:
            self._output.bursts.flush(everything=True)  # above the display's last state
        self.stop()

    def stop(self) -> None:
        """Stop the live display (its last state stays on screen), then print what waited."""
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
        self._output.release()

    def track(self, tenant: str, runner: Runner, already_done: int = 0) -> None:
        """Start showing a run that is about to start (or resume, `already_done` recorded)."""
        if not self._enabled:
            return
        tracked = _Tracked(tenant, runner, self._clock(), already_done)
        self._tracked[id(runner)] = tracked
        if self._live:
            tracked.rich_task = self._display().add_task(
                tenant, total=len(runner.plan.changes), status="-", throttled=0
            )
            self._draw(tracked)

    def snapshots(self) -> list[Snapshot]:
        """Every tracked run as it stands now, in the order they were tracked."""
        now = self._clock()
        return [tracked.snapshot(now) for tracked in self._tracked.values()]

    def finish(self, runner: Runner) -> None:
        """Show a run's last state and stop tracking it."""
        tracked = self._tracked.pop(id(runner), None)
        if tracked is None:
            return
        if self._live:
            self._draw(tracked)
        else:
            self._log(tracked, "progress-final")

    async def _tick(self) -> None:
        every = _LIVE_EVERY_S if self._live else self._every_s
        while True:
            await asyncio.sleep(every)
            if self._output.bursts is not None:
                self._output.bursts.flush()  # a burst of 429s that is over says so now
            for tracked in list(self._tracked.values()):
                if self._live:
                    self._draw(tracked)
                else:
                    self._log(tracked, "progress")

    def _display(self) -> Progress:
        if self._rich is None:
            self._rich = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}", markup=False),
                TextColumn("429s {task.fields[throttled]}", markup=False),
                console=Console(file=self._output.err),
                auto_refresh=False,
            )
            self._rich.start()
            self._output.hold(self._above)
        return self._rich

    def _above(self, text: str) -> None:
        """A line printed above the live display (rich keeps the display below it)."""
        if self._rich is None:
            self._output.err.write(text + "\n")
            return
        self._rich.console.print(Text(text), soft_wrap=True)
        self._rich.refresh()

    def _draw(self, tracked: _Tracked) -> None:
        snap = tracked.snapshot(self._clock())
        assert tracked.rich_task is not None
        rich = self._display()
        rich.update(
            tracked.rich_task,
            completed=snap.done,
            status=snap.status_text(),
            throttled=snap.throttled,
        )
        rich.refresh()

    def _log(self, tracked: _Tracked, event: str) -> None:
        snap = tracked.snapshot(self._clock())
        log.info(
            event,
            tenant=snap.tenant,
            run_id=snap.run_id,
            done=snap.done,
            total=snap.total,
            rate_per_s=round(snap.rate, 1),
            eta_s=None if snap.eta_s is None else round(snap.eta_s),
            throttled=snap.throttled,
            state=snap.state,
            waiting=snap.waiting,
            paused_s=round(snap.paused_s, 1),
        )
