"""Generated config files through `bulkshare plan`: a valid config mutated (URLs with userinfo,
`nan`, `inf`, negative and huge numbers, secrets inline, unknown keys, odd text) and raw bytes.
Each plans (0), is refused in one line with exit 2 before any request, or finds the tenant
unusable (4); a password or inline secret is never shown.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.generated.harness import ENV, Served, check, run_cli, suite_settings
from tests.generated.tomltext import ODD_VALUES, document, mutated
from tests.hostile.conftest import HOSTILE_KEY_ENV

# slow (`.ci/run` runs it with `pytest -m slow`): generated inputs through the real CLI
pytestmark = pytest.mark.slow

JOB = (
    '[job]\nname = "cfg"\n[[operations]]\naction = "disable"\n'
    'where.task_errors = ["ORPHAN"]\nwhere.enabled = true\n'
)
#: what an inline secret or a URL's password is, so the test can look for it in the output
SECRET = "s3cr3t-Pa55"
KEYS = [
    "state_dir",
    "defaults",
    "tenants",
    "concurrency",
    "max_attempts",
    "request_timeout_s",
    "progress_every_s",
    "plan_max_age_h",
    "plan_key_env",
    "retry_after_cap_s",
    "max_pages",
    "max_response_bytes",
    "url",
    "api_key_env",
    "client_id",
    "client_secret_env",
    "limits",
    "headroom",
    "tier1_per_minute",
    "tier2_per_minute",
    "users_filter_per_minute",
    "window_s",
    "api_key",
    "client_secret",
    "password",
    "token",
]
#: what `plan` may end with: planned, refused before sending, tenant unusable
PLAN_CODES = {0, 2, 4}


def base(url: str, state: Path) -> dict[str, Any]:
    """A valid config naming the hostile tenant; its state in `state`."""
    return {
        "state_dir": str(state),
        "defaults": {"max_attempts": 1, "request_timeout_s": 10, "retry_after_cap_s": 0.01},
        "tenants": {
            "h": {
                "url": url,
                "api_key_env": HOSTILE_KEY_ENV,
                "limits": {"tier1_per_minute": 100_000, "window_s": 300},
            }
        },
    }


def urls(url: str) -> st.SearchStrategy[str]:
    """The tenant URL, and the ways a URL can be wrong (never a host off this machine: a
    generated case must not reach the network)."""
    port = url.rsplit(":", 1)[1]
    return st.sampled_from(
        [
            url,
            url + "/",
            f"http://user:{SECRET}@127.0.0.1:{port}",
            f"https://:{SECRET}@127.0.0.1:{port}",
            f"http://127.0.0.1:{port}/api",
            f"http://127.0.0.1:{port}?x=1",
            f"http://127.0.0.1:{port}#f",
            f"https://127.0.0.1:{port}",  # TLS to a plain-HTTP port: unreachable, 4
            "http://127.0.0.1:1",  # nothing listens: 4
            "http://127.0.0.1:0",
            "http://127.0.0.1:99999",
            "http://127.0.0.1:x",
            "http://example.invalid",  # http:// off loopback: refused
            "ftp://127.0.0.1",
            "127.0.0.1",
            "",
            "http://[::1",
            "http://127.0.0.1:" + port + "\x1b[2J",
            "http://127.0.0.1:" + port + "\u202e",
            "http://ünicode.invalid",
        ]
    )


def _mutated_config(url: str, state: Path) -> st.SearchStrategy[dict[str, Any]]:
    def with_url(doc: dict[str, Any], new_url: str, secret: bool, sim: bool) -> dict[str, Any]:
        # dropped, the default of 6 attempts makes a dead tenant a real wait of backoffs
        if "defaults" not in doc:
            doc["defaults"] = {}
        if isinstance(defaults := doc["defaults"], dict):
            defaults.setdefault("max_attempts", 1)
        if "tenants" not in doc and not sim:
            # without tenants the built-in simulator is planned (a second each): now and then
            doc["tenants"] = base(url, state)["tenants"]
        tenant = doc.get("tenants", {}).get("h") if isinstance(doc.get("tenants"), dict) else None
        if isinstance(tenant, dict):
            tenant["url"] = new_url
            if secret:
                tenant["client_secret"] = SECRET
        return doc

    sim = st.integers(0, 4).map(lambda n: n == 0)
    return st.builds(with_url, mutated(base(url, state), KEYS), urls(url), st.booleans(), sim)


def _plan(served: Served, config_text: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        job = root / "job.toml"
        job.write_text(JOB)
        config = root / "bulkshare.toml"
        config.write_bytes(config_text)
        outcome = run_cli(["plan", str(job), "--config", str(config)], root, ENV)
    check(outcome, PLAN_CODES, "configs", secrets=[SECRET])
    if outcome.code == 2:
        assert served.hostile.seen == [], outcome.err
    assert served.elsewhere.seen == []


@suite_settings(380)
@given(data=st.data())
def test_mutated_configs_plan_or_are_refused_in_one_line(
    fresh: Served, data: st.DataObject
) -> None:
    """A valid config mutated anywhere plans, or is refused in one line, exit 2, sending
    nothing; a tenant it cannot use is exit 4; no secret is shown."""
    fresh.reset()
    doc = data.draw(_mutated_config(fresh.hostile.url, fresh.state))
    _plan(fresh, document(doc).encode())


@suite_settings(60)
@given(key=st.sampled_from(KEYS), value=ODD_VALUES, table=st.sampled_from(["", "defaults"]))
def test_one_odd_key_anywhere(fresh: Served, key: str, value: Any, table: str) -> None:
    """One known or secret key with an odd value at the top or in [defaults]: one clean line."""
    fresh.reset()
    doc = base(fresh.hostile.url, fresh.state)
    (doc[table] if table else doc)[key] = value
    _plan(fresh, document(doc).encode())


#: numbers for the settings: fine ones and every way one can be wrong
NUMBERS = st.sampled_from(
    [1, 2, 3, 10, 0.5, 1e12, 1e13, 0, -1, -0.0, math.nan, math.inf, "1", True]
)
NUMBER_KEYS = {
    "defaults": ["concurrency", "request_timeout_s", "retry_after_cap_s", "plan_max_age_h",
                 "max_pages", "max_response_bytes", "progress_every_s"],
    "limits": ["tier1_per_minute", "tier2_per_minute", "users_filter_per_minute", "window_s"],
}  # fmt: skip


@suite_settings(120)
@given(data=st.data())
def test_urls_and_numbers(fresh: Served, data: st.DataObject) -> None:
    """The tenant URL in each of its wrong and right forms, with settings drawn from fine and
    wrong numbers: planned (0), refused before sending (2), or the tenant unusable (4)."""
    fresh.reset()
    doc = base(data.draw(urls(fresh.hostile.url)), fresh.state)
    tenant = doc["tenants"]["h"]
    for table, keys in NUMBER_KEYS.items():
        target = doc["defaults"] if table == "defaults" else tenant["limits"]
        for key in data.draw(st.lists(st.sampled_from(keys), max_size=2, unique=True)):
            value = data.draw(NUMBERS)
            # a fine but tiny budget or timeout is a real wait, not an error: left out here
            if not (key in ("request_timeout_s", "window_s") and value in (0.5, 1e12, 1e13)):
                target[key] = value
    if data.draw(st.booleans()):
        tenant["headroom"] = data.draw(st.sampled_from([0.5, 1, 1.5, 0, math.nan]))
    _plan(fresh, document(doc).encode())


@suite_settings(60)
@given(data=st.binary(max_size=300), cut=st.integers(0, 300))
def test_config_bytes(fresh: Served, data: bytes, cut: int) -> None:
    """A config cut anywhere and followed by random bytes: planned or refused in one line."""
    fresh.reset()
    _plan(fresh, document(base(fresh.hostile.url, fresh.state)).encode()[:cut] + data)
