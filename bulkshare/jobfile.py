"""Job files: TOML -> Job, checked completely before any request is sent.

Every refusal is a JobFileError naming the file, the 1-based line and the dotted key.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

from bulkshare.errors import JobFileError
from bulkshare.where import Where

__all__ = ["ActionKind", "Job", "KeyLocator", "Operation", "PatchOp", "load_job"]

KeyPath = tuple[str | int, ...]

MAX_LIST_ITEMS = 10_000
TASK_TYPES = ("chart-monitoring", "chart-sharing", "sheet-sharing", "template-sharing")
STATUS_CODES = (
    "CHART_NOT_FOUND", "APP_NOT_FOUND", "STORY_NOT_FOUND", "SHEET_NOT_FOUND",
    "ENGINE_POD_NOT_AVAILABLE", "APP_FORBIDDEN", "CHART_TYPE_NOT_ALLOWED", "FAILED", "DELETING",
    "IN_PROGRESS", "VALID", "MAX_FAILURES_REACHED", "BOOKMARK_NOT_FOUND", "CANCELLING",
    "CANCELLED", "REPORTING_CONSUMPTION_EXCEEDED", "REPORTING_CAPABILITY_NOT_FOUND",
    "REPORTING_DAILY_QUOTA_EXCEEDED",
)  # fmt: skip
TASK_ERRORS = (
    "OWNER_DISABLED", "OWNER_ACCESS", "OWNER_LICENSE", "APP_DELETED", "NO_RECIPIENTS",
    "PARTIAL_ACCESS", "ORPHAN", "PARTIAL_SENT", "FATAL_SENT_ERROR", "SECTION_ACCESS_MODIFIED",
    "INVALID_DISTRIBUTION_LIST", "MAX_DL_RECIPIENTS_LIMIT_REACHED", "TEMPLATE_NOT_FOUND",
    "REPORTING_BOOKMARK_NOT_FOUND", "DATA_CONNECTION_NOT_FOUND", "INVALID_SHAREPOINT_DIRECTORY",
    "GENERIC_FILE_UPLOAD_ERROR", "DISABLED_DUE_TO_OWNERSHIP_CHANGE",
    "REPORTING_CONSUMPTION_EXCEEDED", "REPORTING_CAPABILITY_NOT_FOUND", "EXECUTION_TIME_OUT",
    "OWNER_INSUFFICIENT_PERMISSIONS", "MAX_UNIQUE_REPORTS_LIMIT_REACHED",
    "MISSING_DISTRIBUTION_LIST", "SECTION_ACCESS_NOT_SUPPORTED", "REPORTING_DAILY_QUOTA_EXCEEDED",
    "EMAIL_DELIVERY_FAILURE",
)  # fmt: skip
OWNER_STATUSES = ("active", "invited", "disabled", "deleted", "provisioned")
PATCH_OPS = ("replace", "remove")
PATCH_PATHS = (
    "/name", "/tags", "/ownerId", "/enabled", "/description", "/scheduleOptions", "/templates",
    "/recipients", "/recipient", "/sharePointFolder", "/dataConnectionID", "/transportChannels",
    "/bookmarkId",
)  # fmt: skip
TRANSPORT_CHANNELS = ("email", "sharepoint")
WHERE_KEYS = (
    "all", "ids", "owner", "owner_name", "app_id", "type", "status", "task_errors", "enabled",
    "tags", "name", "not_viewed_for_days", "owner_status",
)  # fmt: skip
_JOB_NAME = re.compile(r"[a-z0-9-]+")


class ActionKind(StrEnum):
    """What an operation does to each task its `where` selects."""

    DELETE = "delete"  # DELETE /{id}; a 404 counts as done
    DISABLE = "disable"  # PATCH /enabled false
    ENABLE = "enable"  # PATCH /enabled true
    REASSIGN_OWNER = "reassign-owner"  # PATCH /ownerId, from `to` or an old->new mapping
    TAG = "tag"  # PATCH /tags with the listed tags added
    UNTAG = "untag"  # PATCH /tags with the listed tags removed
    EXECUTE = "execute"  # POST /actions/execute
    CANCEL = "cancel"  # POST /{id}/actions/cancel
    PATCH = "patch"  # PATCH with the operation's own `ops`


_ACTION_KEYS: dict[ActionKind, tuple[str, ...]] = {
    ActionKind.REASSIGN_OWNER: ("to", "mapping", "mapping_file", "enable"),
    ActionKind.TAG: ("tags",),
    ActionKind.UNTAG: ("tags",),
    ActionKind.PATCH: ("ops",),
}


@dataclass(frozen=True)
class PatchOp:
    """One JSON-Patch entry of a `patch` operation."""

    op: str  #: "replace" or "remove"
    path: str  #: one of PATCH_PATHS
    value: Any = field(default=None, hash=False)  #: absent (None) for "remove"


@dataclass(frozen=True)
class Operation:
    """One [[operations]] entry: an action applied to the tasks `where` selects."""

    index: int  #: 0-based position in the file
    line: int  #: line of its [[operations]] header
    action: ActionKind
    where: Where
    to: str | None = None  #: reassign-owner: the one new owner
    mapping: Mapping[str, str] | None = field(default=None, hash=False)  #: reassign: old -> new
    enable: bool = False  #: reassign-owner: also set /enabled true in the same PATCH
    tags: tuple[str, ...] = ()  #: tag / untag
    ops: tuple[PatchOp, ...] = ()  #: patch


@dataclass(frozen=True)
class Job:
    """A whole job file, validated."""

    name: str
    description: str
    max_changes: int | None  #: apply refuses a plan with more changes than this
    operations: tuple[Operation, ...]
    path: Path
    source_sha256: str  #: hex SHA-256 of the file's bytes, so a plan can tell the job changed


def load_job(path: Path | str) -> Job:
    """Read and validate a job file; raise JobFileError at the first problem."""
    path = Path(path)
    data = _read_bytes(path)
    text = _decode(path, data)
    doc = _parse_toml(path, text)
    src = _Source(path, KeyLocator(text))
    return _build_job(src, doc, hashlib.sha256(data).hexdigest())


# --- reading -------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise JobFileError(path, None, None, f"cannot read: {exc.strerror or exc}") from exc


def _decode(path: Path, data: bytes) -> str:
    try:
        # utf-8-sig: editors on Windows like to prepend a BOM, which tomllib rejects.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(data, exc.start)
        message = f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column})"
        raise JobFileError(path, line, None, message) from exc


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return line, column


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


# --- locating keys in the source -----------------------------------------------------------

_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_KEY_PART = re.compile(_KEY)
_KEY_LINE = re.compile(rf"\s*({_DOTTED})\s*=")
_HEADER_LINE = re.compile(rf"\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")


@dataclass(frozen=True)
class _Mark:
    path: KeyPath  #: absolute key path, array-of-tables indices resolved
    line: int
    value_at: int | None  #: text offset just after "=" for a key; None for a [table] header


class KeyLocator:
    """Finds the line of a key path such as ("operations", 2, "where", "owner") in TOML text.

    tomllib reports no positions for a valid document, so this re-reads the text line by line:
    [tables], [[arrays of tables]], dotted keys and, inside an inline array, its N-th element.
    A key it cannot find falls back to its nearest located parent, and then to line 1.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._marks = _scan_marks(text)

    def line_of(self, path: Sequence[str | int]) -> int:
        """The line defining `path`, else that of its longest located prefix, else 1."""
        wanted = tuple(path)
        best: _Mark | None = None
        for mark in self._marks:
            if wanted[: len(mark.path)] == mark.path and len(mark.path) > _depth(best):
                best = mark
        if best is None:
            return 1
        rest = wanted[len(best.path) :]
        if best.value_at is not None and rest and isinstance(rest[0], int):
            element = _element_offset(self._text, best.value_at, rest[0])
            if element is not None:
                return self._text.count("\n", 0, element) + 1
        return best.line


