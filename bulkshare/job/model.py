"""The job, as validated data: its operations, each an action and a `where` filter.

Built only by `bulkshare.job.load`; the planner reads it and nothing else of the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkshare.job.where import Where

if TYPE_CHECKING:
    from bulkshare.job.copy_keys import CopySpec

__all__ = ["ACTION_KEYS", "WHERE_KEYS", "ActionKind", "Job", "Operation", "PatchOp"]

WHERE_KEYS = (
    "all", "ids", "owner", "owner_name", "app_id", "type", "status", "task_errors", "enabled",
    "tags", "name", "not_viewed_for_days", "owner_status",
)  # fmt: skip


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


ACTION_KEYS: dict[ActionKind, tuple[str, ...]] = {
    ActionKind.REASSIGN_OWNER: ("to", "mapping", "mapping_file", "enable", "keep_enabled"),
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
    #: reassign-owner: a task enabled before that reads back disabled is enabled again
    keep_enabled: bool = False
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
    copy: CopySpec | None = None  #: a copy job's [copy] table (then `operations` is empty)
