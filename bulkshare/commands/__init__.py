"""The commands behind the CLI: each takes parsed arguments, does the work, returns an exit code.

Results go to stdout; announcements and progress to stderr. The CLI only parses and calls these.
"""

from bulkshare.commands.applying import ApplyRequest, apply
from bulkshare.commands.exporting import ExportRequest, export, verify_export_file
from bulkshare.commands.inspect import RunFilter, audit_verify, runs, show, validate
from bulkshare.commands.machine import RunFormat
from bulkshare.commands.output import Output
from bulkshare.commands.planning import plan
from bulkshare.commands.resuming import UndoRequest, resume, undo
from bulkshare.commands.unlock import unlock

__all__ = [
    "ApplyRequest",
    "ExportRequest",
    "Output",
    "RunFilter",
    "RunFormat",
    "UndoRequest",
    "apply",
    "audit_verify",
    "export",
    "plan",
    "resume",
    "runs",
    "show",
    "undo",
    "unlock",
    "validate",
    "verify_export_file",
]
