"""The run's audit log: append-only JSON lines, fsync'd, each record hash-chained to the last.

The chain's definition and the check of a whole log are in `bulkshare.auditcheck`; this
module writes logs and reads them back, and re-exports the check as `audit.verify`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from bulkshare import safefile
from bulkshare.auditcheck import (
    END_EVENT,
    GENESIS,
    SEAL_EVENT,
    OnRecord,
    VerifyResult,
    record_hash,
    verify,
)
from bulkshare.errors import RunFileError

__all__ = [
    "END_EVENT",
    "GENESIS",
    "SEAL_EVENT",
    "AuditLog",
    "OnRecord",
    "VerifyResult",
    "read_records",
    "record_hash",
    "utc_now",
    "verify",
]


def utc_now() -> str:
    """Now as UTC RFC 3339 with milliseconds (`2026-11-28T09:15:02.123Z`)."""
    global _second  # a one-entry cache, replaced whole
    now = time.time()
    second, text = _second
    if int(now) != second:
        # formatting the date is most of the cost of a timestamp, and it changes once a second
        second = int(now)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = (second, text)
    return f"{text}.{int((now - second) * 1000):03d}Z"


_second: tuple[int, str] = (-1, "")  #: the last second utc_now formatted, and its text


class AuditLog:
    """Appends chained records to one run's audit.jsonl; reopening continues the chain."""

    __slots__ = (
        "_broken",
        "_fd",
        "_last_hash",
        "_marker",
        "_pending",
        "_placeholder",
        "_seq",
        "job",
        "path",
        "run_id",
        "tenant",
    )

    def __init__(self, path: Path, run_id: str, tenant: str, job: str) -> None:
        self.path = path
        self.run_id = run_id
        self.tenant = tenant
        self.job = job
        self._pending: list[bytes] = []  # lines chained but not yet written
        # a random stand-in for `hash`, so one sorted serialization gives both the canonical
        # bytes (without it) and the line (with the real hash in its place)
        self._placeholder = secrets.token_hex(32)
        self._marker = b',"hash":"' + self._placeholder.encode() + b'"'
        # opened first: a symlink planted in place of the log is refused, never followed
        self._fd = safefile.open_append(path)
        #: the first write that failed: after it the log takes no more (its chain would break)
        self._broken: RunFileError | None = None
        try:
            self._seq, self._last_hash, torn = _tail(path)
            if torn is not None:
                # a crash tore the last write: end that line and say so in the chain itself
                self._write([b"\n"])
                self.append(
                    SEAL_EVENT, torn_sha256=hashlib.sha256(torn).hexdigest(), torn_bytes=len(torn)
                )
        except BaseException:
            os.close(self._fd)
            raise

    def __repr__(self) -> str:
        return f"<AuditLog {self.path} seq={self._seq}>"

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one record and fsync it before returning."""
        return self.append_many([(event, fields)])[0]

    def append_many(self, items: Iterable[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Write several records with one fsync (group commit); all or, on a crash, a prefix."""
        self.flush()  # keep the file in chain order
        records = [self.buffer_fields(event, fields) for event, fields in items]
        self.flush()
        return records

    def _write(self, lines: list[bytes]) -> None:
        if self._broken is not None:
            raise self._broken
        try:
            safefile.write_all(self._fd, b"".join(lines))
            os.fsync(self._fd)
        except OSError as exc:
            # a full disk: one line naming the log. What reached the disk is a prefix of the
            # chain (a torn last line is sealed on reopen); what did not stays unrecorded, so
            # `resume` settles those changes by reading. Nothing more is written after a gap.
            self._broken = RunFileError(f"{self.path}: cannot write: {exc.strerror or exc}")
            raise self._broken from None

    @property
    def seq(self) -> int:
        """The seq of the last record chained: how many records the log holds once flushed."""
        return self._seq

    @property
    def last_hash(self) -> str:
        """The hash of the last record chained."""
        return self._last_hash

    def buffer(self, event: str, **fields: Any) -> dict[str, Any]:
        """Chain a record now and write it with the next flush (group commit)."""
        return self.buffer_fields(event, fields)

    def buffer_fields(self, event: str, fields: dict[str, Any]) -> dict[str, Any]:
        """`buffer`, with the fields given as one dict (read, never kept or changed)."""
        record, line = self._chain(event, fields)
        self._pending.append(line)
        return record

    @property
    def pending(self) -> int:
        """Records chained but not yet written."""
        return len(self._pending)

    def flush(self) -> None:
        """Write and fsync every buffered record."""
        if self._pending:
            records, self._pending = self._pending, []
            self._write(records)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with contextlib.suppress(OSError):
                os.close(self._fd)

    def _chain(self, event: str, fields: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """The next record of the chain, and its line as written: the sorted record + hash."""
        prev = self._last_hash
        self._seq += 1
        record: dict[str, Any] = {
            "ts": utc_now(),
            "run_id": self.run_id,
            "seq": self._seq,
            "tenant": self.tenant,
            "job": self.job,
            "event": event,
            **fields,
            "prev_hash": prev,
            "hash": self._placeholder,
        }
        line = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        at = line.find(self._marker)
        if at < 0 or line.find(self._marker, at + 1) >= 0:
            # only if a field holds this log's random placeholder: serialize the long way
            del record["hash"]
            record["hash"] = record_hash(prev, record)
            line = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        else:
            # "event" sorts before "hash", so it is never the first key and its comma is ours
            head, rest = line[:at], line[at + len(self._marker) :]
            record["hash"] = hashlib.sha256(prev.encode() + head + rest).hexdigest()
            line = b"".join((head, b',"hash":"', record["hash"].encode(), b'"', rest))
        self._last_hash = record["hash"]
        return record, line + b"\n"


def _tail(path: Path) -> tuple[int, str, bytes | None]:
    """(last seq, last hash, torn last line or None) of an existing log, read from its end."""
    if not path.exists():
        return 0, GENESIS, None
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        span = 1 << 16
        while True:  # a longer look back each time, until a whole record is in view
            start = max(0, size - span)
            fh.seek(start)
            data = fh.read()
            cut = data.rfind(b"\n") + 1
            lines = data[:cut].splitlines()[0 if start == 0 else 1 :]  # the first may be cut
            last = next(filter(None, map(_record_or_none, reversed(lines))), None)
            if last is not None and "seq" in last:
                return int(last["seq"]), last["hash"], data[cut:] or None
            if start == 0 or last is not None:  # no record, or one without seq: read it all
                fh.seek(0)
                data = fh.read()
                cut = data.rfind(b"\n") + 1
                return (*_scan(data[:cut]), data[cut:] or None)
            span *= 4


def _scan(data: bytes) -> tuple[int, str]:
    """(last seq, last hash) of whole lines, reading every one (a log with no plain last record)."""
    seq, last = 0, GENESIS
    for raw in data.splitlines():
        rec = _record_or_none(raw)
        if rec is not None:
            seq, last = int(rec.get("seq", seq)), rec["hash"]
    return seq, last


def _record_or_none(raw: bytes) -> dict[str, Any] | None:
    try:
        rec = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("hash"), str) else None


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every well-formed record of a log, in order."""
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                yield rec
