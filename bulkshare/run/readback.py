"""After a PATCH is answered (or settled): read the task back, record what it became, compare
it with the plan's expectation, and enable again a keep_enabled task the service disabled.

A read-back that fails is recorded ("not read back"), never a failure of the change: the
write's outcome was decided by its answer, or by the read that settled it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from bulkshare.client import ApiClient, RequestFailed, Response
from bulkshare.client.budget import RequestDropped
from bulkshare.plan import Change
from bulkshare.run import judge
from bulkshare.run.reads import TenantReads
from bulkshare.run.records import NOT_READ_BACK, Outcome

__all__ = ["REENABLE_BODY", "ReadBack", "read_back"]

log = structlog.get_logger("bulkshare.run")

#: the follow-up PATCH of a keep_enabled owner change whose task the service disabled
REENABLE_BODY = [{"op": "replace", "path": "/enabled", "value": True}]


@dataclass(frozen=True, slots=True)
class ReadBack:
    """What a read-back found, as the change's audit record holds it."""

    observed: Mapping[str, Any] | None  #: None: not read back (`note` says why)
    side_effects: tuple[Mapping[str, Any], ...] = ()
    note: str | None = None
    reenable: Mapping[str, Any] | None = None  #: the follow-up re-enable, when one was sent


async def read_back(
    reads: TenantReads,
    change: Change,
    task: Mapping[str, Any] | None,
    enabled_before: bool | None,
) -> ReadBack:
    """Read `change`'s task back (unless `task`, a read made after the write, is given),
    and re-enable it if the change asks for that and the service disabled it.

    `enabled_before`: `enabled` as read just before the write (None when there was no such
    read: then the plan's own reading counts).
    """
    if task is None:
        try:
            task = await reads.task(change.task_id)
        except RequestFailed as exc:
            return ReadBack(None, note=f"{NOT_READ_BACK}: {exc.reason}")
        except RequestDropped:
            if change.reenables:
                # left unrecorded: resume settles the write by reading, then reads it back
                # and enables the task again if the service disabled it
                raise
            # the write landed: record it now (the run is stopping), so nothing is lost
            return ReadBack(None, note=f"{NOT_READ_BACK}: the run was stopping")
        if task is None:
            return ReadBack(None, note=f"{NOT_READ_BACK}: the task is gone")
    observed = judge.observed_state(change, task)
    effects = tuple(e.to_json() for e in judge.side_effects(change, observed))
    again = None
    if judge.needs_reenable(change, observed, enabled_before):
        again = await _reenable(reads, change)
    return ReadBack(observed, effects, None, again)


async def _reenable(reads: TenantReads, change: Change) -> dict[str, Any]:
    """PATCH /enabled true once; an unanswered one is settled by reading, never resent blindly.

    After a crash before its record, `resume` settles the owner change by reading and reads
    the task back again: enabled (this landed) means nothing more is sent.
    """
    client: ApiClient = reads.client
    try:
        resp = await client.request(
            "PATCH",
            change.path,
            json=REENABLE_BODY,
            settle=lambda: reads.enabled(change.task_id),
        )
    except RequestFailed as exc:
        return _failed(change, exc.status, exc.attempts, exc.reason)
    if resp.settled or 200 <= resp.status < 300:
        return {
            "outcome": Outcome.APPLIED.value,
            "http_status": resp.status,
            "attempts": resp.attempts,
            "error": None,
        }
    return _failed(change, resp.status, resp.attempts, error_text(resp))


def _failed(change: Change, status: int | None, attempts: int, error: str) -> dict[str, Any]:
    log.warning("reenable-failed", task_id=change.task_id, status=status, error=error)
    return {
        "outcome": Outcome.FAILED.value,
        "http_status": status,
        "attempts": attempts,
        "error": error,
    }


def error_text(resp: Response) -> str:
    """An error answer in one line: its status and the first error's title and detail."""
    try:
        doc = resp.json()
        first = doc["errors"][0]
        return f"HTTP {resp.status}: {first.get('title', '')} {first.get('detail', '')}".strip()
    except (RequestFailed, KeyError, IndexError, TypeError, AttributeError):
        return f"HTTP {resp.status}"
