"""Step one: a job file read and validated into a Job, before anything talks to a tenant.

The planner takes a Job: its operations, each an action and a `where` filter.
"""

from bulkshare.job.load import load_job
from bulkshare.job.locate import KeyLocator
from bulkshare.job.model import WHERE_KEYS, ActionKind, Job, Operation, PatchOp
from bulkshare.job.where import (
    OwnerStatusOf,
    Where,
    common_list_params,
    selection_of,
    where_of_selection,
)

__all__ = [
    "WHERE_KEYS",
    "ActionKind",
    "Job",
    "KeyLocator",
    "Operation",
    "OwnerStatusOf",
    "PatchOp",
    "Where",
    "common_list_params",
    "load_job",
    "selection_of",
    "where_of_selection",
]
