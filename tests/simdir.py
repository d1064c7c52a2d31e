"""A simulator started with a chosen SimConfig (callers, roles) and a workdir whose config names
it as tenant `t`: for tests of who the caller is and which tenant a plan belongs to.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from bulkshare.client.tenant import DEMO_SEED, DEMO_TASKS
from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.conftest import TEST_KEY, TEST_KEY_ENV, Sim, Workdir

#: a second key the config can name (OTHER_KEY_ENV), for a second identity on one tenant
OTHER_KEY_ENV = "BULKSHARE_OTHER_KEY"
OTHER_KEY = "other-key-91c4e2"


def demo_tenant() -> SimTenant:
    """The demo tenant the shipped jobs are written for."""
    return SimTenant.seed(DEMO_TASKS, DEMO_SEED)


@asynccontextmanager
async def sim_running(
    config: SimConfig | None = None, tenant: SimTenant | None = None
) -> AsyncIterator[Sim]:
    """A simulator of `tenant` (the demo one by default); it takes any bearer, and each acts as
    the user `config.callers` names, else as `config.caller_id` (the admin by default)."""
    async with (
        running_sim(tenant or demo_tenant(), config or SimConfig()) as url,
        aiohttp.ClientSession() as session,
    ):
        yield Sim(url, session)


def write_config(wd: Workdir, url: str, extra: str = "", key_env: str = TEST_KEY_ENV) -> None:
    """(Re)write the workdir's config: tenant `t` at `url`, its key in `key_env`, and `extra`
    lines in its table (e.g. `scope = "own"`)."""
    wd.config.write_text(
        f'state_dir = "state"\n[tenants.t]\nurl = "{url}"\napi_key_env = "{key_env}"\n{extra}'
    )


def workdir_for(path: Path, url: str, extra: str = "") -> Workdir:
    """A workdir at `path` with a config naming `url` as tenant `t`, both keys in its env."""
    env = {**os.environ, TEST_KEY_ENV: TEST_KEY, OTHER_KEY_ENV: OTHER_KEY}
    env.pop("BULKSHARE_CONFIG", None)
    wd = Workdir(path, path / "bulkshare.toml", env)
    write_config(wd, url, extra)
    return wd


async def sent(sim: Sim) -> list[tuple[str, str]]:
    """(method, path) of every API request the simulator answered since its stats were reset."""
    timeline: list[list[Any]] = (await sim.stats())["timeline"]
    return [(str(entry[1]), str(entry[2])) for entry in timeline]


def owned(tenant: SimTenant, user_id: str) -> list[str]:
    """Ids of the tasks `user_id` owns."""
    return sorted(t for t, task in tenant.tasks.items() if task["owner"] == user_id)


def users_with(tenant: SimTenant, status: str) -> list[str]:
    """Ids of the tenant's users with this status, sorted."""
    return sorted(u for u, user in tenant.users.items() if user["status"] == status)
