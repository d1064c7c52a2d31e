"""The two export writers, streaming task by task into a Target: JSON lines (header, tasks,
trailer with count and SHA-256) for copy and restore, and the CSV inventory for people.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bulkshare.export.fileformat import ExportHeader, ExportTrailer, json_line, task_line
from bulkshare.export.inventory import INVENTORY_COLUMNS, inventory_row
from bulkshare.export.target import Target

__all__ = ["CsvInventoryWriter", "ExportWriter", "TaskSink", "Written"]

#: CSV text is handed to the target in chunks of about this many characters
_CSV_CHUNK = 1 << 16


@dataclass(frozen=True)
class Written:
    """What a writer wrote: tasks, and a SHA-256 (of the task lines, or of the whole CSV)."""

    count: int
    sha256: str
    hashed: str  #: what the SHA-256 covers, in words


class TaskSink(Protocol):
    """Takes tasks one at a time; `restart` forgets them all (when the target allows it)."""

    count: int

    @property
    def restartable(self) -> bool: ...

    def write(self, task: Mapping[str, Any]) -> None: ...

    def restart(self) -> None: ...

    def finish(self) -> Written: ...


class ExportWriter:
    """A `bulkshare-export/1` file: header line, one task per line, trailer line."""

    def __init__(self, target: Target, header: ExportHeader) -> None:
        self._target = target
        self._head = json_line(header.to_json())
        self.count = 0
        self._hash = hashlib.sha256()
        self._begin()

    @property
    def restartable(self) -> bool:
        return self._target.restartable

    def _begin(self) -> None:
        self._target.write(self._head)
        self.count = 0
        self._hash = hashlib.sha256()

    def write(self, task: Mapping[str, Any]) -> None:
        line = task_line(task)
        self._hash.update(line)
        self._target.write(line)
        self.count += 1

    def restart(self) -> None:
        self._target.rewind()
        self._begin()

    def finish(self) -> Written:
        """Write the trailer; the caller then commits the target."""
        head = hashlib.sha256(self._head).hexdigest()
        trailer = ExportTrailer(self.count, self._hash.hexdigest(), head)
        self._target.write(json_line(trailer.to_json()))
        return Written(self.count, trailer.sha256, "of the task lines")


class CsvInventoryWriter:
    """The CSV inventory: a header row, then one row per task; no trailer (it is for people)."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._buf = io.StringIO()
        self._csv = csv.writer(self._buf, lineterminator="\n")
        self.count = 0
        self._hash = hashlib.sha256()
        self._begin()

    @property
    def restartable(self) -> bool:
        return self._target.restartable

    def _begin(self) -> None:
        self.count = 0
        self._hash = hashlib.sha256()
        self._csv.writerow(INVENTORY_COLUMNS)

    def write(self, task: Mapping[str, Any]) -> None:
        self._csv.writerow(inventory_row(task))
        self.count += 1
        if self._buf.tell() >= _CSV_CHUNK:
            self._flush()

    def restart(self) -> None:
        self._buf.seek(0)
        self._buf.truncate()
        self._target.rewind()
        self._begin()

    def finish(self) -> Written:
        self._flush()
        return Written(self.count, self._hash.hexdigest(), "of the file")

    def _flush(self) -> None:
        data = self._buf.getvalue().encode("utf-8")
        self._buf.seek(0)
        self._buf.truncate()
        self._hash.update(data)
        self._target.write(data)
