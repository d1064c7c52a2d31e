"""Files a command is pointed at are regular files, read without waiting on a FIFO and without
following a planted link: a saved plan, an export to verify, an audit log to verify."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import Workdir, bulkshare, error_lines


async def test_a_fifo_as_plan_or_export_is_refused_at_once(workdir: Workdir) -> None:
    """`apply FIFO.json` and `export --verify FIFO` answer in one line, exit 2, not a hang."""
    fifo = workdir.path / "plan.json"
    os.mkfifo(fifo)
    applied = await bulkshare(workdir, "apply", str(fifo), "--yes")
    assert applied.code == 2, applied.err
    [line] = error_lines(applied.err)
    assert "not a regular file" in line
    verified = await bulkshare(workdir, "export", "--verify", str(fifo))
    assert verified.code == 2, verified.err
    [line] = error_lines(verified.err)
    assert "not a regular file" in line


async def test_audit_verify_refuses_a_symlinked_log(workdir: Workdir, tmp_path: Path) -> None:
    """A run directory whose audit.jsonl is a link is refused, as resume and show refuse it."""
    run = workdir.state / "runs" / "20261201T000000Z-x-t-0000"
    run.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text("")
    (run / "audit.jsonl").symlink_to(elsewhere)
    result = await bulkshare(workdir, "audit", "verify", str(run))
    assert result.code == 2, (result.out, result.err)
    [line] = error_lines(result.err)
    assert "symbolic link" in line
