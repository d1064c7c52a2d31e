"""Fixtures of the generated-input suite: the tenants it talks to, and the count of its cases
printed at the end of the session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bulkshare.sim import SimConfig, SimTenant, running_sim
from tests.generated.harness import CASES, CODES, SECONDS, SLOWEST, Served
from tests.hostile.conftest import HOSTILE_KEY

#: the simulated tenant behind the hostile one: small, so a plan reads it in a few requests
SIM_TASKS = 40


@pytest.fixture(scope="session")
def served() -> Iterator[Served]:
    """The hostile tenant (passing unscripted requests to a small simulator) and a second
    origin, for the whole session; each case starts from `served.reset()`. The second origin
    must have received nothing when the session ends."""
    servers = Served()
    config = SimConfig(api_key=HOSTILE_KEY, tier1_per_minute=10**6, tier2_per_minute=10**6)
    servers.start(running_sim(SimTenant.seed(SIM_TASKS, 7), config))
    try:
        yield servers
    finally:
        received = len(servers.elsewhere.seen)
        servers.stop()
    assert received == 0, f"the second origin received {received} requests"


@pytest.fixture
def fresh(served: Served) -> Served:
    """`served`, with no script and nothing received yet."""
    served.reset()
    return served


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many generated cases ran, per kind of input, and in all."""
    if not CASES:
        return
    per_kind = ", ".join(f"{kind} {n}" for kind, n in sorted(CASES.items()))
    terminalreporter.write_line(f"generated inputs: {per_kind}; total {sum(CASES.values())} cases")
    codes = ", ".join(f"{kind} exit {code}: {n}" for (kind, code), n in sorted(CODES.items()))
    terminalreporter.write_line(f"generated inputs by exit code: {codes}")
    spent = ", ".join(f"{kind} {t:.1f} s" for kind, t in sorted(SECONDS.items()))
    terminalreporter.write_line(f"generated inputs, time in the CLI: {spent}")
    if os.environ.get("BULKSHARE_GENERATED_SLOWEST"):
        for seconds, kind, argv, err in SLOWEST:
            terminalreporter.write_line(f"  {seconds:.2f} s {kind} {list(argv)!r} {err!r}")
