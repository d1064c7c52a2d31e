"""What a run's creates and deletes left behind mid-way, in SQLite beside the checkpoint (WAL
survives kill -9): each copy's target id and step, and each delete's document before it is sent.

`id-map.csv` (source_id,target_id) is rewritten from here, atomically, as the run goes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import sqlite3
import time
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from bulkshare import safefile
from bulkshare.errors import RunFileError, UsageError

__all__ = ["ID_MAP_FILE", "PROGRESS_FILE", "CopyProgress", "Step", "read_id_map"]

ID_MAP_FILE = "id-map.csv"
PROGRESS_FILE = "copy.sqlite"
#: id-map.csv is rewritten at most this often while new rows come in (and always at the end)
_ID_MAP_EVERY_S = 0.5
_SIDE_FILES = ("-wal", "-shm", "-journal")


class Step(StrEnum):
    """How far one copy got."""

    CREATED = "created"  # the target task exists (its id is known)
    FINISHED = "finished"  # owner and enabled set, read back and verified
    DELETING = "deleting"  # the source's DELETE may have been sent
    PRESENT = "present"  # found in the target before any create was sent: skipped as done


@contextlib.contextmanager
def _sqlite(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise RunFileError(f"{path}: copy progress: {exc}") from None


class CopyProgress:
    """The copy steps and delete documents of one run directory."""

    __slots__ = ("_db", "_dirty", "_written_at", "id_map", "path")

    def __init__(self, run_root: Path) -> None:
        self.path = run_root / PROGRESS_FILE
        #: the id map beside the audit log
        self.id_map = run_root / ID_MAP_FILE
        try:
            safefile.refuse_links(self.path, *(Path(f"{self.path}{s}") for s in _SIDE_FILES))
            safefile.create_new(self.path, b"")
            safefile.refuse_links(self.path)
        except UsageError as exc:
            raise RunFileError(f"copy progress: {exc}") from None
        with _sqlite(self.path):
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS copies (idx INTEGER PRIMARY KEY, "
                "source_id TEXT NOT NULL, target_id TEXT NOT NULL, step TEXT NOT NULL)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS documents (idx INTEGER PRIMARY KEY, doc BLOB NOT NULL)"
            )
        self._dirty = False
        self._written_at = 0.0

    def __repr__(self) -> str:
        return f"<CopyProgress {self.path}>"

    def copy_of(self, idx: int) -> tuple[str, Step] | None:
        """The target id of change `idx`'s copy and its step, if it was created."""
        with _sqlite(self.path):
            row = self._db.execute(
                "SELECT target_id, step FROM copies WHERE idx = ?", (idx,)
            ).fetchone()
        return None if row is None else (str(row[0]), Step(row[1]))

    def created(self, idx: int, source_id: str, target_id: str) -> None:
        """Note a copy's target id the moment it is known, before anything else is sent."""
        with _sqlite(self.path):
            self._db.execute(
                "INSERT OR REPLACE INTO copies VALUES (?, ?, ?, ?)",
                (idx, source_id, target_id, Step.CREATED.value),
            )
        self._dirty = True

    def step(self, idx: int, step: Step) -> None:
        with _sqlite(self.path):
            self._db.execute("UPDATE copies SET step = ? WHERE idx = ?", (step.value, idx))

    def keep_document(self, idx: int, doc: Mapping[str, Any]) -> None:
        """The whole task as read before its delete: kept before the DELETE is sent."""
        with _sqlite(self.path):
            self._db.execute(
                "INSERT OR REPLACE INTO documents VALUES (?, ?)", (idx, orjson.dumps(doc))
            )

    def document(self, idx: int) -> dict[str, Any] | None:
        with _sqlite(self.path):
            row = self._db.execute("SELECT doc FROM documents WHERE idx = ?", (idx,)).fetchone()
        doc = None if row is None else orjson.loads(row[0])
        return doc if isinstance(doc, dict) else None

    def rows(self) -> list[tuple[str, str]]:
        """(source_id, target_id) of every copy this run created, in plan order."""
        with _sqlite(self.path):
            found = self._db.execute(
                "SELECT source_id, target_id FROM copies WHERE step != ? ORDER BY idx",
                (Step.PRESENT.value,),
            ).fetchall()
        return [(str(s), str(t)) for s, t in found]

    def write_id_map(self, *, force: bool = False) -> None:
        """Rewrite id-map.csv whole if rows came in (throttled unless `force`)."""
        now = time.monotonic()
        if not force and (not self._dirty or now - self._written_at < _ID_MAP_EVERY_S):
            return
        if not force and not self._dirty:
            return
        rows = self.rows()
        if not rows and not self.id_map.exists():
            return
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["source_id", "target_id"])
        writer.writerows(rows)
        try:
            safefile.write_atomic(self.id_map, out.getvalue().encode("utf-8"))
        except UsageError as exc:
            raise RunFileError(f"id map: {exc}") from None
        self._dirty, self._written_at = False, now

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()


def read_id_map(path: Path) -> list[tuple[str, str]]:
    """The (source_id, target_id) rows of an id-map.csv; [] if the run left none."""
    if not path.exists():
        return []
    try:
        text = safefile.read_regular(path).decode("utf-8")
    except (safefile.FileRefused, UnicodeDecodeError) as exc:
        raise RunFileError(f"{path}: cannot read the id map: {exc}") from None
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return [(r[0], r[1]) for r in rows[1:] if len(r) == 2]
