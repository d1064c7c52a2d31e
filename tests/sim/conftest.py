"""Fixtures for the simulator's own tests: a fake clock, small seeded tenants, and a factory
that starts the simulator on a real loopback port with an authenticated client session.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bulkshare.sim import SimConfig, SimTenant, running_sim

TOKEN = "sim-test-token"
TASKS = "/api/v1/sharing-tasks"


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class SimClient:
    """A running simulator, its tenant, and a session that sends the bearer token."""

    url: str
    tenant: SimTenant
    session: aiohttp.ClientSession

    def at(self, path: str) -> str:
        return f"{self.url}{path}"

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """Send a request; return the status and the decoded JSON body (None when empty)."""
        async with self.session.request(method, self.at(path), **kwargs) as resp:
            raw = await resp.read()
            return resp.status, (await resp.json() if raw else None)

    async def stats(self) -> dict[str, Any]:
        status, body = await self.call("GET", "/__sim/stats")
        assert status == 200
        result: dict[str, Any] = body
        return result


StartSim = Callable[..., Awaitable[SimClient]]


@pytest.fixture
def clock() -> FakeClock:
    """A fake monotonic clock for the limiter and token expiry."""
    return FakeClock()


@pytest.fixture
def tenant() -> SimTenant:
    """A small seeded tenant (300 tasks), fresh for each test."""
    return SimTenant.seed(300, seed=11)


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    """Start simulators on loopback ports; everything started is stopped after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            tenant: SimTenant,
            config: SimConfig | None = None,
            clock: Callable[[], float] | None = None,
            token: str | None = TOKEN,
        ) -> SimClient:
            url = await stack.enter_async_context(running_sim(tenant, config, clock=clock))
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            session = await stack.enter_async_context(aiohttp.ClientSession(headers=headers))
            return SimClient(url, tenant, session)

        yield start


def error_of(body: Any, status: int) -> dict[str, Any]:
    """Assert `body` is the service's error shape for `status`; return its one error."""
    assert set(body) == {"errors", "traceId"}
    (error,) = body["errors"]
    assert error["code"] == f"HTTP-{status}"
    assert error["meta"] == {"httpCode": status}
    assert error["title"] and error["detail"]
    result: dict[str, Any] = error
    return result
