"""The simulated tenant as an aiohttp application: routes, authentication, rate limits,
faults, latency, statistics and persistence, layered as middlewares around the handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from bulkshare.sim import handlers, users_api
from bulkshare.sim.auth import Authenticator, client_principal, read_token_request
from bulkshare.sim.callers import Caller, Callers, check_callers
from bulkshare.sim.config import SimConfig
from bulkshare.sim.context import (
    CALLER_KEY,
    CONTEXT,
    SimContext,
    context,
    json_response,
    no_content,
)
from bulkshare.sim.errors import SimError, error_body
from bulkshare.sim.faults import Fault, FaultPlan
from bulkshare.sim.limits import OPERATION_TIERS, SlidingWindowLimiter, Tier
from bulkshare.sim.listing import TaskLister
from bulkshare.sim.persist import Persister
from bulkshare.sim.stats import SimStats
from bulkshare.sim.tenant import SimTenant

__all__ = ["SimConfig", "make_app"]

_log = logging.getLogger(__name__)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_CONTROL = "/__sim/"


@dataclass(frozen=True, slots=True)
class _Route:
    tier: Tier
    write: bool  # a write of the sharing-tasks API: counted as a write, subject to faults
    token: bool  # POST /oauth/token: no bearer; the client in the body is the identity


_ROUTE_KEY = web.RequestKey("bulkshare_sim_route", _Route)
_THROTTLED = web.RequestKey("bulkshare_sim_throttled", Tier)
_IDENTITY = web.RequestKey("bulkshare_sim_identity", str)
_TENANT_WIDE = web.RequestKey("bulkshare_sim_tenant_wide", bool)
_DROPPED = web.RequestKey("bulkshare_sim_dropped", bool)
_ROUTES = web.AppKey("bulkshare_sim_routes", dict)


def _route_of(request: web.Request) -> _Route | None:
    resource = request.match_info.route.resource
    if resource is None:
        return None
    routes: dict[tuple[str, str], _Route] = request.app[_ROUTES]
    return routes.get((request.method, resource.canonical))


# -- middlewares, outermost first -------------------------------------------------------


@web.middleware
async def _observe(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Count every API request in the stats, with its final status (0 when dropped)."""
    if request.path.startswith(_CONTROL):
        return await handler(request)
    status = 0
    try:
        response = await handler(request)
        status = 0 if request.get(_DROPPED) else response.status
        return response
    finally:
        route = request.get(_ROUTE_KEY)
        task_id = request.get(handlers.TASK_ID_KEY) or request.match_info.get("taskId")
        context(request).stats.record(
            request.method,
            request.path,
            status,
            write=route is not None and route.write,
            task_id=task_id,
            throttled_tier=request.get(_THROTTLED),
            identity=request.get(_IDENTITY),
            tenant_wide=request.get(_TENANT_WIDE, False),
        )


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Answer every refusal in the service's error shape."""
    try:
        return await handler(request)
    except SimError as exc:
        return _error_response(exc.status, exc.detail, exc.code, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        detail = f"{request.method} {request.path}: {exc.reason}"
        return _error_response(exc.status, detail, None, headers)
    except Exception:
        _log.exception("simulator bug answering %s %s", request.method, request.path)
        return _error_response(500, "internal error in the simulator", None, {})


def _error_response(
    status: int, detail: str, code: str | None, headers: dict[str, str]
) -> web.Response:
    body = error_body(status, detail, code)
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


@web.middleware
async def _gate(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Latency, then authentication, then the rate limit of the route's tier."""
    if request.path.startswith(_CONTROL):
        return await handler(request)
    ctx = context(request)
    if ctx.config.latency_ms:
        await asyncio.sleep(ctx.config.latency_ms / 1000)
    route = _route_of(request)
    if route is None:
        return await handler(request)
    identity = await _identity(request, route)
    request[_IDENTITY] = identity
    refusal = ctx.limiter.admit(identity, route.tier)
    if refusal is not None:
        request[_THROTTLED] = route.tier
        request[_TENANT_WIDE] = refusal.tenant_wide
        scope = "tenant-wide " if refusal.tenant_wide else ""
        detail = f"{scope}{route.tier.value} limit reached; retry after {refusal.retry_after} s"
        raise SimError(429, detail, headers={"Retry-After": str(refusal.retry_after)})
    request[_ROUTE_KEY] = route
    request[CALLER_KEY] = ctx.callers.of(identity)
    return await handler(request)


async def _identity(request: web.Request, route: _Route) -> str:
    if route.token:
        form = await read_token_request(request)
        return client_principal(form.get("client_id", ""))
    return context(request).auth.principal(request.headers.get("Authorization"))


@web.middleware
async def _apply(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Run the handler under the write's fault, and persist what changed."""
    ctx = context(request)
    before = ctx.tenant.version
    try:
        ctx.tenant.purge_deleting(ctx.clock(), ctx.config.deleting_linger_s)
        route = request.get(_ROUTE_KEY)
        fault = (
            ctx.faults.draw(request.method, request.path) if route and route.write else Fault.NONE
        )
        return await _with_fault(request, handler, fault)
    finally:
        if ctx.persister is not None and ctx.tenant.version != before:
            ctx.persister.mark_dirty()


async def _with_fault(request: web.Request, handler: _Handler, fault: Fault) -> web.StreamResponse:
    if fault is Fault.UNAVAILABLE:
        raise SimError(503, "service temporarily unavailable (simulated fault)")
    response = await handler(request)
    if fault is Fault.ERROR_AFTER:
        raise SimError(500, "internal error after the change was applied (simulated fault)")
    if fault is Fault.DROP_AFTER and request.transport is not None:
        request[_DROPPED] = True
        request.transport.close()
    return response


# -- control routes ----------------------------------------------------------------------


async def _stats(request: web.Request) -> web.Response:
    return json_response(context(request).stats.to_json())


async def _reset_stats(request: web.Request) -> web.Response:
    context(request).stats.reset()
    return no_content()


async def _reset_limits(request: web.Request) -> web.Response:
    context(request).limiter.reset()
    return no_content()


async def _tenant_document(request: web.Request) -> web.Response:
    return web.Response(body=context(request).tenant.dumps(), content_type="application/json")


async def _apps(request: web.Request) -> web.Response:
    tenant = context(request).tenant
    return json_response({"tenantId": tenant.tenant_id, "apps": list(tenant.apps.values())})


_CONTROL_ROUTES = (
    ("GET", "/__sim/stats", _stats),
    ("POST", "/__sim/reset-stats", _reset_stats),
    ("POST", "/__sim/reset-limits", _reset_limits),
    ("GET", "/__sim/tenant", _tenant_document),
    ("GET", "/__sim/apps", _apps),
)


# -- assembly ----------------------------------------------------------------------------


def _add_routes(app: web.Application) -> None:
    meta: dict[tuple[str, str], _Route] = {}
    for method, path, handler in (*handlers.ROUTES, *users_api.ROUTES):
        app.router.add_route(method, path, handler)
        tier = OPERATION_TIERS.get((method, path))
        if tier is not None:
            write = method in _WRITE_METHODS and path.startswith("/api/v1/sharing-tasks")
            meta[(method, path)] = _Route(tier, write, path == "/oauth/token")
    for method, path, handler in _CONTROL_ROUTES:
        app.router.add_route(method, path, handler)
    app[_ROUTES] = meta


def _persistence(persister: Persister) -> Callable[[web.Application], AsyncIterator[None]]:
    async def keep_saved(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(persister.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        persister.flush()

    return keep_saved


def _callers(tenant: SimTenant, config: SimConfig) -> Callers:
    named = [c.user_id for c in config.callers]
    check_callers(tenant.users, tenant.admin_id, [*named, config.caller_id or tenant.admin_id])
    default = Caller(config.caller_id or tenant.admin_id, config.caller_roles)
    return Callers(default, config.callers)


def make_app(
    tenant: SimTenant, config: SimConfig, clock: Callable[[], float] = time.monotonic
) -> web.Application:
    """An aiohttp application serving `tenant` the way the real service would.

    ValueError if the config names a caller the tenant has no user for.
    """
    persister = Persister(tenant, config.persist_path) if config.persist_path else None
    app = web.Application(
        middlewares=[_observe, _errors, _gate, _apply], client_max_size=16 * 2**20
    )
    app[CONTEXT] = SimContext(
        tenant=tenant,
        config=config,
        rules=config.rules(),
        clock=clock,
        limiter=SlidingWindowLimiter(config.limits(), clock),
        auth=Authenticator(config, clock),
        callers=_callers(tenant, config),
        stats=SimStats(clock),
        faults=FaultPlan(config.fault_rate, config.seed),
        lister=TaskLister(tenant),
        persister=persister,
    )
    _add_routes(app)
    if persister is not None:
        app.cleanup_ctx.append(_persistence(persister))
    return app
