"""`pace = "even"` for a tenant that must not burst: against a service that also counts per
minute, even pacing draws no 429, while spending the window as it comes does (and still ends)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import aiohttp
import pytest

from bulkshare.client import Tier, TierBudgets
from bulkshare.config import load_config
from bulkshare.errors import ConfigError
from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.conftest import TEST_KEY, TEST_KEY_ENV, Workdir, bulkshare

#: 1200 writes a minute, counted over 3 s (60 a window) and, per identity, over any 0.5 s (10)
SERVICE = SimConfig(
    api_key=TEST_KEY,
    tier1_per_minute=60_000,
    tier2_per_minute=1200,
    window_s=3.0,
    pace_window_s=0.5,
)
TAG_ALL = (
    '[job]\nname = "tag-all"\n[[operations]]\naction = "tag"\ntags = ["paced"]\nwhere.all = true\n'
)


def paced_workdir(tmp_path: Path, url: str, pace: str) -> Workdir:
    """A config naming the simulator with the service's own limits and the given pace."""
    config = tmp_path / "bulkshare.toml"
    config.write_text(
        f'state_dir = "state"\n[tenants.t]\nurl = "{url}"\napi_key_env = "{TEST_KEY_ENV}"\n'
        # a tenth to spare, as an admin would give a loaded host: requests the loop delays may
        # still reach the service bunched
        "headroom = 0.9\n"
        "[tenants.t.limits]\ntier1_per_minute = 60000\ntier2_per_minute = 1200\n"
        f'window_s = 3\npace = "{pace}"\n'
    )
    (tmp_path / "tag.toml").write_text(TAG_ALL)
    env = {**os.environ, TEST_KEY_ENV: TEST_KEY}
    env.pop("BULKSHARE_CONFIG", None)
    return Workdir(tmp_path, config, env)


async def apply_tag_all(tmp_path: Path, pace: str) -> tuple[int, dict[str, int], int]:
    """Apply a 40-write job; (exit code, the run's summary counts, 429s the service sent)."""
    async with running_sim(SimTenant.seed(40, 7), SERVICE) as url, aiohttp.ClientSession() as s:
        wd = paced_workdir(tmp_path, url, pace)
        result = await bulkshare(wd, "apply", "tag.toml", "--yes")
        async with s.get(f"{url}/__sim/stats") as resp:
            stats = await resp.json()
    [summary_path] = (tmp_path / "state" / "runs").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["429s_seen"] == stats["throttled"], (summary, stats)
    return result.code, summary["counts"], stats["throttled"]


async def test_even_pacing_never_trips_a_per_minute_service(tmp_path: Path) -> None:
    """Evenly paced, every write is applied and the service answers no 429."""
    code, counts, throttled = await apply_tag_all(tmp_path, "even")
    assert code == 0 and counts == {"applied": 38} and throttled == 0


async def test_spending_the_window_at_once_draws_429s_but_finishes(tmp_path: Path) -> None:
    """As the window allows (the default), the burst is refused per minute; the run still ends."""
    code, counts, throttled = await apply_tag_all(tmp_path, "window")
    assert code == 0 and counts == {"applied": 38} and throttled > 0


def test_pace_is_checked_and_even_builds_a_pacer(tmp_path: Path) -> None:
    """`pace` takes window or even; even spaces each tier at its per-minute rate (less 2%)."""
    config = tmp_path / "c.toml"
    config.write_text(
        '[tenants.t]\nurl = "https://t.example.com"\napi_key_env = "K"\n'
        '[tenants.t.limits]\npace = "fast"\n'
    )
    with pytest.raises(ConfigError, match=r"limits\.pace: must be one of 'window', 'even'"):
        load_config(str(config), env={"K": "k"})
    budgets = TierBudgets.from_limits({Tier.TIER2: 100}, 300.0, even=True)
    assert budgets.pacer is not None
    assert budgets.pacer.intervals == {"tier2": pytest.approx(60 / 98)}
    assert TierBudgets.from_limits({Tier.TIER2: 100}, 300.0).pacer is None
