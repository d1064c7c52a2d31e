"""Copies of tasks, within a tenant or between two, from a tenant or an export file: quiet,
marked creates that a rerun or a resume never doubles; and the restores undo makes of deletes.
"""

from bulkshare.copy.jobs import plan_copy_job
from bulkshare.copy.marker import MARKER_PREFIX, marker_for, source_name
from bulkshare.copy.planner import COPY_ACTION, RESTORE_ACTION, CopyRules, build_copy_plan
from bulkshare.copy.progress import ID_MAP_FILE, CopyProgress, read_id_map
from bulkshare.copy.step import DELETE_SOURCE, CopyResult, CopySteps

__all__ = [
    "COPY_ACTION",
    "DELETE_SOURCE",
    "ID_MAP_FILE",
    "MARKER_PREFIX",
    "RESTORE_ACTION",
    "CopyProgress",
    "CopyResult",
    "CopyRules",
    "CopySteps",
    "build_copy_plan",
    "marker_for",
    "plan_copy_job",
    "read_id_map",
    "source_name",
]
