"""The audit log's hash chain: how a record's hash is defined, and the check of a whole log.

`hash` = SHA-256 hex of UTF-8 `prev_hash` followed by the record without `hash`, as
`orjson.dumps(record, option=orjson.OPT_SORT_KEYS)`; the first `prev_hash` is 64 zeros.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "END_EVENT",
    "GENESIS",
    "SEAL_EVENT",
    "OnRecord",
    "VerifyResult",
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
