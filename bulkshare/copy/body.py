"""A task document as the service gives it -> the create request of its copy: only the
reference's create fields, every app/user/group/space/data connection id through its map.

Pure functions; the ids no map names are collected, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bulkshare.copy.marker import is_marker
from bulkshare.copy.schedule import rebase_schedule

__all__ = [
    "ADDED_INDIVIDUALLY",
    "CREATE_FIELDS",
    "KIND_APP",
    "KIND_DATA_CONNECTION",
    "KIND_GROUP",
    "KIND_SPACE",
    "KIND_USER",
    "MappedTask",
    "app_of",
    "map_task",
]

#: the fields of the reference's create request (POST /api/v1/sharing-tasks); every other field
#: of a task document (id, owner, ownerName, createdBy, updatedBy, dateCreated, lastUpdated,
#: lastRun, taskErrors, statusCode, links, tenant, appId, ...) is the service's own
CREATE_FIELDS = frozenset(
    {
        "name", "tags", "type", "state", "appName", "enabled", "message", "spaceId", "subType",
        "trigger", "startTime", "templates", "expiration", "recipients", "description",
        "emailContent", "cleanupStrategy", "retentionPolicy", "scheduleOptions",
        "dataConnectionID", "sharePointFolder", "executeOnCreation", "transportChannels",
        "distributionListId",
    }
)  # fmt: skip
KIND_APP, KIND_USER, KIND_GROUP = "app", "user", "group"
KIND_SPACE, KIND_DATA_CONNECTION = "space", "data connection"
#: the pseudo group of a recipient added by name, not through a group: no id to map
ADDED_INDIVIDUALLY = "addedIndividually"
#: template keys whose object names the app
_APP_HOLDERS = ("chartData", "sheetData", "storyData")
#: the create request's keys of one internal recipient
_RECIPIENT_KEYS = ("value", "groups", "subscribed", "enabled")

Lookup = Callable[[str, str], str | None]  # (kind, old id) -> new id, or None: unmapped


@dataclass(frozen=True)
class MappedTask:
    """The create request of one copy, and what it was made from."""

    body: dict[str, Any] = field(hash=False)
    owner: str  #: the target owner (mapped)
    enabled: bool  #: the `enabled` the copy ends with
    app_id: str  #: the app the copy reports on (mapped)
    unmapped: tuple[tuple[str, str], ...] = ()  #: (kind, id) no map named, in document order
    rebased: str | None = None  #: the new schedule start, when the old one had to move


class _Mapper:
    """Maps ids one by one, remembering those no map names (and keeping them as they are)."""

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self.unmapped: dict[tuple[str, str], None] = {}

    def __call__(self, kind: str, old: Any) -> Any:
        if not isinstance(old, str) or not old:
            return old
        new = self._lookup(kind, old)
        if new is None:
            self.unmapped[(kind, old)] = None
            return old
        return new


def map_task(
    doc: Mapping[str, Any],
    lookup: Lookup,
    *,
    marker: str,
    enabled: bool,
    now: datetime,
) -> MappedTask:
    """The quiet create request of a copy of `doc`: disabled, never executed on creation,
    tagged with `marker`; `enabled` is what the PATCH after it will set."""
    mapper = _Mapper(lookup)
    body: dict[str, Any] = {k: v for k, v in doc.items() if k in CREATE_FIELDS}
    body.setdefault("state", {})  # required by create; an absent state is no selections
    if isinstance(body.get("templates"), list):
        body["templates"] = [_template(t, mapper) for t in body["templates"]]
    if isinstance(body.get("recipients"), dict):
        body["recipients"] = _recipients(body["recipients"], mapper)
    for key, kind in (("spaceId", KIND_SPACE), ("dataConnectionID", KIND_DATA_CONNECTION)):
        if key in body:
            body[key] = mapper(kind, body[key])
    owner = mapper(KIND_USER, doc.get("owner"))
    rebased = _rebase(body, now)
    body["tags"] = [*_own_tags(body.get("tags")), marker]
    body["enabled"] = False
    body["executeOnCreation"] = False
    return MappedTask(
        body,
        owner if isinstance(owner, str) else "",
        enabled,
        app_of(body),
        tuple(mapper.unmapped),
        rebased,
    )


def _own_tags(tags: Any) -> list[Any]:
    """The source's tags less any provenance marker: a copy of a copy names its own source."""
    return [t for t in tags if not is_marker(t)] if isinstance(tags, list) else []


