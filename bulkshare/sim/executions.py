"""Executions of sharing tasks: the record a run leaves behind, cancelling the running ones,
and finding one by id or as the latest (optionally of a status).
"""

from __future__ import annotations

import random
from typing import Any

from bulkshare.sim.errors import SimError
from bulkshare.sim.ids import object_id
from bulkshare.sim.vocab import ExecutionStatus, TemplateSubType, values

__all__ = ["RUNNING", "cancel_running", "find_execution", "new_execution"]

Json = dict[str, Any]

#: statuses of an execution that has not finished yet (what a cancel stops)
RUNNING = frozenset(
    values(
        [ExecutionStatus.INITIALIZED, ExecutionStatus.IN_PROGRESS, ExecutionStatus.PRESUCCESSFUL]
    )
)


def new_execution(task: Json, *, tenant_id: str, ids: random.Random, now: str) -> Json:
    """The record of a successful run of `task` at `now`, one file per template."""
    files = [_file(template, i, ids) for i, template in enumerate(task.get("templates", []))]
    return {
        "id": object_id(ids),
        "sharingTaskID": task["id"],
        "appId": task.get("appId", ""),
        "tenantId": tenant_id,
        "ownerId": task.get("owner", ""),
        "status": ExecutionStatus.SUCCESSFUL.value,
        "eventTime": now,
        "startTime": now,
        "endTime": now,
        "workflowID": object_id(ids),
        "targetUser": {"type": "userId", "value": task.get("owner", "")},
        "files": files,
        "errors": [],
        "totalCount": len(files),
        "successCount": len(files),
        "failedCount": 0,
        "cancelledCount": 0,
    }


def _file(template: Json, index: int, ids: random.Random) -> Json:
    return {
        "type": template.get("subType", TemplateSubType.PDF.value),
        "fileID": object_id(ids),
        "fileAlias": template.get("fileAlias", f"file{index}"),
        "templateId": template.get("templateId", ""),
    }


def cancel_running(runs: list[Json], now: str) -> int:
    """Mark the running executions of `runs` cancelled at `now`; how many were."""
    cancelled = 0
    for run in runs:
        if run.get("status") in RUNNING:
            run |= {"status": ExecutionStatus.CANCELLED.value, "cancelledTime": now}
            cancelled += 1
    return cancelled


def find_execution(runs: list[Json], execution_id: str, status: str | None, task_id: str) -> Json:
    """The execution `execution_id` of `runs`, or the latest (of `status`); 404 SimError."""
    if execution_id == "latest":
        matching = [r for r in runs if status is None or r.get("status") == status]
        if matching:
            return matching[-1]
    else:
        for run in runs:
            if run["id"] == execution_id:
                return run
    raise SimError(404, f"execution {execution_id!r} of sharing task {task_id!r} not found")
