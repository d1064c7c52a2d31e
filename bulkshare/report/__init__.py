"""Step four: plans and runs shown to people (table, markdown, html) and programs (json, csv).

Reads a Plan, or a run directory through RunReport; never talks to a tenant.
"""

from bulkshare.report.model import ReportDoc, Row, RunListing, RunReport, list_runs
from bulkshare.report.render import (
    ReportFormat,
    WriteEstimate,
    estimate_writes,
    plan_doc,
    plan_json,
    plan_table,
    render_plan,
    render_run,
    render_runs,
    report_format,
    run_doc,
    summary_text,
)

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
