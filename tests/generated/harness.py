"""The generated-input suite's harness: the real CLI run in-process on one case, the checks every
case must pass, and tenants served from a thread while the CLI's own asyncio.run owns this one.

Every case goes through `bulkshare.cli.main(argv)` with stdout and stderr captured (stderr is not
a terminal, so its lines are JSON log events, as under cron) and is held to `check`:
- the exit code is one of those documented for that kind of input;
- no traceback anywhere, and nothing logged through `logging` (asyncio's "Task exception was
  never retrieved" included);
- exactly one error line on a failure, none on success (0) or a finished run with failures (1);
  under `plan --detailed-exitcode` every error is 1 (and 2 means changes), with its one line;
- every stderr line is one valid JSON object, and no raw control or format character is on
  stderr, nor on stdout when it holds a table or text.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Collection, Coroutine, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    contextmanager,
    redirect_stderr,
    redirect_stdout,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
from hypothesis import HealthCheck, settings

from bulkshare.cli import main
from tests.hostile.conftest import HOSTILE_KEY, HOSTILE_KEY_ENV, Origin, Reply, forward_to

__all__ = [
    "CASES",
    "CODES",
    "ENV",
    "RAW_CONTROL",
    "SECONDS",
    "SLOWEST",
    "CliOutcome",
    "Served",
    "check",
    "count",
    "run_cli",
    "suite_settings",
    "write_config",
]

T = TypeVar("T")

#: cases run, per kind of input, and per kind and exit code: printed at the end of the session
CASES: Counter[str] = Counter()
CODES: Counter[tuple[str, int]] = Counter()
#: time spent in the CLI per kind, and the slowest cases (for the summary, never asserted on)
SECONDS: dict[str, float] = {}
SLOWEST: list[tuple[float, str, tuple[str, ...], str]] = []

#: characters that must never reach stderr (or a text stdout) raw: C0 but newline, DEL, C1,
#: and the Unicode format characters that reorder or hide text
RAW_CONTROL = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\xad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff]"
)

_TRACEBACK = "Traceback (most recent call last)"


def suite_settings(examples: int) -> settings:
    """Repeatable (derandomized: the same cases on every run) and untimed hypothesis settings."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )


@dataclass(frozen=True)
class CliOutcome:
    """What one in-process `bulkshare` command did."""

    argv: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float  #: how long it took (reported per kind, never asserted on)

    def error_lines(self) -> list[str]:
        """The command's error lines: JSON `error` events, or plain `bulkshare:` lines."""
        found = []
        for line in self.err.splitlines():
            if line.startswith("{"):
                event = orjson.loads(line)
                if event.get("event") == "error":
                    found.append(str(event["message"]))
            elif line.startswith("bulkshare:"):
                found.append(line)
        return found


