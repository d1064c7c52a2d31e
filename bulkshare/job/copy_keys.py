"""The `[copy]` table of a copy job -> a CopySpec: source, `where`, id maps, and the rules for
ids no map names, `enabled` and the source tasks; every error names file, line and key.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bulkshare import safefile
from bulkshare.errors import JobFileError
from bulkshare.job.checks import Source, boolean, byte_position, check_keys, choice, string, table
from bulkshare.job.locate import KeyPath
from bulkshare.job.where import Where
from bulkshare.job.where_keys import parse_where

__all__ = ["COPY_KEYS", "MAP_KINDS", "CopySpec", "EnabledRule", "IdMaps", "Unmapped", "parse_copy"]


class Unmapped(StrEnum):
    """What a copy does with an id that no map names."""

    REFUSE = "refuse"  # the plan is refused, naming every such id
    KEEP = "keep"  # the id is copied as it is
    SKIP = "skip"  # the task is not copied (listed as skipped)


class EnabledRule(StrEnum):
    """The `enabled` a copied task ends with."""

    AS_SOURCE = "as-source"
    DISABLED = "false"


#: map key in the job file -> the kind of id it maps, as plans and errors name it
MAP_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "app_map": "app",
        "user_map": "user",
        "group_map": "group",
        "space_map": "space",
        "data_connection_map": "data connection",
    }
)
COPY_KEYS = ("from", "from_file", "where", *MAP_KINDS, "unmapped", "enabled", "delete_source")
_MAP_HEADER = ["new_id", "old_id"]


@dataclass(frozen=True)
class IdMaps:
    """old id -> new id, per kind of id (the values of MAP_KINDS)."""

    by_kind: Mapping[str, Mapping[str, str]] = field(default_factory=dict, hash=False)

    def get(self, kind: str) -> Mapping[str, str]:
        return self.by_kind.get(kind, {})


@dataclass(frozen=True)
class CopySpec:
    """A validated `[copy]` table."""

    line: int  #: the line of its [copy] header
    where: Where
    maps: IdMaps
    source_tenant: str | None = None  #: `from`: a tenant of the config
    source_file: Path | None = None  #: `from_file`: a `bulkshare export` file
    unmapped: Unmapped = Unmapped.REFUSE
    enabled: EnabledRule = EnabledRule.AS_SOURCE
    delete_source: bool = False


def parse_copy(src: Source, value: Any) -> CopySpec:
    """The `[copy]` table checked whole; JobFileError at its first problem."""
    at: KeyPath = ("copy",)
    raw = table(src, value, at)
    check_keys(src, raw, COPY_KEYS, at)
    tenant, file = _source(src, raw)
    delete_source = "delete_source" in raw and boolean(
        src, raw["delete_source"], (*at, "delete_source")
    )
    if delete_source and file is not None:
        src.fail((*at, "delete_source"), "deletes source tasks, so it needs `from` (a tenant)")
    return CopySpec(
        line=src.locator.line_of(at),
        where=parse_where(src, raw.get("where"), (*at, "where")),
        maps=IdMaps(MappingProxyType(_maps(src, raw))),
        source_tenant=tenant,
        source_file=file,
        unmapped=Unmapped(_rule(src, raw, "unmapped", Unmapped, Unmapped.REFUSE)),
        enabled=_enabled(src, raw),
        delete_source=delete_source,
    )


def _source(src: Source, raw: Mapping[str, Any]) -> tuple[str | None, Path | None]:
    if "from" in raw and "from_file" in raw:
        src.fail(("copy", "from_file"), "give either `from` (a tenant) or `from_file`, not both")
    if "from" in raw:
        return string(src, raw["from"], ("copy", "from")), None
    if "from_file" in raw:
        name = string(src, raw["from_file"], ("copy", "from_file"))
        return None, src.path.parent / name
    src.fail(("copy", "from"), 'missing; name the source: from = "tenant" or from_file = "..."')


def _rule(
    src: Source, raw: Mapping[str, Any], key: str, kind: type[StrEnum], default: StrEnum
) -> str:
    if key not in raw:
        return default.value
    return choice(src, raw[key], ("copy", key), [k.value for k in kind], key.replace("_", " "))


def _enabled(src: Source, raw: Mapping[str, Any]) -> EnabledRule:
    value = raw.get("enabled", EnabledRule.AS_SOURCE.value)
    if value is False:
        return EnabledRule.DISABLED
    if value == EnabledRule.AS_SOURCE.value:
        return EnabledRule.AS_SOURCE
    src.fail(("copy", "enabled"), 'expected "as-source" or false')


def _maps(src: Source, raw: Mapping[str, Any]) -> dict[str, Mapping[str, str]]:
    found: dict[str, Mapping[str, str]] = {}
    for key, kind in MAP_KINDS.items():
        if key in raw:
            found[kind] = MappingProxyType(_one_map(src, raw[key], ("copy", key)))
    return found


def _one_map(src: Source, value: Any, at: KeyPath) -> dict[str, str]:
    if isinstance(value, dict):
        mapped = {old: string(src, new, (*at, old)) for old, new in value.items()}
        if "" in mapped:
            src.fail((*at, ""), "an old id cannot be empty")
        return mapped
    if isinstance(value, str) and value:
        return _csv_map(src, src.path.parent / value, at)
    src.fail(at, 'expected a CSV file name ("maps/apps.csv") or an inline table {old = "new"}')


def _csv_map(src: Source, path: Path, at: KeyPath) -> dict[str, str]:
    """old_id -> new_id from a CSV file: a regular file of at most MAX_INPUT_BYTES, whose
    content no error quotes (a job may name any file)."""
    try:
        data = safefile.read_regular(path, safefile.MAX_INPUT_BYTES)
    except safefile.FileRefused as exc:
        src.fail(at, f"cannot read {path}: {exc.reason.removeprefix('cannot read: ')}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = byte_position(data, exc.start)
        raise JobFileError(path, line, None, f"not valid UTF-8 (at column {column})") from exc
    return _map_rows(path, _records(path, text))


def _records(path: Path, text: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return [(reader.line_num, record) for record in reader]
    except csv.Error as exc:
        raise JobFileError(path, reader.line_num, None, f"malformed CSV: {exc}") from exc


def _map_rows(path: Path, records: list[tuple[int, list[str]]]) -> dict[str, str]:
    line, header = records[0] if records else (1, [])
    header = [cell.strip() for cell in header]
    if sorted(header) != _MAP_HEADER:
        got = f"{len(header)} column(s) with other names" if header else "an empty line"
        raise JobFileError(path, line, None, f"the header must be old_id,new_id; got {got}")
    old_col, new_col = header.index("old_id"), header.index("new_id")
    mapped: dict[str, str] = {}
    for line, row in records[1:]:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            message = f"expected 2 columns (old_id,new_id), got {len(row)}"
            raise JobFileError(path, line, None, message)
        old, new = row[old_col].strip(), row[new_col].strip()
        for column, cell in (("old_id", old), ("new_id", new)):
            if not cell:
                raise JobFileError(path, line, column, "empty; an id is needed")
        if mapped.get(old, new) != new:
            raise JobFileError(path, line, "old_id", "this old id maps to another new id above")
        mapped[old] = new
    return mapped


def describe_spec(spec: CopySpec) -> str:
    """The source as a person reads it."""
    if spec.source_tenant is not None:
        return f"tenant {spec.source_tenant}"
    return f"export file {json.dumps(str(spec.source_file))}"
