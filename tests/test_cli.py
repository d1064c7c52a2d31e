"""The CLI as a user meets it: confirmation, credentials, secrets, audit verify, owner status."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import sys
from pathlib import Path

import aiohttp

from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.conftest import ROOT, TEST_KEY, TEST_KEY_ENV, Sim, Workdir, bulkshare, fetch_json


async def apply_on_terminal(wd: Workdir, answer: bytes) -> tuple[int, str]:
    """Run `apply` with a terminal on stdin, answer the prompt, return (code, stderr)."""
    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkshare",
        "apply",
        str(ROOT / "jobs" / "purge-deleting.toml"),
        "--config",
        str(wd.config),
        cwd=wd.path,
        env=wd.env,
        stdin=slave,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    os.close(slave)
    assert proc.stderr is not None
    prompt = b""
    while b"[y/N]" not in prompt:
        chunk = await asyncio.wait_for(proc.stderr.read(200), 30)
        assert chunk, prompt
        prompt += chunk
    os.write(master, answer)
    _, err = await proc.communicate()
    os.close(master)
    assert proc.returncode is not None
    return proc.returncode, (prompt + err).decode()


async def test_terminal_confirmation(demo_sim: Sim, workdir: Workdir) -> None:
    """On a terminal apply asks; 'n' changes nothing (exit 3), 'y' applies (exit 0)."""
    await demo_sim.reset_stats()
    code, err = await apply_on_terminal(workdir, b"n\n")
    assert code == 3, err
    assert (await demo_sim.stats())["writes"] == 0
    code, err = await apply_on_terminal(workdir, b"y\n")
    assert code == 0, err
    assert (await demo_sim.stats())["writes"] > 0


async def test_wrong_key_exits_4(demo_sim: Sim, workdir: Workdir) -> None:
    """A key the tenant refuses ends with exit 4 before any change, without showing the key."""
    workdir.env[TEST_KEY_ENV] = "not-the-key-7c1"
    await demo_sim.reset_stats()
    result = await bulkshare(workdir, "apply", str(ROOT / "jobs" / "purge-deleting.toml"), "--yes")
    assert result.code == 4, result.err
    assert "authentication failed" in result.err
    assert "not-the-key-7c1" not in result.err + result.out
    assert (await demo_sim.stats())["writes"] == 0


async def test_unreachable_tenant_exits_4(workdir: Workdir) -> None:
    """A tenant nobody answers at ends with exit 4 and one line."""
    workdir.config.write_text(
        "[defaults]\nmax_attempts = 2\n[tenants.t]\n"
        'url = "http://127.0.0.1:9"\n'
        f'api_key_env = "{TEST_KEY_ENV}"\n'
    )
    result = await bulkshare(workdir, "plan", str(ROOT / "jobs" / "purge-deleting.toml"))
    assert result.code == 4, result.err
    assert "unreachable" in result.err
    assert "Traceback" not in result.err


async def test_secret_never_written(demo_sim: Sim, workdir: Workdir) -> None:
    """The bearer key appears in no output, log line or run file, even at -v with JSON logs."""
    result = await bulkshare(
        workdir,
        "apply",
        str(ROOT / "jobs" / "disable-orphaned.toml"),
        "--yes",
        "-v",
        "--log-format",
        "json",
    )
    assert result.code == 0, result.err
    assert TEST_KEY not in result.out + result.err
    for path in workdir.state.rglob("*"):
        if path.is_file():
            assert TEST_KEY.encode() not in path.read_bytes(), path


async def test_audit_verify_cli_detects_tampering(demo_sim: Sim, workdir: Workdir) -> None:
    """`audit verify` passes on a run's log and fails, naming the line, once a byte changes."""
    result = await bulkshare(workdir, "apply", str(ROOT / "jobs" / "purge-deleting.toml"), "--yes")
    assert result.code == 0, result.err
    [run_dir] = list((workdir.state / "runs").iterdir())
    ok = await bulkshare(workdir, "audit", "verify", run_dir.name)
    assert ok.code == 0 and "chain intact" in ok.out
    log = workdir.path / "copy-of-audit.jsonl"
    data = bytearray((run_dir / "audit.jsonl").read_bytes())
    data[data.index(b'"delete"') + 2] = ord("X")
    log.write_bytes(bytes(data))
    bad = await bulkshare(workdir, "audit", "verify", str(log))
    assert bad.code == 1
    assert f"{log}:" in bad.out