def _depth(mark: _Mark | None) -> int:
    return -1 if mark is None else len(mark.path)


def _scan_marks(text: str) -> list[_Mark]:
    marks: list[_Mark] = []
    table: KeyPath = ()
    counters: dict[KeyPath, int] = {}
    offset = 0
    open_string: str | None = None  # delimiter of a multi-line string we are inside
    # Only "\n" ends a line, as for tomllib; str.splitlines() would also split on \f, \x1c...
    for number, line in enumerate(text.split("\n"), start=1):
        start, offset = offset, offset + len(line) + 1
        if open_string is not None:
            if line.count(open_string) % 2 == 1:
                open_string = None
        elif header := _HEADER_LINE.match(line):
            is_array = header[1] == "[["
            table = _table_path(_key_parts(header[2]), is_array, counters)
            if is_array and table[-1] == 0:
                marks.append(_Mark(table[:-1], number, None))  # the array itself starts here
            marks.append(_Mark(table, number, None))
        elif key := _KEY_LINE.match(line):
            marks.append(_Mark(table + _key_parts(key[1]), number, start + key.end()))
            open_string = _opens_multiline_string(line[key.end() :])
    return marks


def _key_parts(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _KEY_PART.findall(dotted))


def _table_path(parts: tuple[str, ...], is_array: bool, counters: dict[KeyPath, int]) -> KeyPath:
    """Absolute path of a table header; arrays of tables get the index of their latest entry."""
    path: list[str | int] = []
    for position, part in enumerate(parts):
        path.append(part)
        key = tuple(path)
        if is_array and position == len(parts) - 1:
            counters[key] = counters.get(key, -1) + 1
        if key in counters:
            path.append(counters[key])
    return tuple(path)


