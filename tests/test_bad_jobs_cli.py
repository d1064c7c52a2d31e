"""Bad job files through the real CLI: exit 2, one line naming file, line and key, no request."""

from __future__ import annotations

import pytest

from tests.conftest import Sim, Workdir, bulkshare

HEADER = '[job]\nname = "bad"\n\n[[operations]]\n'

CASES = {
    "unknown-key": (
        HEADER + 'action = "disable"\nwhere.enabled = true\nwhere.ownr = "x"\n',
        7,
        "operations[0].where.ownr",
    ),
    "unknown-action": (
        HEADER + 'action = "disintegrate"\nwhere.all = true\n',
        5,
        "operations[0].action",
    ),
    "wrong-type": (
        HEADER + 'action = "disable"\nwhere.enabled = "yes"\n',
        6,
        "operations[0].where.enabled",
    ),
    "malformed": (HEADER + 'action = "disable"\nwhere.enabled = tru e\n', 6, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
async def test_bad_job_file(demo_sim: Sim, workdir: Workdir, case: str, command: str) -> None:
    """Each bad job file is refused in one line with its place, before any request."""
    text, line, key = CASES[case]
    path = workdir.path / f"{case}.toml"
    path.write_text(text)
    await demo_sim.reset_stats()
    args = [command, str(path)] + (["--yes"] if command == "apply" else [])
    result = await bulkshare(workdir, *args)
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert f"{path}:{line}:" in lines[0]
    if key:
        assert key in lines[0]
    assert "Traceback" not in result.err
    assert (await demo_sim.stats())["requests"] == 0
