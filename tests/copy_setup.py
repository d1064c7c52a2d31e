"""Two simulated tenants (a: the source, b: the target) and a config naming both, for copy tests;
the app and user maps that pair each source id with one of the target's."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bulkshare.sim import SimConfig, SimTenant, running_sim

from .conftest import TEST_KEY, TEST_KEY_ENV, Sim, Workdir

#: limits high enough that pacing plays no part (the sim and bulkshare's config alike)
FAST = 600_000
FAST_SIM = SimConfig(api_key=TEST_KEY, tier1_per_minute=FAST, tier2_per_minute=FAST)
FAST_LIMITS = f"tier1_per_minute = {FAST}\ntier2_per_minute = {FAST}\n"


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


def one_tenant(tmp: Path, url: str, session: aiohttp.ClientSession) -> tuple[Sim, Workdir]:
    """A config naming the sim at `url` as tenant t, with limits that never pace."""
    config = tmp / "bulkshare.toml"
    config.write_text(
        f'state_dir = "state"\n[tenants.t]\nurl = "{url}"\napi_key_env = "{TEST_KEY_ENV}"\n'
        f"[tenants.t.limits]\n{FAST_LIMITS}"
    )
    env = {**os.environ, TEST_KEY_ENV: TEST_KEY}
    env.pop("BULKSHARE_CONFIG", None)
    return Sim(url, session), Workdir(tmp, config, env)


def task_writes(stats: Mapping[str, Any]) -> list[list[Any]]:
    """The timeline rows of writes to sharing tasks (creates, PATCHes, DELETEs, actions)."""
    return [
        row
        for row in stats["timeline"]
        if row[1] in ("POST", "PATCH", "DELETE", "PUT")
        and str(row[2]).startswith("/api/v1/sharing-tasks")
    ]


#: what a copy or a restore must carry over from its source as it is (ids mapped aside)
DEFINITION = (
    "name", "description", "type", "state", "templates", "appId", "appName", "spaceId",
    "owner", "enabled", "trigger", "emailContent", "transportChannels",
)  # fmt: skip


def definition(task: Mapping[str, Any]) -> dict[str, Any]:
    """A task's definition: DEFINITION, its own tags, its recipients, its schedule but for the
    start (re-based: see same_rhythm)."""
    found = {k: task.get(k) for k in DEFINITION}
    found["tags"] = [t for t in task.get("tags") or () if not str(t).startswith("bulkshare-src:")]
    recipients = task.get("recipients") or {}
    found["users"] = [
        (u["value"], u.get("groups"), u.get("subscribed"), u.get("enabledByUser"))
        for u in recipients.get("userIds") or ()
    ]
    found["emails"] = [e.get("value") for e in recipients.get("emailAddresses") or ()]
    options = dict(task.get("scheduleOptions") or {})
    options.pop("startDateTime", None)
    found["scheduleOptions"] = options
    return found


_PERIODS = {"HOURLY": timedelta(hours=1), "DAILY": timedelta(days=1), "WEEKLY": timedelta(weeks=1)}


def same_rhythm(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """The new start is the old one moved by whole periods of its RRULE, within the year."""
    if old.get("startDateTime") == new.get("startDateTime"):
        return True
    start = datetime.fromisoformat(old["startDateTime"])
    moved = datetime.fromisoformat(new["startDateTime"])
    if datetime.now() - moved > timedelta(days=365):
        return False
    rule = dict(p.split("=") for p in old["recurrence"][0].removeprefix("RRULE:").split(";"))
    if rule["FREQ"] == "MONTHLY":
        return (moved.day, moved.time()) == (start.day, start.time())
    period = _PERIODS[rule["FREQ"]] * int(rule.get("INTERVAL", "1"))
    return (moved - start) % period == timedelta(0)
