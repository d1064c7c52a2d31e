"""The provenance marker a copy carries: the tag `bulkshare-src:<source>:<source task id>`,
which makes creation idempotent (a task whose marker is in the target is done).

`<source>` is the source tenant's host (`sim` for the built-in simulator), from the config's
URL or an export file's header, so a copy from a tenant and one from its export agree.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = [
    "MARKER_PREFIX",
    "MAX_MARKER",
    "is_marker",
    "marker_for",
    "source_name",
    "source_of_marker",
]

MARKER_PREFIX = "bulkshare-src:"
#: the reference sets no length for a tag; a marker is kept short enough for any sane limit
MAX_MARKER = 255
_BUILTIN = "builtin:sim"


def source_name(url: str | None) -> str:
    """The `<source>` of markers for a tenant at `url` (None or builtin:sim: the built-in sim)."""
    if url is None or url == _BUILTIN:
        return "sim"
    host = urlsplit(url).hostname
    port = urlsplit(url).port
    name = host or url
    return f"{name}:{port}" if port else name


def marker_for(source: str, task_id: str) -> str:
    """The marker of a copy of task `task_id` of `source`."""
    return f"{MARKER_PREFIX}{source}:{task_id}"


def is_marker(tag: object) -> bool:
    return isinstance(tag, str) and tag.startswith(MARKER_PREFIX)


def source_of_marker(tag: str) -> str:
    """The `<source>:<task id>` part of a marker."""
    return tag.removeprefix(MARKER_PREFIX)