def _opens_multiline_string(value: str) -> str | None:
    for delimiter in ('"""', "'''"):
        if value.count(delimiter) % 2 == 1:
            return delimiter
    return None


def _element_offset(text: str, at: int, index: int) -> int | None:
    """Offset where element `index` of the inline array starting at `at` begins, if any."""
    depth, count, expecting = 0, -1, False
    position = at
    while position < len(text):
        char = text[position]
        if depth == 0 and char != "[":
            if not char.isspace():
                return None  # a scalar, not an array
            position += 1
            continue
        if depth == 1 and expecting and char not in " \t\r\n,#]":
            count, expecting = count + 1, False
            if count == index:
                return position
        if char == "#":
            position = _end_of_line(text, position)
            continue
        if char in "\"'":
            position = _end_of_string(text, position)
            continue
        if char in "[{":
            depth += 1
            expecting = expecting or depth == 1
        elif char in "]}":
            depth -= 1
            if depth <= 0:
                return None
        elif char == "," and depth == 1:
            expecting = True
        position += 1
    return None


def _end_of_line(text: str, position: int) -> int:
    end = text.find("\n", position)
    return len(text) if end < 0 else end


def _end_of_string(text: str, position: int) -> int:
    for delimiter in ('"""', "'''"):
        if text.startswith(delimiter, position):
            end = text.find(delimiter, position + 3)
            return len(text) if end < 0 else end + 3
    quote, position = text[position], position + 1
    while position < len(text) and text[position] not in (quote, "\n"):
        position += 2 if quote == '"' and text[position] == "\\" else 1
    return position + 1


# --- validation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """The file being validated, so that every check can fail with file, line and key."""

    path: Path
    locator: KeyLocator

    def fail(self, key: KeyPath, message: str) -> NoReturn:
        raise JobFileError(self.path, self.locator.line_of(key), _dotted(key), message)


def _dotted(key: KeyPath) -> str:
    text = ""
    for part in key:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            bare = re.fullmatch(r"[A-Za-z0-9_-]+", part) is not None
            text += ("." if text else "") + (part if bare else json.dumps(part))
    return text


