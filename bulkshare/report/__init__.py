"""Step four: plans and runs shown to people (table, markdown, html) and programs (json, csv).

Reads a Plan, or a run directory through RunReport; never talks to a tenant.
"""

from bulkshare.report.docs import plan_doc, run_doc
from bulkshare.report.estimate import WriteEstimate, estimate_writes
from bulkshare.report.model import ReportDoc, Row
from bulkshare.report.render import (
    ReportFormat,
    plan_json,
    render_plan,
    render_run,
    render_runs,
    report_format,
)
from bulkshare.report.runs import RunListing, RunReport, list_runs
from bulkshare.report.text import plan_table, summary_text

__all__ = [
    "ReportDoc",
    "ReportFormat",
    "Row",
    "RunListing",
    "RunReport",
    "WriteEstimate",
    "estimate_writes",
    "list_runs",
    "plan_doc",
    "plan_json",
    "plan_table",
    "render_plan",
    "render_run",
    "render_runs",
    "report_format",
    "run_doc",
    "summary_text",
]
