"""Shared fixtures: a simulated tenant on a real loopback port, and the CLI run as a process."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from bulkshare import audit
from bulkshare.client.tenant import DEMO_SEED, DEMO_TASKS
from bulkshare.sim import SimConfig, SimTenant, running_sim

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY_ENV = "BULKSHARE_TEST_KEY"
TEST_KEY = "test-key-5f1d2c"


#: the path of the caller's own user: the first request bulkshare sends to any tenant
ME_PATH = "/api/v1/users/me"
#: the caller a hand-made test tenant names at ME_PATH: an admin, who sees every task
ADMIN_ME = {"id": "u-admin", "name": "Test Admin", "roles": ["TenantAdmin"]}


async def admin_me(request: web.Request) -> web.Response:
    """An aiohttp handler for ME_PATH on a hand-made tenant: the caller is ADMIN_ME."""
    return web.json_response(ADMIN_ME)


async def fetch_json(url: str) -> Any:
    """GET a JSON document (the simulator's control routes need no auth)."""
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return await resp.json()


@dataclass
class Sim:
    """A running simulator and a way to look inside it."""

    url: str
    session: aiohttp.ClientSession

    async def stats(self) -> dict[str, Any]:
        async with self.session.get(f"{self.url}/__sim/stats") as resp:
            data: dict[str, Any] = await resp.json()
            return data

    async def reset_stats(self) -> None:
        async with self.session.post(f"{self.url}/__sim/reset-stats") as resp:
            assert resp.status in (200, 204)

    async def tasks(self) -> dict[str, dict[str, Any]]:
        async with self.session.get(f"{self.url}/__sim/tenant") as resp:
            doc = await resp.json()
        return {t["id"]: t for t in doc["sharingTasks"]}

    async def users(self) -> list[dict[str, Any]]:
        async with self.session.get(f"{self.url}/__sim/tenant") as resp:
            doc = await resp.json()
        users: list[dict[str, Any]] = doc["users"]
        return users


@pytest.fixture
async def demo_sim() -> AsyncIterator[Sim]:
    """The demo tenant the seed jobs are written for, on a loopback port."""
    tenant = SimTenant.seed(DEMO_TASKS, DEMO_SEED)
    async with (
        running_sim(tenant, SimConfig(api_key=TEST_KEY)) as url,
        aiohttp.ClientSession() as session,
    ):
        yield Sim(url, session)


@dataclass
class Workdir:
    """A directory with a config naming the simulator as tenant `t`."""

    path: Path
    config: Path
    env: dict[str, str]

    @property
    def state(self) -> Path:
        return self.path / "state"


@pytest.fixture
def workdir(tmp_path: Path, demo_sim: Sim) -> Iterator[Workdir]:
    """A config file pointing at `demo_sim`; afterwards every run's audit log must verify."""
    config = tmp_path / "bulkshare.toml"
    config.write_text(
        f'state_dir = "state"\n[tenants.t]\nurl = "{demo_sim.url}"\n'
        f'api_key_env = "{TEST_KEY_ENV}"\n'
    )
    env = {**os.environ, TEST_KEY_ENV: TEST_KEY}
    env.pop("BULKSHARE_CONFIG", None)
    wd = Workdir(tmp_path, config, env)
    yield wd
    for log in sorted(wd.state.glob("runs/*/audit.jsonl")):
        result = audit.verify(log)
        assert result.ok, result.error


@dataclass(frozen=True)
class Result:
    """What a bulkshare process did."""

    code: int
    out: str
    err: str


async def bulkshare(wd: Workdir, *args: str, stdin: bytes | None = None) -> Result:
    """Run `python -m bulkshare --config <wd> args...` in the workdir."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkshare",
        *args,
        "--config",
        str(wd.config),
        cwd=wd.path,
        env=wd.env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def error_lines(err: str) -> list[str]:
    """The command's own error lines in a stderr text: plain, or JSON `error` log events."""
    found = []
    for line in err.splitlines():
        if line.startswith("bulkshare:"):
            found.append(line)
        elif line.startswith("{"):
            event = orjson.loads(line)
            if event.get("event") == "error":
                found.append(str(event["message"]))
    return found
