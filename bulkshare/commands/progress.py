"""How far each tenant's run has got: live on a terminal (rich), periodic log lines otherwise.

It only reads the runners' counters on a timer, so the engine's hot path pays nothing for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from bulkshare.run import Runner

__all__ = ["ProgressBoard", "Snapshot"]

log = structlog.get_logger("bulkshare.progress")

#: how often the live display is redrawn
_LIVE_EVERY_S = 0.25


@dataclass(frozen=True)
class Snapshot:
    """One tenant's run at one moment."""

    tenant: str
    run_id: str
    done: int  #: changes recorded, including those recorded before a resume
    total: int
    rate: float  #: changes recorded per second by this process
    eta_s: float | None  #: None until there is a rate to go by
    throttled: int  #: 429s seen by this process

    def eta_text(self) -> str:
        if self.done >= self.total:
            return "done"
        if self.eta_s is None:
            return "-"
        minutes, secs = divmod(round(self.eta_s), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Tracked:
    __slots__ = ("rich_task", "runner", "start_done", "started", "tenant")

    def __init__(self, tenant: str, runner: Runner, now: float) -> None:
        self.tenant = tenant
        self.runner = runner
        self.started = now
        self.start_done = runner.recorded
        self.rich_task: TaskID | None = None

    def snapshot(self, now: float) -> Snapshot:
        runner = self.runner
        done, total = runner.recorded, len(runner.plan.changes)
        elapsed = now - self.started
        rate = (done - self.start_done) / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        return Snapshot(
            self.tenant, runner.run_dir.run_id, done, total, rate, eta, runner.client.throttled
        )


class ProgressBoard:
    """Shows every tracked run: a rich display when `live`, else a log line every `every_s`."""

    def __init__(
        self,
        err: TextIO,
        *,
        live: bool,
        every_s: float,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._err = err
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
        if self._rich is not None:
            self._rich.stop()

    def track(self, tenant: str, runner: Runner) -> None:
        """Start showing a run that is about to start (or resume)."""
        if not self._enabled:
            return
        tracked = _Tracked(tenant, runner, self._clock())
        self._tracked[id(runner)] = tracked
        if self._live:
            tracked.rich_task = self._display().add_task(
                tenant, total=len(runner.plan.changes), rate="-", eta="-", throttled=0
            )
            self._draw(tracked)

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
                TextColumn("{task.fields[rate]}/s"),
                TextColumn("ETA {task.fields[eta]}"),
                TextColumn("429s {task.fields[throttled]}"),
                console=Console(file=self._err),
                auto_refresh=False,
            )
            self._rich.start()
        return self._rich

    def _draw(self, tracked: _Tracked) -> None:
        snap = tracked.snapshot(self._clock())
        assert tracked.rich_task is not None
        rich = self._display()
        rich.update(
            tracked.rich_task,
            completed=snap.done,
            rate=f"{snap.rate:,.0f}",
            eta=snap.eta_text(),
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
        )
