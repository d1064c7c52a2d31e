"""Which planned writes may have been sent, in SQLite (WAL survives kill -9).

Changes are armed in blocks ahead of sending (group commit); what is done is read from the
audit log, so an armed change without an audit record is settled by reading on resume.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

__all__ = ["Checkpoint"]


class Checkpoint:
    """The marks of one run's armed changes, and the run's counters across its processes."""

    __slots__ = ("_db", "path")

    def __init__(self, path: Path) -> None:
        #: the SQLite file
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS marks "
            "(idx INTEGER PRIMARY KEY, state TEXT NOT NULL, at REAL NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL)"
        )

    def __repr__(self) -> str:
        return f"<Checkpoint {self.path}>"

    def arm(self, indices: list[int], *, throttled: int | None = None) -> None:
        """Mark changes as about to be sent, in one transaction, before any of them is sent.

        `throttled`, the run's 429s so far, rides along so that a run killed outright still
        hands its count to the process that resumes it.
        """
        now = time.time()
        with self._db:
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

    def states(self) -> dict[int, str]:
        return {int(i): str(s) for i, s in self._db.execute("SELECT idx, state FROM marks")}

    def close(self) -> None:
        self._db.close()
