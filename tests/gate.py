"""A gate in front of the simulator: sharing-task writes are held there while it is closed, so
a test can have requests "on the wire" for as long as it needs, and look into the simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bulkshare.sim import SimConfig, SimTenant, make_app
from bulkshare.sim.context import CONTEXT, SimContext
from tests.conftest import TEST_KEY

WRITES = frozenset({"PATCH", "DELETE", "POST", "PUT"})


@dataclass
class Gate:
    """Holds every sharing-task write that reaches the simulator while closed."""

    opened: asyncio.Event = field(default_factory=asyncio.Event)
    held: int = 0  #: writes waiting at the gate now

    def __post_init__(self) -> None:
        self.opened.set()

    def close(self) -> None:
        """Hold the writes that come from now on."""
        self.opened.clear()

    def middleware(self) -> Any:
        """The aiohttp middleware that holds them (outermost: not yet seen by the simulator)."""

        @web.middleware
        async def hold(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.method in WRITES and request.path.startswith("/api/v1/sharing-tasks"):
                self.held += 1
                try:
                    await self.opened.wait()
                finally:
                    self.held -= 1
            response: web.StreamResponse = await handler(request)
            return response

        return hold


@asynccontextmanager
async def gated_sim(
    tenant: SimTenant, gate: Gate, config: SimConfig | None = None
) -> AsyncIterator[tuple[str, SimContext]]:
    """The simulator behind `gate` on a loopback port: its URL, and its state to look into."""
    app = make_app(tenant, config or SimConfig(api_key=TEST_KEY))
    app.middlewares.insert(0, gate.middleware())
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", app[CONTEXT]
    finally:
        gate.opened.set()  # nothing left hanging at the gate
        await runner.cleanup()


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop run until `condition` holds (a bounded number of turns, no fixed delay)."""
    for _ in range(20000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never reached: {what}")
