"""The extra keys of each action: reassign-owner's new owners (inline or CSV), tag lists and
patch ops, each checked against the service's vocabulary.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bulkshare import safefile
from bulkshare.errors import JobFileError
from bulkshare.job.checks import (
    Source,
    boolean,
    byte_position,
    check_keys,
    choice,
    describe,
    string,
    string_items,
    table,
)
from bulkshare.job.locate import KeyLocator, KeyPath
from bulkshare.job.model import ActionKind, Operation, PatchOp
from bulkshare.vocab import PATCH_OPS, PATCH_PATHS, TRANSPORT_CHANNELS

__all__ = ["EXTRAS", "patch_value_problem"]

_Extras = Callable[[Source, dict[str, Any], KeyPath, Operation], Operation]


def _reassign_extras(src: Source, raw: dict[str, Any], at: KeyPath, op: Operation) -> Operation:
    has_mapping = "mapping" in raw or "mapping_file" in raw
    if "to" in raw and has_mapping:
        src.fail((*at, "to"), "give either `to` or `mapping`/`mapping_file`, not both")
    if "to" not in raw and not has_mapping:
        need = 'needs the new owner: `to = "user-id"`, or `mapping` and/or `mapping_file`'
        src.fail((*at, "to"), f"reassign-owner {need}")
    enable = "enable" in raw and boolean(src, raw["enable"], (*at, "enable"))
    if "to" in raw:
        return replace(op, to=string(src, raw["to"], (*at, "to")), enable=enable)
    return replace(op, mapping=_owner_mapping(src, raw, at), enable=enable)


def _tag_extras(src: Source, raw: dict[str, Any], at: KeyPath, op: Operation) -> Operation:
    key: KeyPath = (*at, "tags")
    if "tags" not in raw:
        src.fail(key, f'{op.action.value} needs `tags = ["..."]`')
    if not isinstance(raw["tags"], list):
        src.fail(key, f"expected an array of strings, got {describe(raw['tags'])}")
    tags = string_items(src, raw["tags"], key)
    return replace(op, tags=tuple(dict.fromkeys(tag for _, tag in tags)))


def _patch_extras(src: Source, raw: dict[str, Any], at: KeyPath, op: Operation) -> Operation:
    key: KeyPath = (*at, "ops")
    value = raw.get("ops")
    example = '[{ op = "replace", path = "/enabled", value = false }]'
    if value is None:
        src.fail(key, f"patch needs `ops = {example}`")
    if not isinstance(value, list) or not value:
        src.fail(key, f"expected a non-empty array of tables like {example}")
    ops = tuple(_patch_op(src, item, (*key, index)) for index, item in enumerate(value))
    seen: set[str] = set()
    for index, patch in enumerate(ops):
        if patch.path in seen:
            src.fail((*key, index, "path"), f"{patch.path} is already patched by an earlier op")
        seen.add(patch.path)
    return replace(op, ops=ops)


EXTRAS: dict[ActionKind, _Extras] = {
    ActionKind.REASSIGN_OWNER: _reassign_extras,
    ActionKind.TAG: _tag_extras,
    ActionKind.UNTAG: _tag_extras,
    ActionKind.PATCH: _patch_extras,
}


# --- reassign-owner mapping ----------------------------------------------------------------


def _owner_mapping(src: Source, raw: dict[str, Any], at: KeyPath) -> Mapping[str, str]:
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}  # where each old owner was first mapped, for conflict messages
    if "mapping" in raw:
        found = table(src, raw["mapping"], (*at, "mapping"))
        for old, new in found.items():
            merged[old] = string(src, new, (*at, "mapping", old))
            origin[old] = f"`mapping` of {src.path}"
        _refuse_empty_owner(src, merged, (*at, "mapping"))
    if "mapping_file" in raw:
        file_at: KeyPath = (*at, "mapping_file")
        csv_path = src.path.parent / string(src, raw["mapping_file"], file_at)
        _merge_csv(src, csv_path, file_at, merged, origin)
    if not merged:
        src.fail((*at, "mapping" if "mapping" in raw else "mapping_file"), "maps no owner")
    return MappingProxyType(merged)


def _refuse_empty_owner(src: Source, mapping: Mapping[str, str], at: KeyPath) -> None:
    if "" in mapping:
        src.fail((*at, ""), "an old owner id cannot be empty")


def _merge_csv(
    src: Source, csv_path: Path, at: KeyPath, merged: dict[str, str], origin: dict[str, str]
) -> None:
    for line, old, new in _read_owner_csv(src, csv_path, at):
        if merged.get(old, new) != new:
            # the ids stay out of the message: a mapping file's content is never echoed
            message = f"this old owner maps to another new owner in {origin[old]}"
            raise JobFileError(csv_path, line, "old_owner", message)
        merged[old] = new
        origin.setdefault(old, f"{csv_path}:{line}")


def _read_owner_csv(src: Source, csv_path: Path, at: KeyPath) -> list[tuple[int, str, str]]:
    """Rows (line, old_owner, new_owner) of a mapping CSV; its errors name the CSV and its line.

    Only a regular file of at most MAX_INPUT_BYTES is read (a FIFO is refused at once, never
    waited on), and no error quotes the file's content: it may be any file the job names.
    """
    try:
        data = safefile.read_regular(csv_path, safefile.MAX_INPUT_BYTES)
    except safefile.FileRefused as exc:
        src.fail(at, f"cannot read {csv_path}: {exc.reason.removeprefix('cannot read: ')}")
    try:
        text = data.decode("utf-8-sig")  # spreadsheet exports often start with a BOM
    except UnicodeDecodeError as exc:
        line, column = byte_position(data, exc.start)
        raise JobFileError(csv_path, line, None, f"not valid UTF-8 (at column {column})") from exc
    return _owner_rows(csv_path, _csv_records(csv_path, text))


def _csv_records(csv_path: Path, text: str) -> list[tuple[int, list[str]]]:
    """Each CSV record with the line it ends on (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return [(reader.line_num, record) for record in reader]
    except csv.Error as exc:
        raise JobFileError(csv_path, reader.line_num, None, f"malformed CSV: {exc}") from exc


def _owner_rows(csv_path: Path, records: list[tuple[int, list[str]]]) -> list[tuple[int, str, str]]:
    line, header = records[0] if records else (1, [])
    header = [cell.strip() for cell in header]
    if sorted(header) != ["new_owner", "old_owner"]:
        got = f"{len(header)} column(s) with other names" if header else "an empty line"
        raise JobFileError(
            csv_path, line, None, f"the header must be old_owner,new_owner; got {got}"
        )
    old_col, new_col = header.index("old_owner"), header.index("new_owner")
    rows: list[tuple[int, str, str]] = []
    for line, row in records[1:]:
        if not any(cell.strip() for cell in row):
            continue  # blank lines are harmless, and common at the end of a file
        if len(row) != 2:
            message = f"expected 2 columns (old_owner,new_owner), got {len(row)}"
            raise JobFileError(csv_path, line, None, message)
        old, new = row[old_col].strip(), row[new_col].strip()
        for column, cell in (("old_owner", old), ("new_owner", new)):
            if not cell:
                raise JobFileError(csv_path, line, column, "empty; a user id is needed")
        rows.append((line, old, new))
    return rows


# --- patch ops -----------------------------------------------------------------------------


def _patch_op(src: Source, value: Any, at: KeyPath) -> PatchOp:
    if not isinstance(value, dict):
        src.fail(at, f"expected a table {{ op, path, value }}, got {describe(value)}")
    check_keys(src, value, ("op", "path", "value"), at)
    op = choice(src, value.get("op"), (*at, "op"), PATCH_OPS, "patch op")
    path = choice(src, value.get("path"), (*at, "path"), PATCH_PATHS, "patch path")
    if op == "replace" and "value" not in value:
        src.fail((*at, "value"), f"replace needs a value for {path}")
    if op == "remove":
        if "value" in value:
            src.fail((*at, "value"), "remove takes no value")
        return PatchOp(op, path)
    _check_patch_value(src, path, value["value"], (*at, "value"))
    return PatchOp(op, path, value["value"])


def patch_value_problem(path: str, value: Any) -> str | None:
    """What is wrong with `value` as the JSON value of a replace on `path`, or None.

    The job-file checks, reused for requests read back from a saved plan: one list of types.
    """
    try:
        _check_value_type(_NO_FILE, path, value, ())  # JSON holds no TOML dates: no need to look
    except JobFileError as exc:
        return exc.message
    return None


_NO_FILE = Source(Path("-"), KeyLocator(""))


def _check_patch_value(src: Source, path: str, value: Any, at: KeyPath) -> None:
    if _holds_datetime(value):
        src.fail(at, "TOML dates and times cannot be sent as JSON; quote them as strings")
    _check_value_type(src, path, value, at)


def _check_value_type(src: Source, path: str, value: Any, at: KeyPath) -> None:
    if path in ("/name", "/ownerId"):
        string(src, value, at)
    elif path in ("/description", "/sharePointFolder", "/dataConnectionID"):
        string(src, value, at, allow_empty=True)
    elif path == "/enabled":
        boolean(src, value, at)
    elif path == "/tags":
        _string_list(src, value, at, allowed=None)
    elif path == "/transportChannels":
        _string_list(src, value, at, allowed=TRANSPORT_CHANNELS)
    elif path in ("/scheduleOptions", "/recipients"):
        table(src, value, at)
    elif path == "/templates" and not (
        isinstance(value, list) and all(isinstance(item, dict) for item in value)
    ):
        src.fail(at, f"expected an array of tables, got {describe(value)}")


def _string_list(src: Source, value: Any, at: KeyPath, allowed: Sequence[str] | None) -> None:
    if not isinstance(value, list):
        src.fail(at, f"expected an array of strings, got {describe(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            src.fail((*at, index), f"expected a string, got {describe(item)}")
        if allowed is not None and item not in allowed:
            src.fail((*at, index), f"{json.dumps(item)} is not one of: {', '.join(allowed)}")


def _holds_datetime(value: Any) -> bool:
    if isinstance(value, datetime | date | time):
        return True
    if isinstance(value, dict):
        return any(_holds_datetime(item) for item in value.values())
    return isinstance(value, list) and any(_holds_datetime(item) for item in value)
