"""The reads a run makes to decide a change's outcome: the task before a write, and, for a
write in doubt, whatever shows whether it landed (the task, or its executions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bulkshare.client import ApiClient, RequestFailed
from bulkshare.plan import Change
from bulkshare.run import judge
from bulkshare.run.records import Outcome
from bulkshare.vocab import task_path

__all__ = ["EXECUTIONS_READ", "TenantReads"]

#: executions read to settle an in-doubt execute or cancel (the newest first)
EXECUTIONS_READ = 20


class TenantReads:
    """Reads one tenant on behalf of a run; the verdicts themselves are `judge`'s."""

    __slots__ = ("client",)

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"<TenantReads {self.client!r}>"

    async def task(self, task_id: str) -> dict[str, Any] | None:
        """The task as the service has it now; None if it is gone (404)."""
        resp = await self.client.request("GET", task_path(task_id))
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise RequestFailed(resp.status, "unexpected answer to a task read", resp.attempts)
        doc = resp.json()
        if not isinstance(doc, dict):
            raise RequestFailed(resp.status, "task read answered with a non-object", resp.attempts)
        return doc

    async def landed(self, change: Change, sent_at: float) -> bool:
        """Settle an unanswered write of this process by reading: did it take effect?"""
        try:
            current = await self.task(change.task_id)
            if change.method == "DELETE":
                return judge.delete_landed(change, current)
            if change.method == "PATCH":
                return judge.patch_landed(change, current)
            if current is None:
                return False  # gone: the retry's 404 records it absent
            verdict = await self.settle_post(change, current, sent_at)
        except RequestFailed:
            return False
        # not landed: the retry is the first to take effect (a cancel with nothing left to
        # cancel has no effect either way)
        return verdict is Outcome.APPLIED

    async def settle_post(
        self, change: Change, current: Mapping[str, Any], armed_at: float
    ) -> Outcome | None:
        """`judge.settle_post` over the task's newest executions; RequestFailed if unreadable."""
        resp = await self.client.request(
            "GET",
            f"{task_path(change.task_id)}/executions",
            params={"sort": "-starttime", "limit": EXECUTIONS_READ},
        )
        if resp.status == 404:
            return Outcome.ABSENT
        doc = resp.json() if resp.status == 200 else None
        runs = doc.get("executions") if isinstance(doc, dict) else None
        if not isinstance(runs, list):
            raise RequestFailed(resp.status, "executions list unreadable", resp.attempts)
        return judge.settle_post(change, current, runs, armed_at)
