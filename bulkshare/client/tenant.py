"""Open a configured tenant: the built-in simulator started in-process, or a real URL.

Yields a ready ApiClient after one probe read, the caller's own user (`/users/me`), so a dead
tenant, a bad key or an identity that cannot see the whole tenant fails with exit 4 before
anything else is sent.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from bulkshare.client.auth import auth_for
from bulkshare.client.budget import TierBudgets
from bulkshare.client.caller import ADMIN_ROLES, Caller, MalformedCaller, caller_of
from bulkshare.client.failures import AnswerRefused
from bulkshare.client.http import ApiClient, RequestFailed
from bulkshare.client.ledger import SqliteLedger
from bulkshare.client.tiers import Tier
from bulkshare.config import Config, Scope, TenantConfig
from bulkshare.errors import RunFileError, TenantError
from bulkshare.vocab import ME_PATH

if TYPE_CHECKING:
    from bulkshare.sim import SimTenant

__all__ = [
    "BUILTIN_SIM_URL",
    "DEMO_SEED",
    "DEMO_TASKS",
    "TenantSession",
    "describe_tenant",
    "open_tenant",
    "sim_state_path",
    "tenant_url",
]

#: the built-in demo tenant: its size and seed
DEMO_TASKS = 1000
DEMO_SEED = 2026
#: how often a process waiting for the built-in tenant's file tries its lock again
_LOCK_POLL_S = 0.05
#: what plans record as the built-in simulator's URL (its port changes per process); the same
#: name export files record (`bulkshare.export.fileformat.BUILTIN_SIM_URL`)
BUILTIN_SIM_URL = "builtin:sim"

log = structlog.get_logger("bulkshare.client")


@dataclass(frozen=True)
class TenantSession:
    """A tenant that answered, and the client to talk to it."""

    tenant: TenantConfig
    client: ApiClient
    url: str
    caller: Caller  #: who the tenant says we act as (`/users/me`)


def tenant_url(tenant: TenantConfig) -> str:
    """The URL a plan is bound to: the config's, or BUILTIN_SIM_URL for the built-in sim."""
    return BUILTIN_SIM_URL if tenant.url is None else tenant.url


def sim_state_path(config: Config) -> Path:
    """Where the built-in simulated tenant keeps its state."""
    return config.state_dir / "sim-tenant.json"


def describe_tenant(tenant: TenantConfig, config: Config) -> str:
    """One line naming the tenant, saying so when it is simulated."""
    if tenant.is_builtin_sim:
        return (
            f"tenant {tenant.name}: built-in simulated tenant (SIMULATED; state in "
            f"{sim_state_path(config)})"
        )
    return f"tenant {tenant.name}: {tenant.url}"


