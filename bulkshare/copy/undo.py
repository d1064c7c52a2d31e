"""What undo makes of creates and deletes: a deleted task is recreated from the document its
delete record kept (through the copy path: new id, same definition, owner and enabled), and a
copy is undone by deleting the task it created.

A task that was already DELETING when it was deleted is not restorable, and neither is a delete
recorded without its document (runs from before documents were kept).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bulkshare.copy.body import app_of, map_task
from bulkshare.copy.marker import marker_for
from bulkshare.copy.planner import RESTORE_ACTION
from bulkshare.plan.change import IDENTITY_FIELDS, Change
from bulkshare.vocab import TASKS_PATH, task_path

__all__ = ["NotRestorable", "creates_or_deletes", "restore_change", "undo_create_or_delete"]


@dataclass(frozen=True)
class NotRestorable:
    """A change undo cannot reverse, and why."""

    task_id: str
    reason: str


@dataclass
class _Undone:
    changes: list[Change] = field(default_factory=list)
    not_restorable: list[NotRestorable] = field(default_factory=list)


class _Record(Protocol):
    """The fields of an applied change record that undo reads (a ChangeRecord's)."""

    @property
    def task_id(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def after(self) -> Mapping[str, Any] | None: ...
    @property
    def task(self) -> Mapping[str, Any]: ...
    @property
    def target_id(self) -> str | None: ...
    @property
    def document(self) -> Mapping[str, Any] | None: ...


def creates_or_deletes(record: _Record) -> bool:
    """Whether undo of this applied record is this module's: a copy's, or a delete's."""
    return bool(
        record.method == "DELETE" or (record.method == "POST" and record.path == TASKS_PATH)
    )


def undo_create_or_delete(
    record: _Record, marker_source: str, now: datetime
) -> tuple[list[Change], list[NotRestorable]]:
    """A copy's created task deleted, and a deleted task (a delete's, or a re-pointing copy's
    source) recreated from its kept document; what cannot be, with why."""
    undone = _Undone()
    if record.method == "POST":
        _undo_create(undone, record)
    if record.method == "DELETE" or record.document is not None:
        _restore(undone, record, marker_source, now)
    return undone.changes, undone.not_restorable


def _undo_create(undone: _Undone, record: _Record) -> None:
    if record.target_id is None:
        undone.not_restorable.append(NotRestorable(record.task_id, "its copy's id is unknown"))
        return
    after = record.after or {}
    before = {k: after[k] for k in ("owner", "enabled") if k in after}
    ident = {**record.task, "copyOf": record.task_id}
    path = task_path(record.target_id)
    undone.changes.append(
        Change(record.target_id, ("delete",), "DELETE", path, None, before, {}, ident)
    )


def _restore(undone: _Undone, record: _Record, marker_source: str, now: datetime) -> None:
    doc = record.document
    if doc is None:
        reason = "deleted without its document kept (a run from before documents)"
        undone.not_restorable.append(NotRestorable(record.task_id, reason))
        return
    if doc.get("statusCode") == "DELETING":
        reason = "it was already DELETING when it was deleted"
        undone.not_restorable.append(NotRestorable(record.task_id, reason))
        return
    undone.changes.append(restore_change(doc, marker_source, now))


def restore_change(doc: Mapping[str, Any], marker_source: str, now: datetime) -> Change:
    """The create of a deleted task again: every id as it was, owner and enabled as they were."""
    task_id = str(doc.get("id"))
    marker = marker_for(marker_source, task_id)
    enabled = doc.get("enabled") is True
    mapped = map_task(doc, lambda _kind, old: old, marker=marker, enabled=enabled, now=now)
    ident = {k: doc.get(k) for k in IDENTITY_FIELDS if k in doc}
    ident |= {"appId": app_of(doc), "targetOwner": mapped.owner, "marker": marker}
    ident["targetOwnerName"] = doc.get("ownerName") or ""
    after = {"owner": mapped.owner, "enabled": enabled, "appId": mapped.app_id}
    return Change(task_id, (RESTORE_ACTION,), "POST", TASKS_PATH, mapped.body, {}, after, ident)
