"""The run's audit log: append-only JSON lines, fsync'd, each record hash-chained to the last.

`hash` = SHA-256 hex of UTF-8 `prev_hash` followed by the record without `hash`, as
`orjson.dumps(record, option=orjson.OPT_SORT_KEYS)`; the first `prev_hash` is 64 zeros.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bulkshare import safefile
from bulkshare.errors import RunFileError

__all__ = [
    "END_EVENT",
    "GENESIS",
    "SEAL_EVENT",
    "AuditLog",
    "VerifyResult",
    "read_records",
    "record_hash",
    "verify",
]

#: prev_hash of the first record
GENESIS = "0" * 64
#: the event that records a line torn by a crash, written when the log is reopened
SEAL_EVENT = "torn-line-sealed"
#: the last record of a finished run, carrying `records` (how many came before it) and `counts`
END_EVENT = "run-end"


def record_hash(prev_hash: str, record: dict[str, Any]) -> str:
    """The chained hash of a record (given without its `hash` key)."""
    canonical = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


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
        "_fh",
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
        self._fh = safefile.open_append(path)
        self._seq, self._last_hash, torn = _tail(path)
        if torn is not None:
            # a crash tore the last write: end that line and say so in the chain itself
            self._fh.write(b"\n")
            self.append(
                SEAL_EVENT, torn_sha256=hashlib.sha256(torn).hexdigest(), torn_bytes=len(torn)
            )

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
        try:
            self._fh.write(b"".join(lines))
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            # a full disk: one line naming the log; the records not written stay unrecorded,
            # so `resume` settles their changes by reading
            raise RunFileError(f"{self.path}: cannot write: {exc.strerror or exc}") from None

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
            # after a failed write the file's buffer still holds it: closing would raise again
            with contextlib.suppress(OSError):
                self._fh.close()

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


@dataclass(frozen=True)
class VerifyResult:
    """What `audit verify` found."""

    ok: bool
    records: int
    error: str | None = None  #: the first problem, naming its line
    sealed_torn_lines: int = 0  #: lines torn by a crash and sealed in the chain on reopen
    #: the only problem is a last line torn by a crash, which reopening the log seals
    torn_tail: bool = False

    @property
    def intact(self) -> bool:
        """Every whole record chains; at most the last line was torn by a kill (resumable)."""
        return self.ok or self.torn_tail


OnRecord = Callable[[dict[str, Any]], None]


@dataclass
class _Scan:
    """The state of one pass over a log."""

    path: Path
    finished: bool
    on_record: OnRecord | None
    prev: str = GENESIS
    count: int = 0
    sealed: int = 0
    torn: tuple[int, bytes] | None = None
    #: the last record was a run-end whose count held
    ended: bool = False
    outcomes: Counter[str] = field(default_factory=Counter)

    def result(self, lineno: int, problem: str) -> VerifyResult:
        at = self.torn[0] if self.torn else lineno
        return VerifyResult(False, self.count, f"{self.path}:{at}: {problem}", self.sealed)


def verify(
    path: Path, *, finished: bool = False, on_record: OnRecord | None = None
) -> VerifyResult:
    """Check every record's hash, its seq and its link to the previous one, in one pass.

    `finished`: the run says it finished, so the log must end with its `run-end`, whose
    `records` and `counts` agree with the records before it (a truncated log fails).
    `on_record` sees each record once its hash is checked (read and check in one pass).
    """
    scan = _Scan(path, finished, on_record)
    try:
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                problem = _verify_line(scan, lineno, raw[:-1] if raw.endswith(b"\n") else raw)
                if problem is not None:
                    return scan.result(lineno, problem)
    except OSError as exc:
        return VerifyResult(False, 0, f"{path}: cannot read: {exc.strerror or exc}")
    return _verdict(scan)


def _verify_line(scan: _Scan, lineno: int, raw: bytes) -> str | None:
    rec, problem = _parse_line(raw)
    if problem == "torn":
        if scan.torn is not None:
            return "not a JSON record (changed or torn, and not sealed)"
        scan.torn = (lineno, raw)
        return None
    if problem is None and scan.torn is not None:
        problem = _check_seal(rec, scan.torn[1])
        scan.sealed += 1
    if problem is None:
        problem = _check_link(rec, scan.prev, scan.count + 1)
    if problem is None:
        problem = _check_end(scan, rec)
    if problem is not None:
        return problem
    scan.torn = None
    scan.prev, scan.count = rec["hash"], scan.count + 1
    if scan.on_record is not None:
        scan.on_record(rec)
    return None


def _check_end(scan: _Scan, rec: dict[str, Any]) -> str | None:
    """Keep the tally a `run-end` is checked against; None if this record agrees with it."""
    event = rec.get("event")
    scan.ended = False
    if event == "change":
        scan.outcomes[str(rec.get("outcome"))] += 1
    elif event == END_EVENT:
        before = rec.get("records")
        # a run-end written before counts were recorded carries none: its place is still checked
        if before is not None and before != scan.count:
            return f"run-end says {before} records came before it, the log has {scan.count}"
        counts = rec.get("counts")
        if before is not None and counts != dict(scan.outcomes):
            return f"run-end counts {counts} disagree with the change records {dict(scan.outcomes)}"
        scan.ended = True
    return None


def _verdict(scan: _Scan) -> VerifyResult:
    if scan.torn is not None:
        where = f"{scan.path}:{scan.torn[0]}"
        if scan.finished:
            return VerifyResult(False, scan.count, f"{where}: torn line in a finished run")
        message = f"{where}: last line torn by a crash (bulkshare resume seals it)"
        return VerifyResult(False, scan.count, message, scan.sealed, torn_tail=True)
    if scan.finished and not scan.ended:
        message = (
            f"{scan.path}: the run finished but its log does not end with its run-end record "
            f"({scan.count} records): truncated"
        )
        return VerifyResult(False, scan.count, message, scan.sealed)
    return VerifyResult(True, scan.count, None, scan.sealed)


def _parse_line(raw: bytes) -> tuple[dict[str, Any], str | None]:
    try:
        rec = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}, "torn"
    if not isinstance(rec, dict) or not isinstance(rec.get("hash"), str):
        return {}, "not an audit record"
    return rec, None


def _check_seal(rec: dict[str, Any], torn: bytes) -> str | None:
    if rec.get("event") != SEAL_EVENT:
        return "not a JSON record (changed or torn, and not sealed)"
    if rec.get("torn_sha256") != hashlib.sha256(torn).hexdigest():
        return "torn line does not match its seal"
    return None


def _check_link(rec: dict[str, Any], prev: str, expect_seq: int) -> str | None:
    if rec.get("prev_hash") != prev:
        return "prev_hash does not match the previous record"
    if rec.get("seq") != expect_seq:
        return f"seq {rec.get('seq')} where {expect_seq} was expected"
    if _hash_of_read(rec, prev) != rec["hash"]:
        return "hash does not match the record"
    return None


def _hash_of_read(rec: dict[str, Any], prev: str) -> str:
    """`record_hash` of a record read back, without copying it (its `hash` is set aside)."""
    stored = rec.pop("hash")
    try:
        canonical = orjson.dumps(rec, option=orjson.OPT_SORT_KEYS)
    finally:
        rec["hash"] = stored
    return hashlib.sha256(prev.encode() + canonical).hexdigest()