def _build_job(src: _Source, doc: dict[str, Any], sha256: str) -> Job:
    _check_keys(src, doc, ("job", "operations"), ())
    if "job" not in doc:
        src.fail(("job",), 'missing; start the file with a [job] table holding name = "..."')
    job = _table(src, doc["job"], ("job",))
    _check_keys(src, job, ("name", "description", "max_changes"), ("job",))
    return Job(
        name=_job_name(src, job.get("name")),
        description=_optional_string(src, job.get("description"), ("job", "description")),
        max_changes=_optional_positive(src, job.get("max_changes"), ("job", "max_changes")),
        operations=_operations(src, doc.get("operations")),
        path=src.path,
        source_sha256=sha256,
    )


def _job_name(src: _Source, value: Any) -> str:
    at: KeyPath = ("job", "name")
    if value is None:
        src.fail(at, 'missing; give the job a name such as name = "disable-orphaned"')
    name = _string(src, value, at)
    if not _JOB_NAME.fullmatch(name):
        src.fail(at, f"{json.dumps(name)} may only use a-z, 0-9 and '-'")
    return name


def _optional_string(src: _Source, value: Any, at: KeyPath) -> str:
    return "" if value is None else _string(src, value, at, allow_empty=True)


def _optional_positive(src: _Source, value: Any, at: KeyPath) -> int | None:
    return None if value is None else _integer(src, value, at, minimum=1)


def _operations(src: _Source, value: Any) -> tuple[Operation, ...]:
    at: KeyPath = ("operations",)
    if value is None:
        src.fail(at, "missing; add at least one [[operations]] table")
    if not isinstance(value, list):
        src.fail(at, f"expected an array of tables ([[operations]]), got {_describe(value)}")
    if not value:
        src.fail(at, "empty; add at least one [[operations]] table")
    tables = [_table(src, raw, (*at, index)) for index, raw in enumerate(value)]
    return tuple(_operation(src, index, raw) for index, raw in enumerate(tables))


def _operation(src: _Source, index: int, raw: dict[str, Any]) -> Operation:
    at: KeyPath = ("operations", index)
    action = _action(src, raw.get("action"), (*at, "action"))
    allowed = ("action", "where", *_ACTION_KEYS.get(action, ()))
    _check_keys(src, raw, allowed, at, context=f" for action {json.dumps(action.value)}")
    operation = Operation(
        index=index,
        line=src.locator.line_of(at),
        action=action,
        where=_where(src, raw.get("where"), (*at, "where")),
    )
    extras = _EXTRAS.get(action)
    return operation if extras is None else extras(src, raw, at, operation)


def _action(src: _Source, value: Any, at: KeyPath) -> ActionKind:
    valid = [kind.value for kind in ActionKind]
    if value is None:
        src.fail(at, f"missing; one of: {', '.join(valid)}")
    name = _string(src, value, at)
    if name not in valid:
        hint = _hint(name, valid)
        src.fail(at, f"unknown action {json.dumps(name)}{hint}; valid: {', '.join(valid)}")
    return ActionKind(name)


def _check_keys(
    src: _Source, table: Mapping[str, Any], allowed: Sequence[str], at: KeyPath, context: str = ""
) -> None:
    for key in table:
        if key not in allowed:
            listed = ", ".join(allowed) if allowed else "none"
            message = (
                f"unknown key {json.dumps(key)}{context}{_hint(key, allowed)}; allowed: {listed}"
            )
            src.fail((*at, key), message)


def _hint(word: str, choices: Sequence[str]) -> str:
    """A ' (did you mean ...?)' suffix naming the closest choice, or ''."""
    folded = {choice.casefold(): choice for choice in choices}
    close = difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.6)
    return f" (did you mean {json.dumps(folded[close[0]])}?)" if close else ""


# --- scalar checks -------------------------------------------------------------------------


def _table(src: _Source, value: Any, at: KeyPath) -> dict[str, Any]:
    if value is None:
        src.fail(at, "missing table")
    if not isinstance(value, dict):
        src.fail(at, f"expected a table, got {_describe(value)}")
    return value


