"""The seed jobs against a spawned `bulkshare sim --fault-rate 0.1`: exact state, honest counts."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bulkshare import audit
from bulkshare.client.tenant import DEMO_SEED, DEMO_TASKS
from tests.conftest import ROOT, TEST_KEY, TEST_KEY_ENV, Workdir, bulkshare, fetch_json
from tests.test_e2e import expect_disable_orphaned, expect_purge, expect_reassign, view


@pytest.fixture
async def faulty_sim() -> AsyncIterator[str]:
    """A `bulkshare sim` process with 10 % faults on writes; yields its URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkshare",
        "sim",
        "--port",
        "0",
        "--tasks",
        str(DEMO_TASKS),
        "--seed",
        str(DEMO_SEED),
        "--fault-rate",
        "0.1",
        "--latency-ms",
        "2",
        "--api-key",
        TEST_KEY,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
    match = re.search(r"on (http://\S+)", line)
    assert match, line
    try:
        yield match.group(1)
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.timeout(180)
async def test_seed_jobs_under_faults(faulty_sim: str, tmp_path: Path) -> None:
    """Through 503s, 500s after applying and dropped connections, every job ends exact, exit 0."""
    config = tmp_path / "bulkshare.toml"
    config.write_text(
        f'state_dir = "state"\n[tenants.t]\nurl = "{faulty_sim}"\napi_key_env = "{TEST_KEY_ENV}"\n'
    )
    wd = Workdir(tmp_path, config, {**os.environ, TEST_KEY_ENV: TEST_KEY})
    doc = await fetch_json(f"{faulty_sim}/__sim/tenant")
    expected = {t["id"]: t for t in doc["sharingTasks"]}
    for job, expect in (
        ("purge-deleting.toml", expect_purge),
        ("disable-orphaned.toml", expect_disable_orphaned),
        ("reassign-owners.toml", expect_reassign),
    ):
        expected = expect(expected, doc["users"])
        result = await bulkshare(wd, "apply", str(ROOT / "jobs" / job), "--yes")
        assert result.code == 0, result.err
    after = await fetch_json(f"{faulty_sim}/__sim/tenant")
    assert view({t["id"]: t for t in after["sharingTasks"]}) == view(expected)
    stats = await fetch_json(f"{faulty_sim}/__sim/stats")
    faults = Counter(row[3] for row in stats["timeline"] if row[3] in (0, 500, 503))
    assert len(faults) == 3, faults  # dropped connections, 500s after applying, 503s before
    for run in sorted((wd.state / "runs").iterdir()):
        assert audit.verify(run / "audit.jsonl").ok
        logged = Counter(
            r["outcome"] for r in audit.read_records(run / "audit.jsonl") if r["event"] == "change"
        )
        summary = json.loads((run / "summary.json").read_text())
        assert summary["counts"] == dict(logged)
        assert summary["exit_code"] == 0