class _Collect(logging.Handler):
    """Whatever anything logs through the standard `logging` while a case runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


def run_cli(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> CliOutcome:
    """`bulkshare argv...` in this process, in `cwd`, with `env` added to the environment."""
    out, err = io.StringIO(), io.StringIO()
    collect = _Collect()
    root = logging.getLogger()
    root.addHandler(collect)
    started = time.perf_counter()
    with _environ(env or {}), _cwd(cwd), redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        finally:
            root.removeHandler(collect)
    logged = "".join(f"logging: {r}\n" for r in collect.records)
    seconds = time.perf_counter() - started
    return CliOutcome(tuple(argv), code, out.getvalue(), err.getvalue() + logged, seconds)


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextmanager
def _environ(extra: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in (*extra, "BULKSHARE_CONFIG")}
    os.environ.pop("BULKSHARE_CONFIG", None)
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def check(
    outcome: CliOutcome,
    allowed: Collection[int],
    kind: str,
    *,
    text_stdout: bool = True,
    secrets: Collection[str] = (),
) -> None:
    """Hold one case to the rules of the suite (see the module docstring); count it."""
    CASES[kind] += 1
    CODES[kind, outcome.code] += 1
    SECONDS[kind] = SECONDS.get(kind, 0.0) + outcome.seconds
    SLOWEST.append((outcome.seconds, kind, outcome.argv, outcome.err[-300:]))
    SLOWEST.sort(reverse=True)
    del SLOWEST[5:]
    where = f"{list(outcome.argv)!r}: exit {outcome.code}\n{outcome.err[-3000:]}"
    assert outcome.code in allowed, where
    assert _TRACEBACK not in outcome.err and _TRACEBACK not in outcome.out, where
    assert "logging: " not in outcome.err, where
    errors = outcome.error_lines()
    if "--detailed-exitcode" in outcome.argv:  # 1: an error (its one line); 0 or 2: a plan
        assert len(errors) == (outcome.code == 1), where
    elif outcome.code in (0, 1):
        assert errors == [], where
    elif "validate" not in outcome.argv[:3]:
        assert len(errors) == 1, where
    else:  # validate: one line per file it refuses
        assert 1 <= len(errors) <= len(outcome.argv), where
    for line in outcome.err.splitlines():
        if line.startswith("{"):
            assert isinstance(orjson.loads(line), dict), where
    assert not RAW_CONTROL.search(outcome.err), where
    if text_stdout:
        assert not RAW_CONTROL.search(outcome.out.replace("\t", " ")), where
    for secret in secrets:
        assert secret not in outcome.err and secret not in outcome.out, where


def count(kind: str, n: int = 1) -> None:
    """Count cases checked by other means than `check`."""
    CASES[kind] += n


def write_config(path: Path, url: str, state: Path | str = "state") -> Path:
    """A config naming one tenant `h` at `url` (its key in HOSTILE_KEY_ENV), one attempt per
    request; its state beside it, or in `state` (a read-only command's cases can share one, and
    with it the rate-limit ledger, instead of creating a ledger each)."""
    path.write_text(
        f'state_dir = "{state}"\n[defaults]\nmax_attempts = 1\n'
        f'[tenants.h]\nurl = "{url}"\napi_key_env = "{HOSTILE_KEY_ENV}"\n'
    )
    return path


#: the environment every case runs with: the hostile tenant's key, and messages untranslated
#: (as under cron; argparse looks for a translation of each of its messages otherwise)
ENV = {HOSTILE_KEY_ENV: HOSTILE_KEY, "LANGUAGE": "C"}


class Served:
    """Tenants on loopback, served by an event loop in a thread of their own.

    The CLI runs in the test's thread with its own `asyncio.run`, so the servers cannot share
    its loop. `hostile` passes every unscripted request on to `sim` (a small simulated tenant);
    `elsewhere` is a second origin that must never receive anything.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._stack = AsyncExitStack()
        self.hostile = Origin()
        self.elsewhere = Origin()
        self.sim_url = ""
        #: a state_dir the cases of read-only commands share (and with it one ledger)
        self.state = Path(tempfile.mkdtemp(prefix="bulkshare-generated-"))

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the servers' loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def enter(self, cm: AbstractAsyncContextManager[T]) -> T:
        """Enter `cm` on the servers' loop, for as long as they run."""
        return self.call(self._stack.enter_async_context(cm))

    def start(self, sim: AbstractAsyncContextManager[str]) -> None:
        self._thread.start()
        self.sim_url = self.enter(sim)
        self.enter(self.hostile.running())
        self.enter(self.elsewhere.running())
        self.elsewhere.otherwise(Reply(200, {"access_token": "stolen", "token_type": "bearer"}))
        self.reset()

    def reset(self) -> None:
        """Forget the hostile tenant's script and what both origins received."""
        self.hostile._routes.clear()
        self.hostile.otherwise(forward_to(self.sim_url))
        self.hostile.seen.clear()
        self.elsewhere.seen.clear()

    def stop(self) -> None:
        self.call(self._stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
        shutil.rmtree(self.state, ignore_errors=True)