def _string(src: _Source, value: Any, at: KeyPath, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        src.fail(at, f"expected a string, got {_describe(value)}")
    if not value and not allow_empty:
        src.fail(at, "empty string")
    return value


def _boolean(src: _Source, value: Any, at: KeyPath) -> bool:
    if not isinstance(value, bool):
        src.fail(at, f"expected a boolean (true or false), got {_describe(value)}")
    return value


def _integer(src: _Source, value: Any, at: KeyPath, *, minimum: int) -> int:
    # bool is a subclass of int in Python, but `max_changes = true` is a mistake in TOML.
    if isinstance(value, bool) or not isinstance(value, int):
        src.fail(at, f"expected an integer, got {_describe(value)}")
    if value < minimum:
        src.fail(at, f"must be at least {minimum}, got {value}")
    return value


def _string_items(src: _Source, value: Any, at: KeyPath) -> list[tuple[KeyPath, str]]:
    """A string, or a non-empty list of non-empty strings, each with its own key path."""
    if isinstance(value, str):
        return [(at, _string(src, value, at))]
    if not isinstance(value, list):
        src.fail(at, f"expected a string or an array of strings, got {_describe(value)}")
    if not value:
        src.fail(at, "empty array; give at least one value")
    if len(value) > MAX_LIST_ITEMS:
        src.fail(at, f"{len(value)} items; at most {MAX_LIST_ITEMS:,} are accepted")
    return [((*at, i), _string(src, item, (*at, i))) for i, item in enumerate(value)]


def _describe(value: Any) -> str:
    """A value's TOML type, with the value itself when it is short."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'float'} {value}"
    if isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
        return f"string {shown if len(shown) <= 40 else shown[:37] + '...'}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return f"date/time {value.isoformat()}"
    return type(value).__name__


# --- where ---------------------------------------------------------------------------------

_Parse = Callable[[_Source, Any, KeyPath], Any]


def _where(src: _Source, value: Any, at: KeyPath) -> Where:
    on_purpose = "to select every task on purpose, use `where.all = true`"
    if value is None:
        src.fail(at, f"missing; say which tasks this operation touches ({on_purpose})")
    table = _table(src, value, at)
    if not table:
        src.fail(at, f"empty; an empty filter is refused ({on_purpose})")
    _check_keys(src, table, WHERE_KEYS, at)
    fields = {key: _WHERE_FIELDS[key](src, item, (*at, key)) for key, item in table.items()}
    return Where(**fields)


def _all_true(src: _Source, value: Any, at: KeyPath) -> bool:
    if _boolean(src, value, at) is not True:
        src.fail(at, "only `all = true` is meaningful; remove the key instead")
    return True


def _one_or_more(allowed: Sequence[str] | None, what: str) -> _Parse:
    """A parser for a string or a list of strings, each among `allowed` when given."""

    def parse(src: _Source, value: Any, at: KeyPath) -> frozenset[str]:
        items = _string_items(src, value, at)
        for item_at, item in items:
            if allowed is not None and item not in allowed:
                hint = _hint(item, allowed)
                quoted = json.dumps(item)
                src.fail(item_at, f"unknown {what} {quoted}{hint}; allowed: {', '.join(allowed)}")
        return frozenset(item for _, item in items)

    return parse


def _globs(src: _Source, value: Any, at: KeyPath) -> tuple[str, ...]:
    items = _string_items(src, value, at)
    for item_at, glob in items:
        if problem := _glob_problem(glob):
            src.fail(item_at, f"bad glob {json.dumps(glob)}: {problem}")
    return tuple(dict.fromkeys(glob for _, glob in items))


def _glob_problem(glob: str) -> str | None:
    """Why fnmatch would misread `glob`: it silently treats a stray bracket as a literal."""
    position = 0
    while position < len(glob):
        char = glob[position]
        if char == "]":
            return f"']' at position {position + 1} closes no '['"
        if char == "[":
            # As in fnmatch, a "]" right after "[" or "[!" is a member, not the end of the set.
            end = position + 1 + (glob[position + 1 : position + 2] == "!")
            close = glob.find("]", end + 1)
            if close < 0:
                return f"'[' at position {position + 1} is never closed"
            position = close
        position += 1
    return None


def _non_negative(src: _Source, value: Any, at: KeyPath) -> int:
    return _integer(src, value, at, minimum=0)


_WHERE_FIELDS: dict[str, _Parse] = {
    "all": _all_true,
    "ids": _one_or_more(None, "id"),
    "owner": _one_or_more(None, "owner"),
    "owner_name": _one_or_more(None, "owner name"),
    "app_id": _one_or_more(None, "app id"),
    "type": _one_or_more(TASK_TYPES, "task type"),
    "status": _one_or_more(STATUS_CODES, "status"),
    "task_errors": _one_or_more(TASK_ERRORS, "task error"),
    "enabled": _boolean,
    "tags": _one_or_more(None, "tag"),
    "name": _globs,
    "not_viewed_for_days": _non_negative,
    "owner_status": _one_or_more(OWNER_STATUSES, "owner status"),
}


# --- per-action extra keys -----------------------------------------------------------------

_Extras = Callable[[_Source, dict[str, Any], KeyPath, Operation], Operation]


def _reassign_extras(src: _Source, raw: dict[str, Any], at: KeyPath, op: Operation) -> Operation:
    has_mapping = "mapping" in raw or "mapping_file" in raw
    if "to" in raw and has_mapping:
        src.fail((*at, "to"), "give either `to` or `mapping`/`mapping_file`, not both")
    if "to" not in raw and not has_mapping:
        need = 'needs the new owner: `to = "user-id"`, or `mapping` and/or `mapping_file`'
        src.fail((*at, "to"), f"reassign-owner {need}")
    enable = "enable" in raw and _boolean(src, raw["enable"], (*at, "enable"))
    if "to" in raw:
        return replace(op, to=_string(src, raw["to"], (*at, "to")), enable=enable)
    return replace(op, mapping=_owner_mapping(src, raw, at), enable=enable)


def _tag_extras(src: _Source, raw: dict[str, Any], at: KeyPath, op: Operation) -> Operation:
    key: KeyPath = (*at, "tags")
    if "tags" not in raw:
        src.fail(key, f'{op.action.value} needs `tags = ["..."]`')
    if not isinstance(raw["tags"], list):
        src.fail(key, f"expected an array of strings, got {_describe(raw['tags'])}")
    tags = _string_items(src, raw["tags"], key)
    return replace(op, tags=tuple(dict.fromkeys(tag for _, tag in tags)))


def _patch_extras(src: _Source, raw: dict[str, Any], at: KeyPath, op: Operation) -> Operation:
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


_EXTRAS: dict[ActionKind, _Extras] = {
    ActionKind.REASSIGN_OWNER: _reassign_extras,
    ActionKind.TAG: _tag_extras,
    ActionKind.UNTAG: _tag_extras,
    ActionKind.PATCH: _patch_extras,
}


# --- reassign-owner mapping ----------------------------------------------------------------


def _owner_mapping(src: _Source, raw: dict[str, Any], at: KeyPath) -> Mapping[str, str]:
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}  # where each old owner was first mapped, for conflict messages
    if "mapping" in raw:
        table = _table(src, raw["mapping"], (*at, "mapping"))
        for old, new in table.items():
            merged[old] = _string(src, new, (*at, "mapping", old))
            origin[old] = f"`mapping` of {src.path}"
        _refuse_empty_owner(src, merged, (*at, "mapping"))
    if "mapping_file" in raw:
        file_at: KeyPath = (*at, "mapping_file")
        csv_path = src.path.parent / _string(src, raw["mapping_file"], file_at)
        _merge_csv(src, csv_path, file_at, merged, origin)
    if not merged:
        src.fail((*at, "mapping" if "mapping" in raw else "mapping_file"), "maps no owner")
    return MappingProxyType(merged)


def _refuse_empty_owner(src: _Source, mapping: Mapping[str, str], at: KeyPath) -> None:
    if "" in mapping:
        src.fail((*at, ""), "an old owner id cannot be empty")


def _merge_csv(
    src: _Source, csv_path: Path, at: KeyPath, merged: dict[str, str], origin: dict[str, str]
) -> None:
    for line, old, new in _read_owner_csv(src, csv_path, at):
        if merged.get(old, new) != new:
            message = f"{json.dumps(old)} maps to {json.dumps(new)} here but to "
            message += f"{json.dumps(merged[old])} in {origin[old]}"
            raise JobFileError(csv_path, line, "old_owner", message)
        merged[old] = new
        origin.setdefault(old, f"{csv_path}:{line}")


def _read_owner_csv(src: _Source, csv_path: Path, at: KeyPath) -> list[tuple[int, str, str]]:
    """Rows (line, old_owner, new_owner) of a mapping CSV; its errors name the CSV and its line."""
    try:
        data = csv_path.read_bytes()
    except OSError as exc:
        src.fail(at, f"cannot read {csv_path}: {exc.strerror or exc}")
    try:
        text = data.decode("utf-8-sig")  # spreadsheet exports often start with a BOM
    except UnicodeDecodeError as exc:
        line, column = _byte_position(data, exc.start)
        message = f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column})"
        raise JobFileError(csv_path, line, None, message) from exc
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
        got = ",".join(header) or "nothing"
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


def _patch_op(src: _Source, value: Any, at: KeyPath) -> PatchOp:
    if not isinstance(value, dict):
        src.fail(at, f"expected a table {{ op, path, value }}, got {_describe(value)}")
    _check_keys(src, value, ("op", "path", "value"), at)
    op = _choice(src, value.get("op"), (*at, "op"), PATCH_OPS, "patch op")
    path = _choice(src, value.get("path"), (*at, "path"), PATCH_PATHS, "patch path")
    if op == "replace" and "value" not in value:
        src.fail((*at, "value"), f"replace needs a value for {path}")
    if op == "remove":
        if "value" in value:
            src.fail((*at, "value"), "remove takes no value")
        return PatchOp(op, path)
    _check_patch_value(src, path, value["value"], (*at, "value"))
    return PatchOp(op, path, value["value"])


def _choice(src: _Source, value: Any, at: KeyPath, allowed: Sequence[str], what: str) -> str:
    if value is None:
        src.fail(at, f"missing; one of: {', '.join(allowed)}")
    text = _string(src, value, at)
    if text not in allowed:
        hint = _hint(text, allowed)
        src.fail(at, f"unknown {what} {json.dumps(text)}{hint}; allowed: {', '.join(allowed)}")
    return text


def _check_patch_value(src: _Source, path: str, value: Any, at: KeyPath) -> None:
    if _holds_datetime(value):
        src.fail(at, "TOML dates and times cannot be sent as JSON; quote them as strings")
    if path in ("/name", "/ownerId"):
        _string(src, value, at)
    elif path in ("/description", "/sharePointFolder", "/dataConnectionID"):
        _string(src, value, at, allow_empty=True)
    elif path == "/enabled":
        _boolean(src, value, at)
    elif path == "/tags":
        _string_list(src, value, at, allowed=None)
    elif path == "/transportChannels":
        _string_list(src, value, at, allowed=TRANSPORT_CHANNELS)
    elif path in ("/scheduleOptions", "/recipients"):
        _table(src, value, at)
    elif path == "/templates" and not (
        isinstance(value, list) and all(isinstance(item, dict) for item in value)
    ):
        src.fail(at, f"expected an array of tables, got {_describe(value)}")


def _string_list(src: _Source, value: Any, at: KeyPath, allowed: Sequence[str] | None) -> None:
    if not isinstance(value, list):
        src.fail(at, f"expected an array of strings, got {_describe(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            src.fail((*at, index), f"expected a string, got {_describe(item)}")
        if allowed is not None and item not in allowed:
            src.fail((*at, index), f"{json.dumps(item)} is not one of: {', '.join(allowed)}")


def _holds_datetime(value: Any) -> bool:
    if isinstance(value, datetime | date | time):
        return True
    if isinstance(value, dict):
        return any(_holds_datetime(item) for item in value.values())
    return isinstance(value, list) and any(_holds_datetime(item) for item in value)
