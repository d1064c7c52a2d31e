"""Step three: execute a Plan against a tenant and leave a run directory behind (plan.json,
audit.jsonl, run.json, summary.json, checkpoint), from which a run is resumed or undone.
"""

from bulkshare.run.files import RunDir, RunMeta, RunState, check_run_id, new_run_id
from bulkshare.run.lock import run_lock
from bulkshare.run.records import ChangeRecord, Outcome, Summary, change_records, read_changes
from bulkshare.run.runner import OnRecord, Runner, RunOptions

__all__ = [
    "ChangeRecord",
    "OnRecord",
    "Outcome",
    "RunDir",
    "RunMeta",
    "RunOptions",
    "RunState",
    "Runner",
    "Summary",
    "change_records",
    "check_run_id",
    "new_run_id",
    "read_changes",
    "run_lock",
]
