"""bulkshare: bulk administration of Qlik Cloud sharing tasks.

The library's public surface, named once: job -> plan -> run -> audit, with the client under them.
"""

from importlib.metadata import PackageNotFoundError, version

from bulkshare.audit import AuditLog, VerifyResult, verify
from bulkshare.client import ApiClient, RequestFailed, TenantSession, open_tenant
from bulkshare.config import Config, TenantConfig, load_config
from bulkshare.errors import (
    BulkshareError,
    ConfigError,
    DryRunViolation,
    InterruptedRun,
    JobFileError,
    PlanFileError,
    RefusedError,
    RunFileError,
    TenantError,
    UsageError,
)
from bulkshare.job import ActionKind, Job, Operation, Where, load_job
from bulkshare.plan import Change, Plan, build_plan
from bulkshare.run import (
    ChangeRecord,
    Outcome,
    RunDir,
    RunMeta,
    Runner,
    RunOptions,
    RunState,
    Summary,
)

try:
    __version__ = version("bulkshare")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ActionKind",
    "ApiClient",
    "AuditLog",
    "BulkshareError",
    "Change",
    "ChangeRecord",
    "Config",
    "ConfigError",
    "DryRunViolation",
    "InterruptedRun",
    "Job",
    "JobFileError",
    "Operation",
    "Outcome",
    "Plan",
    "PlanFileError",
    "RefusedError",
    "RequestFailed",
    "RunDir",
    "RunFileError",
    "RunMeta",
    "RunOptions",
    "RunState",
    "Runner",
    "Summary",
    "TenantConfig",
    "TenantError",
    "TenantSession",
    "UsageError",
    "VerifyResult",
    "Where",
    "__version__",
    "build_plan",
    "load_config",
    "load_job",
    "open_tenant",
    "verify",
]
