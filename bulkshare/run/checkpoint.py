"""Which planned writes may have been sent, and when, in SQLite (WAL survives kill -9).

Changes are armed in blocks ahead of sending (group commit); what is done is read from the
audit log, so an armed change without an audit record is settled by reading on resume.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bulkshare import safefile
from bulkshare.errors import RunFileError, UsageError

__all__ = ["AuditMark", "Checkpoint"]

#: the files SQLite keeps beside the database; none may be a planted symlink
_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True)
class AuditMark:
    """The last audit record a run's process saw fsync'd: the log cannot be shorter."""

    seq: int
    hash: str


@contextlib.contextmanager
def _sqlite(path: Path) -> Iterator[None]:
    """SQLite's errors (a corrupt file, a full disk) as one RunFileError line naming the file."""
    try:
        yield
    except sqlite3.Error as exc:
        raise RunFileError(f"{path}: checkpoint: {exc}") from None


class Checkpoint:
    """The marks of one run's armed changes, and the run's counters across its processes."""

    __slots__ = ("_db", "path")

    def __init__(self, path: Path) -> None:
        #: the SQLite file
        self.path = path
        try:
            safefile.refuse_links(path, *(path.with_name(path.name + s) for s in _SIDE_FILES))
            # created by us, not by SQLite, so a symlink planted in a race is refused too
            safefile.create_new(path, b"")
            safefile.refuse_links(path)
        except UsageError as exc:
            raise RunFileError(f"checkpoint: {exc}") from None
        with _sqlite(path):
            self._db = sqlite3.connect(path, isolation_level=None)
            self._create()

    def _create(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS marks "
            "(idx INTEGER PRIMARY KEY, state TEXT NOT NULL, at REAL NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS audit_mark "
            "(one INTEGER PRIMARY KEY CHECK (one = 0), seq INTEGER NOT NULL, hash TEXT NOT NULL)"
        )

    def __repr__(self) -> str:
        return f"<Checkpoint {self.path}>"

    def arm(self, indices: list[int], *, throttled: int | None = None) -> None:
        """Mark changes as about to be sent, in one transaction, before any of them is sent.

        `throttled`, the run's 429s so far, rides along so that a run killed outright still
        hands its count to the process that resumes it. Arming a change again moves its time.
        """
        now = time.time()
        with _sqlite(self.path), self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO marks VALUES (?, 'sent', ?)", [(i, now) for i in indices]
            )
            if throttled is not None:
                self._set("throttled", throttled)

    def _set(self, name: str, n: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO counters VALUES (?, ?)", (name, n))

    def counter(self, name: str) -> int:
        """A counter of the run, 0 if never set."""
        row = self._db.execute("SELECT n FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def armed(self) -> dict[int, float]:
        """Every armed change: plan index -> when it was last armed (our clock, epoch seconds)."""
        with _sqlite(self.path):
            rows = self._db.execute("SELECT idx, at FROM marks WHERE state = 'sent'").fetchall()
        return {int(i): float(at) for i, at in rows}

    def mark_audit(self, seq: int, hash_: str) -> None:
        """Note the last audit record fsync'd; always written after the fsync, never before."""
        with _sqlite(self.path):
            self._db.execute("INSERT OR REPLACE INTO audit_mark VALUES (0, ?, ?)", (seq, hash_))

    @staticmethod
    def saved_mark(path: Path) -> AuditMark | None:
        """The audit mark of the checkpoint at `path`, read without creating it.

        Opened read-write, not `mode=ro`: a checkpoint left by a killed process may need
        SQLite's recovery of its WAL on open, which a read-only connection cannot do
        ("attempt to write a readonly database", seen on resume after a kill -9)."""
        try:
            safefile.refuse_links(path)
        except UsageError as exc:
            raise RunFileError(f"checkpoint: {exc}") from None
        if not path.exists():
            return None
        with (
            _sqlite(path),
            contextlib.closing(sqlite3.connect(path)) as db,
        ):
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_mark'").fetchone():
                return None  # a checkpoint from before audit marks
            row = db.execute("SELECT seq, hash FROM audit_mark").fetchone()
        return None if row is None else AuditMark(int(row[0]), str(row[1]))

    def close(self) -> None:
        self._db.close()
