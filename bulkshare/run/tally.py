"""The counts of a finished run, taken from its audit log in one pass: outcomes per action,
what the read-backs found, and the exit code they make; and the summary.json they fill.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bulkshare.audit import read_records
from bulkshare.run.records import (
    CHANGE_EVENT,
    NOT_READ_BACK,
    Outcome,
    Summary,
    is_failure,
    is_gone,
)

__all__ = ["Tally", "seconds_between"]


@dataclass
class Tally:
    """Outcomes per action, and the read-back counts (side_effects, not_read_back, reenabled,
    reenable_failed), of every change record of one audit log."""

    counts: Counter[str] = field(default_factory=Counter)
    by_action: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    found: Counter[str] = field(default_factory=Counter)
    #: changes that failed their run (failed, conflict, or a non-delete whose task is gone)
    failed: int = 0
    #: changes other than deletes that found their task gone
    gone: int = 0

    @classmethod
    def of_log(cls, audit: Path) -> Tally:
        tally = cls()
        # one pass that keeps no record: holding them all made the collector rescan the heap
        for r in read_records(audit):
            if r.get("event") == CHANGE_EVENT:
                tally.counts[r["outcome"]] += 1
                tally.by_action[r["action"]][r["outcome"]] += 1
                tally.found.update(_read_back_counts(r))
                outcome, method = r["outcome"], r["request"]["method"]
                tally.failed += is_failure(outcome, method)
                tally.gone += is_gone(outcome, method)
        return tally

    @property
    def exit_code(self) -> int:
        """1 if a change failed, conflicted or found its task gone (a delete's gone task is
        done), or a keep_enabled task was left disabled."""
        return 1 if self.failed or self.found["reenable_failed"] else 0

    def summary(
        self,
        run_id: str,
        tenant: str,
        job: str,
        span: tuple[str, str],
        planned: int,
        throttled: int,
    ) -> Summary:
        """summary.json of a run that went from span[0] to span[1] (UTC RFC 3339)."""
        return Summary(
            run_id,
            tenant,
            job,
            span[0],
            span[1],
            seconds_between(*span),
            planned,
            dict(self.counts),
            {k: dict(v) for k, v in self.by_action.items()},
            throttled,
            self.exit_code,
            self.found["side_effects"],
            self.found["not_read_back"],
            self.found["reenabled"],
            self.found["reenable_failed"],
            self.gone,
        )


def _read_back_counts(record: Mapping[str, Any]) -> list[str]:
    """Which of summary.json's read-back counts one change record adds to."""
    found = ["side_effects"] if record.get("side_effects") else []
    note = record.get("note")
    if isinstance(note, str) and note.startswith(NOT_READ_BACK):
        found.append("not_read_back")
    again = record.get("reenable")
    if isinstance(again, dict):
        applied = again.get("outcome") == Outcome.APPLIED.value
        found.append("reenabled" if applied else "reenable_failed")
    return found


def seconds_between(start: str, end: str) -> float:
    """Seconds from one RFC 3339 time to another, to the millisecond."""

    def parse(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    return round((parse(end) - parse(start)).total_seconds(), 3)
