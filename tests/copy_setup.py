"""Two simulated tenants (a: the source, b: the target) and a config naming both, for copy tests;
the app and user maps that pair each source id with one of the target's."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bulkshare.sim import SimConfig, SimTenant, running_sim

from .conftest import TEST_KEY, TEST_KEY_ENV, Sim, Workdir


@dataclass
class TwoTenants:
    """The source and target sims, their tenants' objects, and a workdir naming both."""

    a: Sim
    b: Sim
    tenant_a: SimTenant
    tenant_b: SimTenant
    wd: Workdir


def pair_maps(source: SimTenant, target: SimTenant) -> tuple[dict[str, str], dict[str, str]]:
    """Each source app to a target app, each source user to a target active user (in turn)."""
    apps_b = sorted(target.apps)
    users_b = sorted(u for u, doc in target.users.items() if doc.get("status") == "active")
    apps = {old: apps_b[i % len(apps_b)] for i, old in enumerate(sorted(source.apps))}
    named = set(source.users)
    for task in source.tasks.values():
        named.add(str(task.get("owner")))
        named.update(u["value"] for u in task.get("recipients", {}).get("userIds", []))
    users = {old: users_b[i % len(users_b)] for i, old in enumerate(sorted(named))}
    return apps, users


def write_map(path: Path, mapping: Mapping[str, str]) -> Path:
    """An old_id,new_id CSV."""
    path.write_text("old_id,new_id\n" + "".join(f"{o},{n}\n" for o, n in mapping.items()))
    return path


def copy_job(path: Path, body: str, name: str = "copy-a-b") -> Path:
    """A copy job file with the given [copy] lines."""
    path.write_text(f'[job]\nname = "{name}"\n\n[copy]\n{body}')
    return path


@asynccontextmanager
async def two_tenants(
    tmp: Path,
    tasks: int = 60,
    config_a: SimConfig | None = None,
    config_b: SimConfig | None = None,
    *,
    extra_config: str = "",
) -> AsyncIterator[TwoTenants]:
    """Source a (seed 1) and target b (seed 2) on loopback, and a config naming them a and b."""
    tenant_a, tenant_b = SimTenant.seed(tasks, 1), SimTenant.seed(20, 2)
    async with (
        running_sim(tenant_a, config_a or SimConfig(api_key=TEST_KEY)) as url_a,
        running_sim(tenant_b, config_b or SimConfig(api_key=TEST_KEY)) as url_b,
        aiohttp.ClientSession() as session,
    ):
        config = tmp / "bulkshare.toml"
        config.write_text(
            'state_dir = "state"\n'
            f'[tenants.a]\nurl = "{url_a}"\napi_key_env = "{TEST_KEY_ENV}"\n'
            f'[tenants.b]\nurl = "{url_b}"\napi_key_env = "{TEST_KEY_ENV}"\n{extra_config}'
        )
        env = {**os.environ, TEST_KEY_ENV: TEST_KEY}
        env.pop("BULKSHARE_CONFIG", None)
        yield TwoTenants(
            Sim(url_a, session),
            Sim(url_b, session),
            tenant_a,
            tenant_b,
            Workdir(tmp, config, env),
        )


def marked(tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The tasks carrying a provenance marker, by marker."""
    found: dict[str, Mapping[str, Any]] = {}
    for task in tasks.values():
        for tag in task.get("tags") or ():
            if isinstance(tag, str) and tag.startswith("bulkshare-src:"):
                assert tag not in found, f"marker {tag} twice"
                found[tag] = task
    return found
