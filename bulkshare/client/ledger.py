"""Where admitted requests are counted: in memory for one process, or in SQLite so that several
bulkshare processes using one identity on one tenant share one budget.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from pathlib import Path
from typing import Protocol

__all__ = ["Ledger", "MemoryLedger", "SqliteLedger"]

#: slots a process takes per ledger transaction (at most), and how long it may keep them unused
_LEASE = 256
_LEASE_MAX_AGE_S = 5.0
#: answers recorded per ledger transaction (at least; as many as the largest lease if more)
_DONE_BATCH = 32
#: a lease of this many slots or more, taken while the window is under half full, is one row
_BLOCK_MIN = 16
#: how long a process trusts its last look at another process's 429 pause
_PAUSE_CACHE_S = 0.1
#: an unanswered request older than a window plus this is one whose process died
_STALE_INFLIGHT_S = 120.0
#: after a 429 the cap grows back by this fraction of the limit per window


class Ledger(Protocol):
    """Where admitted requests are counted."""

    shared: bool

    def try_admit(
        self, tier: str, now: float, cap: int, window_s: float
    ) -> tuple[int | None, float]:
        """(token, 0) if admitted; else (None, seconds to wait, or -1 to wait for an answer)."""
        ...

    def done(self, tier: str, token: int, now: float) -> None: ...

    def pause(self, tier: str, until: float, ceiling: float) -> None:
        """Hold `tier` until `until`, or longer if already paused, but a stored pause past
        `ceiling` (beyond the cap: stale or hostile) is replaced, not kept."""
        ...

    def paused_until(self, tier: str, now: float) -> float: ...


class MemoryLedger:
    """A ledger for one process."""

    shared = False

    def __init__(self) -> None:
        self._inflight: dict[str, set[int]] = {}
        self._done: dict[str, list[float]] = {}  # answer times, ascending
        self._paused: dict[str, float] = {}
        self._tokens = itertools.count(1)

    def try_admit(
        self, tier: str, now: float, cap: int, window_s: float
    ) -> tuple[int | None, float]:
        done = self._done.setdefault(tier, [])
        while done and done[0] + window_s <= now:
            done.pop(0)
        inflight = self._inflight.setdefault(tier, set())
        if len(done) + len(inflight) < cap:
            token = next(self._tokens)
            inflight.add(token)
            return token, 0.0
        if done:
            return None, max(done[0] + window_s - now, 1e-3)
        return None, -1.0

    def done(self, tier: str, token: int, now: float) -> None:
        self._inflight[tier].discard(token)
        self._done[tier].append(now)

    def pause(self, tier: str, until: float, ceiling: float) -> None:
        stored = self._paused.get(tier, 0.0)
        self._paused[tier] = until if stored > ceiling else max(stored, until)

    def paused_until(self, tier: str, now: float) -> float:
        return self._paused.get(tier, 0.0)


def _lease_size(cap: int) -> int:
    # a small share of the window, so one process never sits on much of another's budget
    return max(1, min(_LEASE, cap // 16))


class _Block:
    """Slots leased as one ledger row while the window is far from full (see SqliteLedger)."""

    __slots__ = ("answered", "handed", "last", "row", "sealed")

    def __init__(self, row: int) -> None:
        self.row = row  #: its row in `blocks`
        self.handed = 0  #: tokens given to requests
        self.answered = 0  #: of those, answered
        self.last = 0.0  #: the latest answer
        self.sealed = False  #: no more tokens will be handed out (used up or given back)

    @property
    def finished(self) -> bool:
        return self.sealed and self.answered == self.handed


#: tries at opening a ledger another process is setting up at the same moment
_OPEN_TRIES = 20


def _opened(path: Path) -> sqlite3.Connection:
    """The ledger file, set up (WAL, its tables) if new.

    Two bulkshare processes started together open a new ledger at once; while one switches it
    to WAL, SQLite can answer the other "database is locked" at once rather than after its
    busy timeout (seen once in ten runs of tests/test_concurrent_jobs.py). That answer is
    tried again, a little later each time; any other error, or the last try's, is raised.
    """
    for attempt in itertools.count(1):
        db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        try:
            _set_up(db)
        except sqlite3.OperationalError as exc:
            db.close()
            if attempt >= _OPEN_TRIES or not any(word in str(exc) for word in ("locked", "busy")):
                raise
            time.sleep(0.01 * attempt)
        else:
            return db
    raise AssertionError("unreachable")


def _set_up(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")  # a lost ledger only forgets old requests
    db.execute(
        "CREATE TABLE IF NOT EXISTS sent (id INTEGER PRIMARY KEY, tier TEXT NOT NULL, "
        "admitted REAL NOT NULL, done REAL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS sent_tier ON sent (tier, done)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS blocks (id INTEGER PRIMARY KEY, tier TEXT NOT NULL, "
        "admitted REAL NOT NULL, n INTEGER NOT NULL, done REAL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS blocks_tier ON blocks (tier, done)")
    db.execute("CREATE TABLE IF NOT EXISTS pause (tier TEXT PRIMARY KEY, until REAL)")
    db.execute("CREATE TABLE IF NOT EXISTS counts (tier TEXT PRIMARY KEY, n INTEGER)")


class SqliteLedger:
    """A ledger in a SQLite file, shared by every process that opens the same file.

    Times are wall-clock seconds, so every process reads the same clock. To keep SQLite off the
    hot path, a process leases slots per transaction and records answers in batches; both only
    make the shared count higher for a moment, never lower. A slot is a row of `sent`, aged out
    one window after its own answer; while the window is less than half full, a big lease is
    instead one row of `blocks` holding `n` slots, aged out one window after its *last* answer
    (counting some slots a little longer, where that cannot hold anyone back). `counts` keeps
    the total of both, so a process that only knows `sent` still counts every slot.
    """

    shared = True

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = _opened(path)
        #: tier -> (token, leased at): a row id of `sent`, or a negative token of a block
        self._lease: dict[str, list[tuple[int, float]]] = {}
        self._dones: list[tuple[float, int]] = []  # (answer time, row id), not yet written
        self._done_batch = _DONE_BATCH
        self._leasing: dict[str, _Block] = {}  # tier -> the block its lease hands out
        self._handed: dict[int, _Block] = {}  # block token given out -> its block
        self._finished: list[_Block] = []  # blocks fully answered, their `done` not yet written
        self._block_tokens = itertools.count(-1, -1)
        self._pauses: dict[str, tuple[float, float]] = {}  # tier -> (until, read at)

    def try_admit(
        self, tier: str, now: float, cap: int, window_s: float
    ) -> tuple[int | None, float]:
        lease = self._lease.setdefault(tier, [])
        if lease and now - lease[-1][1] > _LEASE_MAX_AGE_S:
            self._give_back(tier)
        if lease:
            return self._hand_out(tier, lease), 0.0
        granted, oldest = self._lease_slots(tier, now, cap, window_s)
        if granted:
            lease.extend((token, now) for token in granted)
            return self._hand_out(tier, lease), 0.0
        if oldest is not None:
            return None, max(oldest + window_s - now, 1e-3)
        return None, -1.0

    def _hand_out(self, tier: str, lease: list[tuple[int, float]]) -> int:
        token = lease.pop()[0]
        if token < 0:
            block = self._leasing[tier]
            block.handed += 1
            self._handed[token] = block
            if not lease:
                block.sealed = True
                del self._leasing[tier]
        return token

    def _lease_slots(
        self, tier: str, now: float, cap: int, window_s: float
    ) -> tuple[list[int], float | None]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._write_dones()
            count = self._count(tier) - self._age_out(tier, now, window_s)
            oldest = min(
                (
                    row[0]
                    for table in ("sent", "blocks")
                    for row in db.execute(
                        f"SELECT MIN(done) FROM {table} WHERE tier = ? AND done IS NOT NULL",
                        (tier,),
                    )
                    if row[0] is not None
                ),
                default=None,
            )
            lease = _lease_size(cap)
            take = max(0, min(cap - count, lease))
            if take >= _BLOCK_MIN and count + take <= cap // 2:
                granted = self._insert_block(tier, now, take)
            else:
                granted = self._insert_slots(tier, now, take)
            # answers are written with the next lease, or once there are as many as one lease
            self._done_batch = max(self._done_batch, lease)
            db.execute("INSERT OR REPLACE INTO counts VALUES (?, ?)", (tier, count + take))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # an interrupt right after COMMIT leaves nothing to undo
                db.execute("ROLLBACK")
            raise
        return granted, None if oldest is None else float(oldest)

    def _age_out(self, tier: str, now: float, window_s: float) -> int:
        """Delete the slots a window past their answer; how many went."""
        db = self._db
        gone = 0
        # a request whose process died never gets its answer recorded: let it age out
        stale = now - window_s - _STALE_INFLIGHT_S
        for aged, since in (
            ("done <= ?", now - window_s),
            ("done IS NULL AND admitted <= ?", stale),
        ):
            gone += db.execute(
                f"DELETE FROM sent WHERE tier = ? AND {aged}", (tier, since)
            ).rowcount
            where = f"FROM blocks WHERE tier = ? AND {aged}"
            (slots,) = db.execute(f"SELECT COALESCE(SUM(n), 0) {where}", (tier, since)).fetchone()
            if slots:
                db.execute(f"DELETE {where}", (tier, since))
                gone += int(slots)
        return gone

    def _insert_slots(self, tier: str, now: float, n: int) -> list[int]:
        """Add `n` unanswered rows in one call; their ids (held write lock: no one else adds)."""
        if n <= 0:
            return []
        db = self._db
        (top,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM sent").fetchone()
        db.executemany(
            "INSERT INTO sent (tier, admitted, done) VALUES (?, ?, NULL)", [(tier, now)] * n
        )
        # new rows get ids above the largest; should SQLite ever pick lower ones (ids near
        # 2**63), the rows missed here are still counted and age out as stale: only over-counted
        return [int(row) for (row,) in db.execute("SELECT id FROM sent WHERE id > ?", (top,))]

    def _insert_block(self, tier: str, now: float, n: int) -> list[int]:
        """Add one unanswered row of `n` slots; a token for each."""
        row = self._db.execute(
            "INSERT INTO blocks (tier, admitted, n, done) VALUES (?, ?, ?, NULL)", (tier, now, n)
        ).lastrowid
        assert row is not None
        self._leasing[tier] = _Block(row)
        return [next(self._block_tokens) for _ in range(n)]

    def done(self, tier: str, token: int, now: float) -> None:
        if token < 0:
            block = self._handed.pop(token)
            block.answered += 1
            block.last = max(block.last, now)
            if block.finished:
                self._finished.append(block)
            return
        self._dones.append((now, token))
        if len(self._dones) >= self._done_batch:
            with self._db:
                self._db.execute("BEGIN")
                self._write_dones()

    def _write_dones(self) -> None:
        if self._dones:
            self._db.executemany("UPDATE sent SET done = ? WHERE id = ?", self._dones)
            self._dones = []
        if self._finished:
            self._db.executemany(
                "UPDATE blocks SET done = ? WHERE id = ?", [(b.last, b.row) for b in self._finished]
            )
            self._finished = []

    def _count(self, tier: str) -> int:
        row = self._db.execute("SELECT n FROM counts WHERE tier = ?", (tier,)).fetchone()
        if row is None:  # first use of this file (or of this tier): count once
            row = self._db.execute(
                "SELECT (SELECT COUNT(*) FROM sent WHERE tier = ?) "
                "+ (SELECT COALESCE(SUM(n), 0) FROM blocks WHERE tier = ?)",
                (tier, tier),
            ).fetchone()
        return int(row[0])

    def _give_back(self, tier: str) -> None:
        """Return the tier's unused leased slots, in one transaction."""
        lease = self._lease.setdefault(tier, [])
        tokens = [token for token, _ in lease]
        lease.clear()  # emptied in place: try_admit holds this very list
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            rows = [(token,) for token in tokens if token > 0]
            gone = self._db.executemany(
                "DELETE FROM sent WHERE id = ? AND done IS NULL", rows
            ).rowcount
            block = self._leasing.pop(tier, None)
            if block is not None:
                block.sealed = True
                unused = len(tokens) - len(rows)
                # rowcount 0: the row went as stale meanwhile, and its slots with it
                if block.handed == 0:
                    gone += (
                        unused
                        * self._db.execute("DELETE FROM blocks WHERE id = ?", (block.row,)).rowcount
                    )
                else:
                    gone += (
                        unused
                        * self._db.execute(
                            "UPDATE blocks SET n = n - ? WHERE id = ?", (unused, block.row)
                        ).rowcount
                    )
                    if block.finished:
                        self._finished.append(block)
            if gone > 0:
                self._db.execute("UPDATE counts SET n = n - ? WHERE tier = ?", (gone, tier))

    def pause(self, tier: str, until: float, ceiling: float) -> None:
        self._db.execute(
            "INSERT INTO pause VALUES (?, ?) ON CONFLICT(tier) DO UPDATE SET until = "
            "CASE WHEN until > ? THEN excluded.until ELSE MAX(until, excluded.until) END",
            (tier, until, ceiling),
        )
        self._pauses.pop(tier, None)

    def paused_until(self, tier: str, now: float) -> float:
        cached = self._pauses.get(tier)
        if cached is not None and 0 <= now - cached[1] < _PAUSE_CACHE_S:
            return cached[0]
        row = self._db.execute("SELECT until FROM pause WHERE tier = ?", (tier,)).fetchone()
        until = float(row[0]) if row else 0.0
        self._pauses[tier] = (until, now)
        return until

    def close(self) -> None:
        """Give unused leased slots back and write the last answers."""
        for tier in list(self._lease):
            self._give_back(tier)
        with self._db:
            self._db.execute("BEGIN")
            self._write_dones()
        self._db.close()
