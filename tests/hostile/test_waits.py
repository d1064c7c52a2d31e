"""Bounded waits: Retry-After clamped to the cap in both its forms, a stored pause that
expires, OAuth tokens whose expiry cannot be trusted, and a token endpoint answering garbage."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bulkshare.client import ApiClient, ApiKeyAuth, OAuthClientCredentials, SqliteLedger, Tier
from bulkshare.client.answers import retry_after
from bulkshare.client.auth import FALLBACK_LIFETIME_S
from bulkshare.client.budget import TierBudgets
from bulkshare.errors import TenantError
from tests.conftest import Workdir, bulkshare, error_lines
from tests.hostile.conftest import (
    HOSTILE_KEY,
    Origin,
    Reply,
    budgets,
    job_file,
    make_tasks,
    no_wait,
    stream,
    task_list,
    write_config,
)
from tests.test_limits import FakeClock

TASKS = "/api/v1/sharing-tasks"
NOW = 1_800_000_000.0


def http_date(seconds_from_now: float) -> str:
    """An HTTP-date `seconds_from_now` after NOW."""
    return format_datetime(datetime.fromtimestamp(NOW + seconds_from_now, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", (120.0, False)),
        (" 7 ", (7.0, False)),
        ("0", (1.0, False)),
        ("2.5", (3.0, False)),
        ("999999", (600.0, True)),
        ("9" * 40, (600.0, True)),
        (http_date(90), (90.0, False)),
        (http_date(86_400), (600.0, True)),
        (http_date(-3600), (1.0, False)),
        ("inf", (1.0, False)),
        ("Infinity", (1.0, False)),
        ("nan", (1.0, False)),
        ("-5", (1.0, False)),
        ("1e9", (1.0, False)),
        ("1_000", (1.0, False)),
        ("soon", (1.0, False)),
        ("", (1.0, False)),
        (None, (1.0, False)),
    ],
)
def test_retry_after_is_understood_in_both_forms_and_clamped(
    value: str | None, expected: tuple[float, bool]
) -> None:
    """Delta-seconds and HTTP-dates are read; beyond the cap is clamped; garbage is 1 s."""
    assert retry_after(value, NOW, 600.0) == expected


def ledger_budgets(path: Path, clock: FakeClock, cap: float = 600.0) -> TierBudgets:
    """Budgets on the shared SQLite ledger at `path`, on a fake clock."""
    return TierBudgets.from_limits(
        {Tier.TIER1: 1000, Tier.TIER2: 100, Tier.USERS_FILTER: 200},
        300.0,
        ledger=SqliteLedger(path),
        clock=clock,
        sleep=clock.sleep,
        pause_cap_s=cap,
    )


def first_429(retry: str) -> Any:
    """A list answer that is a 429 with this Retry-After once, then an empty list."""
    calls = []

    def answer(_request: object) -> Reply:
        calls.append(1)
        if len(calls) == 1:
            body = {"errors": [{"code": "HTTP-429", "title": "API rate limit reached."}]}
            return Reply(429, body, headers={"Retry-After": retry})
        return Reply(200, {"sharingTasks": [], "totalCount": 0})

    return answer


async def test_retry_after_999999_waits_the_cap_and_the_next_run_is_not_stalled(
    hostile: Origin, tmp_path: Path
) -> None:
    """One 429 asking for 11.6 days pauses 600 s, says so, and the next run sends at once."""
    hostile.on("GET", TASKS, first_429("999999"))
    clock = FakeClock()
    path = tmp_path / "ledger.sqlite"
    first = ledger_budgets(path, clock)
    start = clock.now
    with capture_logs() as logs:
        async with ApiClient(hostile.url, ApiKeyAuth(HOSTILE_KEY), first, sleep=no_wait) as c:
            assert (await c.request("GET", "/v1/sharing-tasks")).status == 200
    assert clock.now - start == pytest.approx(600.0, abs=0.5)
    [clamped] = [e for e in logs if e["event"] == "retry-after-clamped"]
    assert clamped["asked"] == "'999999'" and clamped["retry_after_s"] == 600.0
    stored = _stored_pause(path)
    assert stored <= start + 600.0
    # the next run opens the same ledger: nothing holds it back
    after = clock.now
    second = ledger_budgets(path, clock)
    async with ApiClient(hostile.url, ApiKeyAuth(HOSTILE_KEY), second, sleep=no_wait) as c:
        assert (await c.request("GET", "/v1/sharing-tasks")).status == 200
    assert clock.now == after
    assert len(hostile.seen) == 3


def _stored_pause(path: Path) -> float:
    with sqlite3.connect(path) as db:
        [(until,)] = db.execute("SELECT until FROM pause WHERE tier = 'tier1'").fetchall()
    return float(until)


def _store_pause(path: Path, until: float) -> None:
    SqliteLedger(path).close()  # creates the tables
    with sqlite3.connect(path) as db:
        db.execute("INSERT OR REPLACE INTO pause VALUES ('tier1', ?)", (until,))


async def test_a_stored_pause_beyond_the_cap_is_ignored_and_said_so(
    hostile: Origin, tmp_path: Path
) -> None:
    """A pause an older bulkshare stored for 11.6 days holds nothing back; one line says so."""
    hostile.on("GET", TASKS, Reply(200, {"sharingTasks": [], "totalCount": 0}))
    clock = FakeClock()
    path = tmp_path / "ledger.sqlite"
    _store_pause(path, clock.now + 999_999)
    start = clock.now
    with capture_logs() as logs:
        budgets_ = ledger_budgets(path, clock)
        async with ApiClient(hostile.url, ApiKeyAuth(HOSTILE_KEY), budgets_, sleep=no_wait) as c:
            for _ in range(3):
                assert (await c.request("GET", "/v1/sharing-tasks")).status == 200
    assert clock.now == start
    [ignored] = [e for e in logs if e["event"] == "stored-pause-ignored"]
    assert ignored["seconds_left"] == 999_999 and ignored["tier"] == "tier1"


async def test_a_new_429_replaces_a_stored_pause_beyond_the_cap(tmp_path: Path) -> None:
    """A real pause is not masked by a stale huge one: it is stored, and honoured."""
    clock = FakeClock()
    path = tmp_path / "ledger.sqlite"
    _store_pause(path, clock.now + 999_999)
    budgets_ = ledger_budgets(path, clock)
    budgets_[Tier.TIER1].pause_for(30.0)
    assert _stored_pause(path) == clock.now + 30.0
    start = clock.now
    budgets_[Tier.TIER1].release(await budgets_[Tier.TIER1].acquire())
    assert clock.now - start == pytest.approx(30.0)


async def test_a_run_waiting_on_a_stored_pause_says_how_long(
    hostile: Origin, tmp_path: Path
) -> None:
    """A pause within the cap, stored by another process, is waited out, in one log line."""
    hostile.on("GET", TASKS, Reply(200, {"sharingTasks": [], "totalCount": 0}))
    clock = FakeClock()
    path = tmp_path / "ledger.sqlite"
    _store_pause(path, clock.now + 30)
    start = clock.now
    with capture_logs() as logs:
        budgets_ = ledger_budgets(path, clock)
        async with ApiClient(hostile.url, ApiKeyAuth(HOSTILE_KEY), budgets_, sleep=no_wait) as c:
            for _ in range(3):
                assert (await c.request("GET", "/v1/sharing-tasks")).status == 200
    assert clock.now - start == pytest.approx(30.0)
    [waiting] = [e for e in logs if e["event"] == "waiting-on-pause"]
    assert waiting["seconds_left"] == 30.0


async def test_the_cli_clamps_retry_after_and_a_later_run_ignores_a_stale_pause(
    hostile: Origin, hostile_workdir: Workdir
) -> None:
    """`plan` under `Retry-After: 999999` waits the configured cap and says so; a later plan
    with an 11-day pause in the ledger runs at once and says it ignored it."""
    write_config(hostile_workdir.config, hostile.url, "retry_after_cap_s = 0.05\n")
    hostile.on("GET", TASKS, first_429("999999"))
    job = str(job_file(hostile_workdir))
    result = await bulkshare(hostile_workdir, "plan", job)
    assert result.code == 0, result.err
    assert '"event":"retry-after-clamped"' in result.err and '"cap_s":0.05' in result.err
    [ledger] = hostile_workdir.state.glob("ledger/*.sqlite")
    assert _stored_pause(ledger) <= time.time() + 0.05
    _store_pause(ledger, time.time() + 999_999)
    result = await bulkshare(hostile_workdir, "plan", job)
    assert result.code == 0, result.err
    assert '"event":"stored-pause-ignored"' in result.err


@pytest.mark.parametrize(
    "expires_at",
    ["2000-01-01T00:00:00Z", "2000-01-01T00:00:00", "garbage", None, 12345, "9999-99-99", ""],
)
async def test_an_untrusted_expires_at_does_not_fetch_a_token_per_request(
    hostile: Origin, expires_at: Any
) -> None:
    """A past or unparseable expires_at gives the token a short fixed life, not none."""
    hostile.on(
        "POST", "/oauth/token", Reply(200, {"access_token": "tok", "expires_at": expires_at})
    )
    hostile.on("GET", TASKS, Reply(200, {"sharingTasks": [], "totalCount": 0}))
    wall = FakeClock()
    wall.now = time.time()
    auth = OAuthClientCredentials("cron", "s3cr3t-value", post=_unbound, clock=wall)
    async with ApiClient(hostile.url, auth, budgets(), sleep=no_wait) as client:
        for _ in range(10):
            assert (await client.request("GET", "/v1/sharing-tasks")).status == 200
        assert auth.fetches == 1
        wall.now += FALLBACK_LIFETIME_S
        assert (await client.request("GET", "/v1/sharing-tasks")).status == 200
        assert auth.fetches == 2
    assert len(hostile.requests("POST", "/oauth/token")) == 2


async def _unbound(_: object) -> tuple[int, object]:
    raise AssertionError("the client binds the token poster")


GARBAGE_TOKENS = {
    "html": Reply(200, body=b"<html>hello</html>", headers={"Content-Type": "text/html"}),
    "no token": Reply(200, {"token": "x"}),
    "empty token": Reply(200, {"access_token": ""}),
    "number token": Reply(200, {"access_token": 5}),
    "header injection": Reply(200, {"access_token": "a\r\nX-Evil: 1"}),
    "json list": Reply(200, ["access_token"]),
    "huge": stream(64 * 2**20),
}


@pytest.mark.parametrize("name", sorted(GARBAGE_TOKENS))
async def test_a_token_endpoint_answering_garbage_is_one_tenant_error(
    hostile: Origin, name: str
) -> None:
    """Every garbage token answer is one TenantError line, and no list request goes out."""
    hostile.on("POST", "/oauth/token", GARBAGE_TOKENS[name])
    auth = OAuthClientCredentials("cron", "s3cr3t-value", post=_unbound)
    async with ApiClient(hostile.url, auth, budgets(), sleep=no_wait) as client:
        with pytest.raises(TenantError) as info:
            await client.request("GET", "/v1/sharing-tasks")
    message = str(info.value)
    assert "\n" not in message and "s3cr3t" not in message and "X-Evil" not in message
    assert hostile.requests("GET") == []


async def test_the_cli_against_a_garbage_token_endpoint_exits_4_in_one_line(
    hostile: Origin, hostile_workdir: Workdir
) -> None:
    """`plan` with OAuth against a token endpoint answering HTML: exit 4, one line."""
    hostile.on("POST", "/oauth/token", GARBAGE_TOKENS["html"])
    hostile_workdir.config.write_text(
        f'state_dir = "state"\n[tenants.h]\nurl = "{hostile.url}"\n'
        'client_id = "cron"\nclient_secret_env = "H_SECRET"\n'
    )
    hostile_workdir.env["H_SECRET"] = "s3cr3t-value"
    result = await bulkshare(hostile_workdir, "plan", str(job_file(hostile_workdir)))
    assert result.code == 4, result.err
    [line] = error_lines(result.err)
    assert "access_token" in line and "Traceback" not in result.err
    assert "s3cr3t" not in result.err + result.out


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("request_timeout_s = nan", "defaults.request_timeout_s"),
        ("request_timeout_s = inf", "defaults.request_timeout_s"),
        ("retry_after_cap_s = -inf", "defaults.retry_after_cap_s"),
        ("retry_after_cap_s = -1", "defaults.retry_after_cap_s"),
        ("max_pages = 0", "defaults.max_pages"),
        ("max_response_bytes = -5", "defaults.max_response_bytes"),
    ],
)
async def test_nan_inf_and_negative_numbers_are_refused_before_any_request(
    hostile: Origin, hostile_workdir: Workdir, line: str, key: str
) -> None:
    """A config number that is nan, inf or negative: exit 2, one line naming the key."""
    write_config(hostile_workdir.config, hostile.url, line + "\n")
    hostile.on("GET", TASKS, task_list(make_tasks(1)))
    result = await bulkshare(hostile_workdir, "plan", str(job_file(hostile_workdir)))
    assert result.code == 2, result.err
    [err] = result.err.strip().splitlines()
    assert key in err
    assert hostile.seen == []


def test_http_date_helper_is_in_the_future() -> None:
    """The HTTP-date helper gives the time it was asked for (guarding the table above)."""
    parsed = datetime.strptime(http_date(90), "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert parsed - datetime.fromtimestamp(NOW, UTC) == timedelta(seconds=90)