async def test_owner_status_matches_deleted_and_missing_owners(
    demo_sim: Sim, workdir: Workdir, tmp_path: Path
) -> None:
    """where.owner_status = deleted selects tasks whose owner is deleted or 404s."""
    job = tmp_path / "gone.toml"
    job.write_text(
        '[job]\nname = "gone"\n[[operations]]\naction = "disable"\n'
        'where.owner_status = "deleted"\nwhere.enabled = true\n'
    )
    users = {u["id"]: u["status"] for u in await demo_sim.users()}
    tasks = await demo_sim.tasks()
    expected = {
        i
        for i, t in tasks.items()
        if t.get("enabled") is True
        and t.get("statusCode") != "DELETING"
        and users.get(t.get("owner", ""), "deleted") == "deleted"
    }
    assert expected
    result = await bulkshare(workdir, "apply", str(job), "--yes")
    assert result.code == 0, result.err
    after = await demo_sim.tasks()
    assert {
        i for i, t in after.items() if t.get("enabled") is False and tasks[i]["enabled"]
    } == expected


async def test_oauth_secret_and_token_never_written(tmp_path: Path) -> None:
    """With OAuth client credentials, neither the secret nor the token shows in output or files."""
    secret = "client-secret-91af"
    tenant = SimTenant.seed(200, 3)
    config = SimConfig(client_id="cron-client", client_secret=secret)
    async with running_sim(tenant, config) as url:
        cfg = tmp_path / "bulkshare.toml"
        cfg.write_text(
            f'state_dir = "state"\n[tenants.m2m]\nurl = "{url}"\nclient_id = "cron-client"\n'
            'client_secret_env = "M2M_SECRET"\n'
        )
        wd = Workdir(tmp_path, cfg, {**os.environ, "M2M_SECRET": secret})
        result = await bulkshare(
            wd,
            "apply",
            str(ROOT / "jobs" / "disable-orphaned.toml"),
            "--yes",
            "-v",
            "--log-format",
            "json",
        )
        tokens = [t for t in (await fetch_json(f"{url}/__sim/tenant")).get("tokens", [])]
    assert result.code == 0, result.err
    assert secret not in result.out + result.err
    assert "Bearer" not in result.out + result.err
    for path in wd.state.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data, path
            for token in tokens:
                assert token.encode() not in data, path


async def test_owner_status_looks_owners_up_in_batches_once_per_run(tmp_path: Path) -> None:
    """Owners are resolved 100 per users-filter request, each owner once, across operations."""
    job = tmp_path / "owners.toml"
    job.write_text(
        '[job]\nname = "owners"\n'
        '[[operations]]\naction = "disable"\nwhere.owner_status = "disabled"\n'
        '[[operations]]\naction = "tag"\ntags = ["owner-gone"]\n'
        'where.owner_status = ["deleted", "disabled"]\n'
    )
    tenant = SimTenant.seed(3000, 11)
    async with running_sim(tenant, SimConfig(api_key=TEST_KEY)) as url:
        sim = Sim(url, aiohttp.ClientSession())
        async with sim.session:
            owners = {t.get("owner") for t in (await sim.tasks()).values()} - {None, ""}
            assert len(owners) > 200  # several batches
            wd = Workdir(
                tmp_path, tmp_path / "bulkshare.toml", {**os.environ, TEST_KEY_ENV: TEST_KEY}
            )
            wd.config.write_text(
                f'state_dir = "state"\n[tenants.t]\nurl = "{url}"\napi_key_env = "{TEST_KEY_ENV}"\n'
            )
            result = await bulkshare(wd, "plan", str(job), "--format", "json")
            stats = await sim.stats()
    assert result.code == 0, result.err
    filters = [e for e in stats["timeline"] if e[1] == "POST" and "users/actions/filter" in e[2]]
    assert 2 <= len(filters) <= -(-len(owners) // 100)
    assert stats["throttled"] == 0
    plan = json.loads(result.out)
    assert {a for c in plan["changes"] for a in c["actions"]} >= {"disable", "tag"}