def _rebase(body: dict[str, Any], now: datetime) -> str | None:
    options = body.get("scheduleOptions")
    if not isinstance(options, dict):
        return None
    moved = rebase_schedule(options, now)
    if moved is None:
        return None
    body["scheduleOptions"] = {**options, "startDateTime": moved}
    return moved


def _template(template: Any, mapper: _Mapper) -> Any:
    if not isinstance(template, dict):
        return template
    out = dict(template)
    for key in _APP_HOLDERS:
        data = out.get(key)
        if isinstance(data, dict) and "appId" in data:
            out[key] = {**data, "appId": mapper(KIND_APP, data["appId"])}
    sheets = out.get("multiSheetData")
    if isinstance(sheets, list):
        out["multiSheetData"] = [
            {**s, "appId": mapper(KIND_APP, s["appId"])}
            if isinstance(s, dict) and "appId" in s
            # not a sheet with an app: left as it is
            else s
            for s in sheets
        ]
    return out


def _recipients(recipients: Mapping[str, Any], mapper: _Mapper) -> dict[str, Any]:
    """The persisted recipients as the create request takes them, ids mapped."""
    out: dict[str, Any] = {}
    users = recipients.get("userIds")
    if isinstance(users, list):
        out["userIds"] = [_recipient(u, mapper) for u in users if isinstance(u, dict)]
    emails = recipients.get("emailAddresses")
    if isinstance(emails, list):
        out["emailAddresses"] = [_email(e) for e in emails if _email(e)]
    groups = recipients.get("groupIds")
    if isinstance(groups, list) and groups:
        out["groupIds"] = [_group_ref(g, mapper) for g in groups]
    for key in ("DLUsers", "DLGroups"):
        if isinstance(recipients.get(key), list) and recipients[key]:
            out[key] = recipients[key]
    return out


def _recipient(user: Mapping[str, Any], mapper: _Mapper) -> dict[str, Any]:
    persisted = {**user}
    if "enabled" not in persisted and "enabledByUser" in persisted:
        persisted["enabled"] = persisted["enabledByUser"]
    out = {k: persisted[k] for k in _RECIPIENT_KEYS if k in persisted}
    out["value"] = mapper(KIND_USER, out.get("value"))
    if isinstance(out.get("groups"), list):
        out["groups"] = [
            g if g == ADDED_INDIVIDUALLY else mapper(KIND_GROUP, g) for g in out["groups"]
        ]
    return out


def _email(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry or None
    value = entry.get("value") if isinstance(entry, dict) else None
    return value if isinstance(value, str) and value else None


def _group_ref(group: Any, mapper: _Mapper) -> Any:
    if isinstance(group, dict) and "value" in group:
        return {**group, "value": mapper(KIND_GROUP, group["value"])}
    return mapper(KIND_GROUP, group)


def app_of(doc: Mapping[str, Any]) -> str:
    """The app a task (or create request) reports on: the first template's app id, else ''."""
    templates = doc.get("templates")
    for template in templates if isinstance(templates, list) else ():
        if not isinstance(template, dict):
            continue
        for key in _APP_HOLDERS:
            data = template.get(key)
            if isinstance(data, dict) and isinstance(data.get("appId"), str):
                return str(data["appId"])
        sheets = template.get("multiSheetData")
        if isinstance(sheets, list) and sheets and isinstance(sheets[0], dict):
            app = sheets[0].get("appId")
            if isinstance(app, str):
                return app
    app = doc.get("appId")
    return app if isinstance(app, str) else ""
