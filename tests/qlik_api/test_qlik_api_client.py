"""Qlik's official TypeScript client, @qlik/api, driven against the simulator (issue 3)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.conftest import fetch_json

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "run_client.mjs"
API_KEY = "qlik-api-test-key-7c41"
TASKS = 157
SEED = 3
PAGE_LIMIT = 25
NODE_TIMEOUT_S = 60
NPM_TIMEOUT_S = 240


def _pinned_version() -> str:
    version: str = json.loads((HERE / "package.json").read_text())["dependencies"]["@qlik/api"]
    return version


def _installed_version() -> str | None:
    manifest = HERE / "node_modules" / "@qlik" / "api" / "package.json"
    if not manifest.is_file():
        return None
    version: str = json.loads(manifest.read_text())["version"]
    return version


@pytest.fixture
def node() -> str:
    """The node binary, with the pinned @qlik/api installed beside the script (`npm ci`)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not on PATH: cannot run Qlik's @qlik/api client")
    if _installed_version() != _pinned_version():
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            check=False,
        )
        assert proc.returncode == 0, f"npm ci failed:\n{proc.stdout}\n{proc.stderr}"
        assert _installed_version() == _pinned_version()
    return node


async def _run_client(node: str, url: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "QLIK_SIM_URL": url,
        "QLIK_API_KEY": API_KEY,
        "QLIK_PAGE_LIMIT": str(PAGE_LIMIT),
    }
    proc = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        cwd=HERE,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), NODE_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"run_client.mjs did not finish within {NODE_TIMEOUT_S} s")
    lines = out.decode().strip().splitlines()
    assert lines, f"no output (exit {proc.returncode}); stderr:\n{err.decode()}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert proc.returncode == 0 and result["ok"], (
        f"exit {proc.returncode}: {result.get('failures')}\nstderr:\n{err.decode()}"
    )
    return result


@pytest.mark.timeout(300)
async def test_qlik_api_client_lists_gets_patches_executes_reads_settings_and_deletes(
    node: str,
) -> None:
    """@qlik/api pages the whole list, gets, patches, executes, reads settings and deletes."""
    tenant = SimTenant.seed(TASKS, SEED)
    async with running_sim(tenant, SimConfig(api_key=API_KEY)) as url:
        result = await _run_client(node, url)
        doc = await fetch_json(f"{url}/__sim/tenant")
        stats = await fetch_json(f"{url}/__sim/stats")

    assert result["listed"] == result["totalCount"] == TASKS
    assert result["pages"] == math.ceil(TASKS / PAGE_LIMIT)
    assert result["pagesByName"] == math.ceil(TASKS / (2 * PAGE_LIMIT))
    assert result["totalAfterDelete"] == TASKS - 1

    task_id, deleted_id = result["taskId"], result["deletedId"]
    tasks = {t["id"]: t for t in doc["sharingTasks"]}
    assert len(tasks) == TASKS - 1
    assert deleted_id not in tasks
    assert tasks[task_id]["name"] == result["patchedName"]
    assert tasks[task_id]["name"].endswith("(patched by @qlik/api)")
    assert tasks[task_id]["tags"] == ["qlik-api", "cross-client"]
    runs = doc["executions"][task_id]
    assert len(runs) == result["executionsAfter"] == result["executionsBefore"] + 1
    assert runs[-1]["id"] == result["latestExecution"]["id"]
    assert result["settings"]["enable-sharing"] is doc["settings"]["enable-sharing"]

    tasks_path = "/api/v1/sharing-tasks"
    calls = [(method, path, status) for _, method, path, status in stats["timeline"]]
    assert stats["throttled"] == 0
    assert stats["writes_per_task"] == {task_id: 2, deleted_id: 1}  # PATCH + execute; DELETE
    assert ("PATCH", f"{tasks_path}/{task_id}", 204) in calls
    assert ("POST", f"{tasks_path}/actions/execute", 204) in calls
    assert ("GET", f"{tasks_path}/settings", 200) in calls
    assert ("DELETE", f"{tasks_path}/{deleted_id}", 204) in calls
    lists = result["pages"] + result["pagesByName"] + 1  # two full passes, one count after
    assert calls.count(("GET", tasks_path, 200)) == lists
    # every call succeeded but the GET of the deleted task, which the script expects to be 404
    failed = [c for c in calls if c[2] >= 400]
    assert failed == [("GET", f"{tasks_path}/{deleted_id}", 404)]
