"""The per-application state every handler and middleware reaches through the request.

Also the small request/response helpers they share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from bulkshare.sim.auth import Authenticator
from bulkshare.sim.callers import Caller, Callers
from bulkshare.sim.config import SimConfig
from bulkshare.sim.errors import SimError
from bulkshare.sim.faults import FaultPlan
from bulkshare.sim.limits import SlidingWindowLimiter
from bulkshare.sim.listing import TaskLister
from bulkshare.sim.persist import Persister
from bulkshare.sim.rules import TaskRules
from bulkshare.sim.stats import SimStats
from bulkshare.sim.tenant import SimTenant

__all__ = [
    "CALLER_KEY",
    "CONTEXT",
    "SimContext",
    "base_url",
    "context",
    "json_response",
    "no_content",
    "read_json",
]


@dataclass(frozen=True, slots=True)
class SimContext:
    """Everything one simulated tenant is made of."""

    tenant: SimTenant
    config: SimConfig
    rules: TaskRules  # config.rules(), made once
    clock: Callable[[], float]
    limiter: SlidingWindowLimiter
    auth: Authenticator
    callers: Callers
    stats: SimStats
    faults: FaultPlan
    lister: TaskLister
    persister: Persister | None


CONTEXT = web.AppKey("bulkshare_sim_context", SimContext)
#: request key of the Caller an authenticated request acts as
CALLER_KEY = web.RequestKey("bulkshare_sim_caller", Caller)


def context(request: web.Request) -> SimContext:
    """The SimContext of the app serving `request`."""
    return request.app[CONTEXT]


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer serialized with orjson."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def no_content() -> web.Response:
    """A 204 answer."""
    return web.Response(status=204)


def base_url(request: web.Request) -> str:
    """scheme://host[:port] as the client addressed the server."""
    return str(request.url.origin())


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; 400 SimError if it is missing or not JSON."""
    raw = await request.read()
    if not raw.strip():
        raise SimError(400, "request body is required")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SimError(400, f"request body is not valid JSON: {exc}") from None
