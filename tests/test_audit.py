"""The hash-chained audit log: chaining, reopening, tampering and torn lines."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bulkshare import audit


def write_log(path: Path, n: int) -> None:
    """Write `n` change records to a fresh log."""
    log = audit.AuditLog(path, "run-1", "sim", "job-a")
    log.append("run-start")
    for i in range(n):
        log.append("change", task_id=f"t{i}", outcome="applied", after={"name": "Zoë"})
    log.close()


def test_chain_matches_the_interface_definition(tmp_path: Path) -> None:
    """Each hash is sha256(prev_hash + canonical record without hash); the first links to zeros."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    prev = "0" * 64
    for line in path.read_bytes().splitlines():
        rec = orjson.loads(line)
        body = {k: v for k, v in rec.items() if k != "hash"}
        assert rec["prev_hash"] == prev
        expected = hashlib.sha256(prev.encode() + orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
        assert rec["hash"] == expected.hexdigest()
        prev = rec["hash"]
    assert audit.verify(path).ok


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    """A resumed run appends to the same chain with the next seq."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 2)
    log = audit.AuditLog(path, "run-1", "sim", "job-a")
    rec = log.append("run-end")
    log.close()
    assert rec["seq"] == 4
    assert audit.verify(path).records == 4


def test_one_changed_byte_fails(tmp_path: Path) -> None:
    """Changing a single byte anywhere in the log makes verify fail."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 5)
    data = bytearray(path.read_bytes())
    for pos in (10, len(data) // 2, len(data) - 5):
        tampered = bytearray(data)
        tampered[pos] = ord("X") if tampered[pos] != ord("X") else ord("Y")
        path.write_bytes(bytes(tampered))
        result = audit.verify(path)
        assert not result.ok, pos
        assert result.error and str(path) in result.error


def test_torn_last_line_is_detected_then_sealed(tmp_path: Path) -> None:
    """A crash mid-write leaves a torn line: verify fails until reopening seals it."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 2)
    with open(path, "ab") as fh:
        fh.write(b'{"ts": "2026-')
    assert not audit.verify(path).ok
    log = audit.AuditLog(path, "run-1", "sim", "job-a")
    log.append("run-end")
    log.close()
    result = audit.verify(path)
    assert result.ok and result.sealed_torn_lines == 1
    events = [r["event"] for r in audit.read_records(path)]
    assert audit.SEAL_EVENT in events


def test_removing_a_record_fails(tmp_path: Path) -> None:
    """Dropping a whole line breaks the chain."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 4)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + lines[3:]))
    assert not audit.verify(path).ok


def test_lines_are_the_sorted_record_with_its_hash(tmp_path: Path) -> None:
    """Each line is the record as canonical JSON, hash in its sorted place, whatever it holds."""
    path = tmp_path / "audit.jsonl"
    log = audit.AuditLog(path, "run-1", "sim", "job-a")
    records = [log.append("run-start")]
    for i in range(300):
        records.append(log.buffer("change", index=i, after={"name": "Zoë", "hash": "h"}))
    # a field that happens to hold the log's own placeholder takes the long way, same result
    records.append(log.append("change", note=f',"hash":"{log._placeholder}"'))
    records.append(log.append("change", before={"hash": log._placeholder}))
    log.close()
    lines = path.read_bytes().splitlines()
    assert lines == [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records]
    assert audit.verify(path).ok


def test_timestamps_are_utc_with_milliseconds() -> None:
    """utc_now gives RFC 3339 UTC with milliseconds, the clock's own second."""
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = audit.utc_now()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    assert before <= datetime.fromisoformat(stamp.replace("Z", "+00:00")) <= after


def tail_by_reading_everything(path: Path) -> tuple[int, str, bytes | None]:
    """What reopening must find, worked out from every line (the reference for _tail)."""
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    seq, last = 0, audit.GENESIS
    for raw in data[:cut].splitlines():
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("hash"), str):
            seq, last = int(rec.get("seq", seq)), rec["hash"]
    return seq, last, data[cut:] or None


def test_reopening_reads_the_log_from_its_end(tmp_path: Path) -> None:
    """The last seq and hash and the torn tail are found from the end, as a full read finds them."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 400)
    whole = path.read_bytes()
    big = audit.AuditLog(tmp_path / "big.jsonl", "run-1", "sim", "job-a")
    big.append("change", note="x" * 200_000)  # one record longer than the first look back
    big.close()
    cases = {
        "whole": whole,
        "torn": whole + b'{"ts": "2026-',
        "long torn": whole + b"y" * 300_000,
        "garbage last": whole + b"not json\n",
        "no seq last": whole + b'{"hash": "' + b"f" * 64 + b'"}\n',
        "only torn": b'{"ts"',
        "empty": b"",
        "big record": (tmp_path / "big.jsonl").read_bytes(),
    }
    for name, data in cases.items():
        path.write_bytes(data)
        assert audit._tail(path) == tail_by_reading_everything(path), name
