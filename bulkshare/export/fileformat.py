"""The `bulkshare-export/1` file, line by line: a header, one task document per line, a trailer.

The records here are what the writer puts on those lines and what the reader hands back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

import orjson

from bulkshare.errors import ExportFileError

__all__ = [
    "BUILTIN_SIM_URL",
    "DROPPED_FIELDS",
    "EXPORT_FORMAT",
    "ExportHeader",
    "ExportTrailer",
    "is_trailer",
    "json_line",
    "task_line",
]

EXPORT_FORMAT = "bulkshare-export/1"
#: the header's `url` for the built-in simulated tenant, which has no URL of its own
BUILTIN_SIM_URL = "builtin:sim"
#: task fields left out of an export: `links` only names the source tenant's own URLs
DROPPED_FIELDS = frozenset({"links"})

_HEX64 = re.compile(r"[0-9a-f]{64}")


def json_line(doc: Mapping[str, Any]) -> bytes:
    """One JSON object on one line; orjson escapes every newline inside strings."""
    return orjson.dumps(doc) + b"\n"


def task_line(task: Mapping[str, Any]) -> bytes:
    """A task document as the list endpoint gave it, less DROPPED_FIELDS, as one line."""
    if DROPPED_FIELDS.isdisjoint(task):
        return json_line(task)  # no copy: the common case once the lister has dropped them
    return json_line({k: v for k, v in task.items() if k not in DROPPED_FIELDS})


def is_trailer(doc: object) -> TypeGuard[dict[str, Any]]:
    """The trailer is the one object with `"trailer": true` and no task `id`."""
    return isinstance(doc, dict) and doc.get("trailer") is True and "id" not in doc


@dataclass(frozen=True)
class ExportHeader:
    """Line 1: where and when the tasks were read, and which of them (job and where)."""

    tenant: str  #: the tenant's name in the config
    url: str  #: the tenant's URL, or BUILTIN_SIM_URL
    exported_at: str  #: UTC RFC 3339, when the listing began
    job: str | None = None  #: the job whose `where` selected the tasks; None: every task
    where: str | None = None  #: that selection, readable; None: every task
    simulated: bool = False  #: True for the built-in simulator
    format: str = EXPORT_FORMAT

    @property
    def exported_time(self) -> datetime:
        """`exported_at` as an aware datetime."""
        return datetime.fromisoformat(self.exported_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "tenant": self.tenant,
            "url": self.url,
            "simulated": self.simulated,
            "exported_at": self.exported_at,
            "job": self.job,
            "where": self.where,
        }

    def describe(self) -> str:
        """One line for people; text from the file is shown escaped (repr)."""
        sim = ", SIMULATED" if self.simulated else ""
        what = f"job {self.job!r}" if self.job else "every task"
        return (
            f"{self.format} of tenant {self.tenant!r} ({self.url!r}{sim}), "
            f"exported {self.exported_at!r}, {what}"
        )

    @classmethod
    def from_json(cls, doc: object, where: str) -> ExportHeader:
        """The header of line 1; ExportFileError naming `where` if it is not one."""
        if not isinstance(doc, dict) or "format" not in doc:
            raise ExportFileError(f"{where}: not a bulkshare export (no header with a format)")
        if doc["format"] != EXPORT_FORMAT:
            raise ExportFileError(f"{where}: format {_short(doc['format'])} is not {EXPORT_FORMAT}")
        fields = {k: doc.get(k) for k in ("tenant", "url", "exported_at")}
        bad = [k for k, v in fields.items() if not isinstance(v, str) or not v]
        bad += [k for k in ("job", "where") if not isinstance(doc.get(k), str | None)]
        if not isinstance(doc.get("simulated", False), bool):
            bad.append("simulated")
        if bad:
            raise ExportFileError(f"{where}: header field {bad[0]!r} is missing or wrong")
        url = str(fields["url"])
        return cls(
            str(fields["tenant"]),
            url,
            str(fields["exported_at"]),
            doc.get("job"),
            doc.get("where"),
            bool(doc.get("simulated", url == BUILTIN_SIM_URL)),
        )


@dataclass(frozen=True)
class ExportTrailer:
    """The last line: how many task lines there are and the SHA-256 of their bytes."""

    count: int
    sha256: str  #: hex SHA-256 of the task lines' bytes, each with its "\n"
    #: hex SHA-256 of the header line's bytes; checked when present, so an edited header is
    #: refused too (the contract names only count and sha256)
    header_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"trailer": True, "count": self.count, "sha256": self.sha256}
        if self.header_sha256 is not None:
            doc["header_sha256"] = self.header_sha256
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], where: str) -> ExportTrailer:
        count, digest, head = doc.get("count"), doc.get("sha256"), doc.get("header_sha256")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ExportFileError(f"{where}: trailer count is not a number of tasks")
        if not _is_hex64(digest) or (head is not None and not _is_hex64(head)):
            raise ExportFileError(f"{where}: trailer SHA-256 is not 64 hex digits")
        return cls(count, str(digest), head)


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
