"""Step two: read the tenant and turn a job into a Plan, one merged change per task.

The run step takes a Plan (built here, or read back from `plan.json`) and nothing else.
"""

from bulkshare.plan.build import TaskPlan, build_plan, plan_task
from bulkshare.plan.change import PLAN_FORMAT, Change, Plan, Rejected
from bulkshare.plan.effects import Effect, EffectKind
from bulkshare.plan.owners import FILTER_BATCH, OwnerDirectory

__all__ = [
    "FILTER_BATCH",
    "PLAN_FORMAT",
    "Change",
    "Effect",
    "EffectKind",
    "OwnerDirectory",
    "Plan",
    "Rejected",
    "TaskPlan",
    "build_plan",
    "plan_task",
]
