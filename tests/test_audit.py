"""The hash-chained audit log: chaining, reopening, tampering and torn lines."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bulkshare import audit
from bulkshare.errors import UsageError


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


def finished_log(path: Path, outcomes: list[str]) -> None:
    """A log as a finished run leaves it: run-start, changes, and run-end with its counts."""
    log = audit.AuditLog(path, "run-1", "sim", "job-a")
    log.append("run-start")
    for i, outcome in enumerate(outcomes):
        log.append("change", index=i, outcome=outcome)
    counts = {o: outcomes.count(o) for o in set(outcomes)}
    log.append(audit.END_EVENT, records=log.seq, counts=counts, exit_code=0)
    log.close()


def test_finished_log_must_end_with_its_run_end(tmp_path: Path) -> None:
    """A finished run's log cut anywhere fails; the same log of an unfinished run passes."""
    path = tmp_path / "audit.jsonl"
    finished_log(path, ["applied", "applied", "skipped"])
    assert audit.verify(path, finished=True).ok
    lines = path.read_bytes().splitlines(keepends=True)
    for keep in range(1, len(lines)):
        path.write_bytes(b"".join(lines[:keep]))
        cut = audit.verify(path, finished=True)
        assert not cut.ok and cut.error and "truncated" in cut.error, keep
        assert audit.verify(path).ok, keep


def test_run_end_count_must_agree(tmp_path: Path) -> None:
    """A run-end whose record count or outcome counts disagree with the log fails, in any case."""
    for fields in ({"records": 7}, {"counts": {"applied": 5}}):
        path = tmp_path / f"audit-{len(fields)}-{next(iter(fields))}.jsonl"
        log = audit.AuditLog(path, "run-1", "sim", "job-a")
        log.append("run-start")
        log.append("change", index=0, outcome="applied")
        end = {"records": log.seq, "counts": {"applied": 1}, **fields}
        log.append(audit.END_EVENT, **end)
        log.close()
        result = audit.verify(path)
        assert not result.ok and result.error and "run-end" in result.error, fields


def test_run_end_without_count_is_still_an_end(tmp_path: Path) -> None:
    """A run-end written before counts were recorded still ends a finished log."""
    path = tmp_path / "audit.jsonl"
    log = audit.AuditLog(path, "run-1", "sim", "job-a")
    log.append("run-start")
    log.append(audit.END_EVENT, counts={}, exit_code=0)
    log.close()
    assert audit.verify(path, finished=True).ok


def test_torn_tail_is_intact_but_not_ok(tmp_path: Path) -> None:
    """A last line torn by a kill leaves the log intact (resumable) though verify says not ok."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 2)
    with open(path, "ab") as fh:
        fh.write(b'{"ts": "2026-')
    result = audit.verify(path)
    assert not result.ok and result.torn_tail and result.intact
    assert not audit.verify(path, finished=True).intact
    with open(path, "ab") as fh:
        fh.write(b'\n{"ts": "2027-')  # two torn lines: no kill leaves that
    assert not audit.verify(path).intact


def test_verify_hands_each_checked_record_once(tmp_path: Path) -> None:
    """verify's on_record sees every record, in order, exactly as read_records gives them."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 7)
    seen: list[dict[str, object]] = []
    assert audit.verify(path, on_record=seen.append).ok
    assert seen == list(audit.read_records(path))


def test_symlinked_log_is_never_appended_to(tmp_path: Path) -> None:
    """Reopening a log that is a symlink refuses it; the file it points at is unchanged."""
    target = tmp_path / "elsewhere.jsonl"
    write_log(target, 1)
    before = target.read_bytes()
    link = tmp_path / "audit.jsonl"
    link.symlink_to(target)
    try:
        audit.AuditLog(link, "run-1", "sim", "job-a")
    except UsageError as exc:
        assert "symbolic link" in str(exc)
    else:
        raise AssertionError("a symlinked log was opened")
    assert target.read_bytes() == before
