"""Tenants as portable documents: `bulkshare-export/1` files, written atomically as they stream
and verified wherever read; copy and restore call `verify_export` first, then `read_export`.
"""

from bulkshare.errors import ExportFileError
from bulkshare.export.fileformat import (
    BUILTIN_SIM_URL,
    DROPPED_FIELDS,
    EXPORT_FORMAT,
    ExportHeader,
    ExportTrailer,
)
from bulkshare.export.inventory import INVENTORY_COLUMNS, inventory_row
from bulkshare.export.reader import ExportReader, open_export, read_export, verify_export
from bulkshare.export.select import ExportStats, Selection, describe_where, export_tasks
from bulkshare.export.target import STDOUT, AtomicFile, StdoutTarget, Target, open_target
from bulkshare.export.writer import CsvInventoryWriter, ExportWriter, TaskSink, Written

__all__ = [
    "BUILTIN_SIM_URL",
    "DROPPED_FIELDS",
    "EXPORT_FORMAT",
    "INVENTORY_COLUMNS",
    "STDOUT",
    "AtomicFile",
    "CsvInventoryWriter",
    "ExportFileError",
    "ExportHeader",
    "ExportReader",
    "ExportStats",
    "ExportTrailer",
    "ExportWriter",
    "Selection",
    "StdoutTarget",
    "Target",
    "TaskSink",
    "Written",
    "describe_where",
    "export_tasks",
    "inventory_row",
    "open_export",
    "open_target",
    "read_export",
    "verify_export",
]