@asynccontextmanager
async def open_tenant(
    tenant: TenantConfig,
    config: Config,
    *,
    read_only: bool,
    concurrency: int | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[TenantSession]:
    """Start (if simulated) and connect to a tenant; probe it once before yielding."""
    env = os.environ if env is None else env
    auth = auth_for(tenant, env)
    async with AsyncExitStack() as stack:
        url: str = (
            tenant.url
            if tenant.url is not None
            else await stack.enter_async_context(_builtin_sim(config))
        )
        limits = tenant.limits
        ledger = _ledger_for(tenant, config)
        if ledger is not None:
            stack.callback(ledger.close)
        defaults = config.defaults
        budgets = TierBudgets.from_limits(
            {
                Tier.TIER1: limits.tier1_per_minute,
                Tier.TIER2: limits.tier2_per_minute,
                Tier.USERS_FILTER: limits.users_filter_per_minute,
            },
            limits.window_s,
            limits.headroom,
            ledger=ledger,
            pause_cap_s=defaults.retry_after_cap_s,
            even=limits.pace == "even",
        )
        client = ApiClient(
            url,
            auth,
            budgets,
            concurrency=concurrency or defaults.concurrency,
            max_attempts=defaults.max_attempts,
            timeout_s=defaults.request_timeout_s,
            read_only=read_only,
            retry_after_cap_s=defaults.retry_after_cap_s,
            max_pages=defaults.max_pages,
            max_response_bytes=defaults.max_response_bytes,
        )
        await stack.enter_async_context(client)
        caller = await _probe(client, tenant)
        check_scope(caller, tenant)
        yield TenantSession(tenant, client, url, caller)


def _ledger_for(tenant: TenantConfig, config: Config) -> SqliteLedger | None:
    """The budget ledger this tenant and identity share with other bulkshare processes."""
    if tenant.is_builtin_sim:
        return None  # each process starts its own simulator: nothing to share
    creds = tenant.credentials
    identity = f"{tenant.url}|{creds.api_key_env or ''}|{creds.client_id or ''}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    path = config.state_dir / "ledger" / f"{tenant.name}-{digest}.sqlite"
    try:
        return SqliteLedger(path)
    except sqlite3.Error as exc:  # a corrupt or unwritable file: it only remembers requests
        raise RunFileError(
            f"{path}: rate-limit ledger: {exc}; it only remembers recent requests: remove it"
        ) from None


async def _probe(client: ApiClient, tenant: TenantConfig) -> Caller:
    """The caller's own user: proof the tenant answers, the key works, and who we act as."""
    try:
        resp = await client.request("GET", ME_PATH)
    except AnswerRefused as exc:  # a redirect, or an answer too large to read
        raise TenantError(
            f"tenant {tenant.name}: GET /api{ME_PATH} answered HTTP {exc.status}: {exc.reason}"
        ) from None
    except RequestFailed as exc:
        if exc.status in (401, 403):  # the token endpoint refused the client credentials
            raise TenantError(
                f"tenant {tenant.name}: authentication failed ({exc.reason}); "
                "check the credentials its config names"
            ) from None
        what = "unreachable" if exc.status is None else f"no usable answer from GET /api{ME_PATH}"
        raise TenantError(f"tenant {tenant.name}: {what}: {exc.reason}") from None
    if resp.status == 401:
        raise TenantError(
            f"tenant {tenant.name}: authentication failed (HTTP 401); "
            "check the credentials its config names"
        )
    if resp.status != 200:
        raise TenantError(
            f"tenant {tenant.name}: GET /api{ME_PATH} answered HTTP {resp.status}: bulkshare "
            "must know which user it acts as (is the URL a Qlik Cloud tenant, and may this "
            "identity read its own user?)"
        )
    try:
        return caller_of(resp.json())
    except (RequestFailed, MalformedCaller) as exc:
        reason = exc.reason if isinstance(exc, RequestFailed) else str(exc)
        raise TenantError(
            f"tenant {tenant.name}: GET /api{ME_PATH} answered no usable user: {reason}"
        ) from None


def check_scope(caller: Caller, tenant: TenantConfig) -> None:
    """TenantError unless the caller sees every task, or the tenant asks for its own only."""
    if caller.is_admin or tenant.scope is Scope.OWN:
        return
    raise TenantError(
        f"tenant {tenant.name}: the caller {caller.describe()} is neither "
        f"{' nor '.join(ADMIN_ROLES)} (roles: {caller.roles_text()}), so the tenant shows it "
        f'only its own tasks; use an admin identity, or set scope = "own" in '
        f"[tenants.{tenant.name}] to work on its own tasks only"
    )


@asynccontextmanager
async def _builtin_sim(config: Config) -> AsyncIterator[str]:
    from bulkshare.sim import SimConfig, running_sim  # only the sim tenant needs it

    path = sim_state_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    async with _owning(path):
        sim_tenant = _load_or_seed(path)
        async with running_sim(sim_tenant, SimConfig(persist_path=path)) as url:
            yield url


def _load_or_seed(path: Path) -> SimTenant:
    from bulkshare.sim import SimTenant

    if path.exists():
        try:
            sim_tenant = SimTenant.load(path)
        except ValueError as exc:
            raise TenantError(f"built-in simulated tenant: {path}: {exc}") from None
    else:
        sim_tenant = SimTenant.seed(DEMO_TASKS, DEMO_SEED)
        sim_tenant.save(path)
    return sim_tenant


@asynccontextmanager
async def _owning(path: Path) -> AsyncIterator[None]:
    """One process at a time owns the built-in tenant's file: each one loads it, changes it
    and writes it back whole, so two at once would lose each other's changes. The owner holds
    an flock on `<file>.lock` (released by the kernel if it dies); the next one waits for it,
    saying so once, and a signal stops the wait."""
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise TenantError(f"built-in simulated tenant: {lock}: {exc.strerror}") from None
    try:
        await _wait_for_lock(fd, path)
        yield
    finally:
        os.close(fd)  # releases the flock


async def _wait_for_lock(fd: int, path: Path) -> None:
    said = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if not said:
                log.warning(
                    "sim-tenant-busy",
                    message=f"waiting: another bulkshare process is using the built-in "
                    f"simulated tenant ({path})",
                )
                said = True
            await asyncio.sleep(_LOCK_POLL_S)
