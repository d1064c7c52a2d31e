"""Where a copy's tasks come from: another tenant of the config (listed, `where` applied) or a
`bulkshare export` file (verified whole first, then read and filtered the same way).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bulkshare.client import ApiClient
from bulkshare.copy.marker import source_name
from bulkshare.errors import JobFileError
from bulkshare.export import Selection, Written, export_tasks, read_export, verify_export
from bulkshare.export.fileformat import ExportHeader
from bulkshare.job import Job, Where

__all__ = ["SourceTasks", "file_source", "tenant_source"]


@dataclass(frozen=True)
class SourceTasks:
    """The source tasks a copy's `where` selects, and how to name their source."""

    label: str  #: for people: "tenant us (https://...)" or "export file ... of tenant us"
    marker_source: str  #: the `<source>` of the markers (marker.source_name)
    tenant: str  #: the source tenant's name (the config's, or the export header's)
    from_file: bool
    tasks: list[dict[str, Any]] = field(default_factory=list, hash=False)


class _Collect:
    """A TaskSink that keeps the tasks (a copy plan holds every create body anyway)."""

    def __init__(self) -> None:
        self.tasks: list[dict[str, Any]] = []
        self.count = 0

    @property
    def restartable(self) -> bool:
        return True

    def write(self, task: Mapping[str, Any]) -> None:
        self.tasks.append(dict(task))
        self.count += 1

    def restart(self) -> None:
        self.tasks.clear()
        self.count = 0

    def finish(self) -> Written:
        return Written(self.count, "", "nothing")


async def tenant_source(
    client: ApiClient, name: str, url: str | None, where: Where, now: datetime
) -> SourceTasks:
    """The tasks of tenant `name` that `where` selects, read page by page (tier 1)."""
    sink = _Collect()
    await export_tasks(client, sink, Selection((where,), now), tenant=name)
    label = f"tenant {name} ({url or 'built-in simulator'})"
    return SourceTasks(label, source_name(url), name, False, sink.tasks)


def file_source(job: Job, path: Path, where: Where, now: datetime) -> SourceTasks:
    """The tasks of an export file that `where` selects; the file is verified whole first."""
    if where.needs_owner_status:
        assert job.copy is not None
        raise JobFileError(
            job.path,
            job.copy.line,
            "copy.where.owner_status",
            "an export file holds no users: owner_status needs `from` (a tenant)",
        )
    header = verify_export(path)
    tasks: list[dict[str, Any]] = []
    for item in read_export(path):
        if isinstance(item, ExportHeader):
            continue
        if where.matches(item, now, None):
            tasks.append(item)
    url = None if header.simulated and header.url == "builtin:sim" else header.url
    label = f"export file {str(path)!r} of tenant {header.tenant!r} ({header.exported_at})"
    return SourceTasks(label, source_name(url), header.tenant, True, tasks)
