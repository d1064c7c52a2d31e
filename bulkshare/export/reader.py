"""Reading an export back: the header first, then the tasks as they stream, checked at the end
against the trailer (count, SHA-256); a truncated, edited or foreign file is refused.

Tasks are handed out before the end is reached, so a consumer that acts on them (copy,
restore) calls `verify_export` first: one full pass in bounded memory, then the real read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from bulkshare import safefile
from bulkshare.errors import ExportFileError
from bulkshare.export.fileformat import ExportHeader, ExportTrailer, is_trailer

__all__ = ["MAX_LINE_BYTES", "ExportReader", "open_export", "read_export", "verify_export"]

#: a longer line is refused rather than read: memory stays bounded whatever the file holds
MAX_LINE_BYTES = 64 << 20


class ExportReader:
    """One pass over an open export file: `header` at once, then `tasks()`, then `trailer`."""

    def __init__(self, path: Path, stream: BinaryIO) -> None:
        self.path = path
        self._stream = stream
        self._line_no = 0
        first = self._next_line()
        if first is None:
            raise ExportFileError(f"{path}: empty file, not a bulkshare export")
        self._head = first
        try:
            doc = orjson.loads(first)
        except orjson.JSONDecodeError:
            raise ExportFileError(f"{path}: not a bulkshare export (line 1 is not JSON)") from None
        self.header = ExportHeader.from_json(doc, self._at())
        #: set once tasks() has reached and checked the trailer
        self.trailer: ExportTrailer | None = None
        self._started = False

    def tasks(self) -> Iterator[dict[str, Any]]:
        """Each task document in file order; ExportFileError when the file turns out bad."""
        if self._started:
            raise RuntimeError("an ExportReader reads its tasks once")
        self._started = True
        digest, count = hashlib.sha256(), 0
        while (raw := self._next_line()) is not None:
            doc = self._parse(raw)
            if is_trailer(doc):
                self._end(ExportTrailer.from_json(doc, self._at()), count, digest.hexdigest())
                return
            if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not doc["id"]:
                raise ExportFileError(
                    f"{self._at()}: a task line must be a JSON object with a string 'id'"
                )
            digest.update(raw)
            count += 1
            yield doc
        raise ExportFileError(
            f"{self.path}: no trailer after line {self._line_no}: the file is truncated"
        )

    def _end(self, trailer: ExportTrailer, count: int, sha256: str) -> None:
        if self._next_line() is not None:
            raise ExportFileError(f"{self._at()}: a line after the trailer")
        if trailer.count != count:
            raise ExportFileError(
                f"{self.path}: the trailer counts {trailer.count} tasks but the file holds "
                f"{count}: lines were added or removed"
            )
        if trailer.sha256 != sha256:
            raise ExportFileError(
                f"{self.path}: the SHA-256 of the task lines does not match the trailer: "
                "the file was changed"
            )
        head = trailer.header_sha256
        if head is not None and head != hashlib.sha256(self._head).hexdigest():
            raise ExportFileError(f"{self.path}:1: the header was changed (trailer SHA-256)")
        self.trailer = trailer

    def _next_line(self) -> bytes | None:
        raw = self._stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return None
        self._line_no += 1
        if len(raw) > MAX_LINE_BYTES:
            raise ExportFileError(f"{self._at()}: a line longer than {MAX_LINE_BYTES} bytes")
        return raw

    def _parse(self, raw: bytes) -> object:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            if not raw.endswith(b"\n"):
                raise ExportFileError(
                    f"{self._at()}: the last line is cut short: the file is truncated"
                ) from None
            raise ExportFileError(f"{self._at()}: not a JSON object") from None

    def _at(self) -> str:
        return f"{self.path}:{self._line_no}"


@contextmanager
def open_export(path: Path | str) -> Iterator[ExportReader]:
    """The export file at `path`, open; ExportFileError (one line, exit 2) if it is not one."""
    path = Path(path)
    try:
        stream = safefile.open_regular(path)  # a FIFO is refused at once, not waited on
    except safefile.FileRefused as exc:
        raise ExportFileError(f"{path}: {exc.reason}") from None
    with stream:
        yield ExportReader(path, stream)


def read_export(path: Path | str) -> Iterator[ExportHeader | dict[str, Any]]:
    """The header, then each task document, verifying count and hash as it streams.

    The ExportFileError for a bad end comes after the last task: call `verify_export` first
    before acting on what this yields.
    """
    with open_export(path) as reader:
        yield reader.header
        yield from reader.tasks()


def verify_export(path: Path | str) -> ExportHeader:
    """Read the whole file once, in bounded memory; its header if every check passes."""
    with open_export(path) as reader:
        for _ in reader.tasks():
            pass
        return reader.header
