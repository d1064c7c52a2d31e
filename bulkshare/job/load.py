"""Job files: TOML -> Job, checked completely before any request is sent.

Every refusal is a JobFileError naming the file, the 1-based line and the dotted key.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from bulkshare import safefile
from bulkshare.errors import JobFileError
from bulkshare.job.checks import (
    Source,
    byte_position,
    check_keys,
    describe,
    hint,
    optional_positive,
    optional_string,
    string,
    table,
)
from bulkshare.job.copy_keys import CopySpec, parse_copy
from bulkshare.job.extras import EXTRAS
from bulkshare.job.locate import KeyLocator, KeyPath
from bulkshare.job.model import ACTION_KEYS, ActionKind, Job, Operation
from bulkshare.job.where_keys import parse_where

__all__ = ["load_job"]

_JOB_NAME = re.compile(r"[a-z0-9-]+")


def load_job(path: Path | str) -> Job:
    """Read and validate a job file; raise JobFileError at the first problem."""
    path = Path(path)
    data = _read_bytes(path)
    text = _decode(path, data)
    doc = _parse_toml(path, text)
    src = Source(path, KeyLocator(text))
    return _build_job(src, doc, hashlib.sha256(data).hexdigest())


# --- reading -------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    # a regular file of bounded size only: a FIFO or device is refused at once, never read
    try:
        return safefile.read_regular(path, safefile.MAX_INPUT_BYTES)
    except safefile.FileRefused as exc:
        raise JobFileError(path, None, None, exc.reason) from None


def _decode(path: Path, data: bytes) -> str:
    try:
        # utf-8-sig: editors on Windows like to prepend a BOM, which tomllib rejects.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = byte_position(data, exc.start)
        message = f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column})"
        raise JobFileError(path, line, None, message) from exc


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)$")


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's TOMLDecodeError carries the position only inside its message.
        reason = str(exc)
        if found := _TOML_AT.search(reason):
            line, where = int(found[1]), f"column {found[2]}"
        elif found := _TOML_AT_END.search(reason):
            line, where = text.rstrip("\n").count("\n") + 1, "end of file"
        else:
            raise JobFileError(path, None, None, f"invalid TOML: {reason}") from exc
        message = f"invalid TOML: {reason[: found.start()]} ({where})"
        raise JobFileError(path, line, None, message) from exc


def _build_job(src: Source, doc: dict[str, Any], sha256: str) -> Job:
    check_keys(src, doc, ("job", "operations", "copy"), ())
    if "job" not in doc:
        src.fail(("job",), 'missing; start the file with a [job] table holding name = "..."')
    job = table(src, doc["job"], ("job",))
    check_keys(src, job, ("name", "description", "max_changes"), ("job",))
    return Job(
        name=_job_name(src, job.get("name")),
        description=optional_string(src, job.get("description"), ("job", "description")),
        max_changes=optional_positive(src, job.get("max_changes"), ("job", "max_changes")),
        operations=() if "copy" in doc else _operations(src, doc.get("operations")),
        path=src.path,
        source_sha256=sha256,
        copy=_copy(src, doc),
    )


def _copy(src: Source, doc: dict[str, Any]) -> CopySpec | None:
    if "copy" not in doc:
        return None
    if "operations" in doc:
        src.fail(("operations",), "a copy job has a [copy] table instead of [[operations]]")
    return parse_copy(src, doc["copy"])


def _job_name(src: Source, value: Any) -> str:
    at: KeyPath = ("job", "name")
    if value is None:
        src.fail(at, 'missing; give the job a name such as name = "disable-orphaned"')
    name = string(src, value, at)
    if not _JOB_NAME.fullmatch(name):
        src.fail(at, f"{json.dumps(name)} may only use a-z, 0-9 and '-'")
    return name


def _operations(src: Source, value: Any) -> tuple[Operation, ...]:
    at: KeyPath = ("operations",)
    if value is None:
        src.fail(at, "missing; add at least one [[operations]] table")
    if not isinstance(value, list):
        src.fail(at, f"expected an array of tables ([[operations]]), got {describe(value)}")
    if not value:
        src.fail(at, "empty; add at least one [[operations]] table")
    tables = [table(src, raw, (*at, index)) for index, raw in enumerate(value)]
    return tuple(_operation(src, index, raw) for index, raw in enumerate(tables))


def _operation(src: Source, index: int, raw: dict[str, Any]) -> Operation:
    at: KeyPath = ("operations", index)
    action = _action(src, raw.get("action"), (*at, "action"))
    allowed = ("action", "where", *ACTION_KEYS.get(action, ()))
    check_keys(src, raw, allowed, at, context=f" for action {json.dumps(action.value)}")
    operation = Operation(
        index=index,
        line=src.locator.line_of(at),
        action=action,
        where=parse_where(src, raw.get("where"), (*at, "where")),
    )
    extras = EXTRAS.get(action)
    return operation if extras is None else extras(src, raw, at, operation)


def _action(src: Source, value: Any, at: KeyPath) -> ActionKind:
    valid = [kind.value for kind in ActionKind]
    if value is None:
        src.fail(at, f"missing; one of: {', '.join(valid)}")
    name = string(src, value, at)
    if name not in valid:
        suffix = hint(name, valid)
        src.fail(at, f"unknown action {json.dumps(name)}{suffix}; valid: {', '.join(valid)}")
    return ActionKind(name)
