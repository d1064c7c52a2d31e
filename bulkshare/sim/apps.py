"""The tenant's apps: the seeded ones, each with one prebuilt state and template list per task
type that every task of that app and type shares (replaced, never mutated in place), and the
records the tenant keeps of its apps (`{id, name, spaceId}`) to tell a known app id.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bulkshare.sim.ids import object_id, uuid
from bulkshare.sim.vocab import (
    TASK_TYPES,
    FileTimeStamp,
    ResizeType,
    TaskType,
    TemplateSubType,
    TemplateType,
)

__all__ = ["App", "apps_of_tasks", "build_apps"]

Json = dict[str, Any]

_APP_WORDS = ("Sales", "Finance", "Supply Chain", "HR", "Marketing", "Operations", "Customer")
_APP_KINDS = ("Analytics", "Dashboard", "KPIs", "Insights", "Monitor")


@dataclass(frozen=True, slots=True)
class App:
    """One app of the seeded tenant, and the shapes its tasks are made of."""

    id: str
    name: str
    space_id: str
    section_access: bool
    shapes: dict[str, tuple[Json, list[Json]]]  # task type -> (state, templates)

    def record(self) -> Json:
        """What the tenant keeps of the app."""
        return {"id": self.id, "name": self.name, "spaceId": self.space_id}


def build_apps(rng: random.Random, n: int) -> list[App]:
    """`n` apps, each with its shapes for every task type."""
    apps = []
    for i in range(n):
        app_id = uuid(rng)
        name = f"{rng.choice(_APP_WORDS)} {rng.choice(_APP_KINDS)} {i + 1}"
        shapes = {kind: (_state(rng), _templates(rng, kind, app_id)) for kind in TASK_TYPES}
        apps.append(App(app_id, name, object_id(rng), rng.random() < 0.1, shapes))
    return apps


def apps_of_tasks(tasks: Iterable[Json]) -> list[Json]:
    """The app records a tenant without an app list has: the apps its tasks name."""
    found: dict[str, Json] = {}
    for task in tasks:
        app_id = task.get("appId")
        if isinstance(app_id, str) and app_id and app_id not in found:
            record = {"id": app_id, "name": str(task.get("appName") or "")}
            if isinstance(task.get("spaceId"), str):
                record["spaceId"] = task["spaceId"]
            found[app_id] = record
    return list(found.values())


def _state(rng: random.Random) -> Json:
    years = [rng.choice(("2023", "2024", "2025"))]
    selection = {"name": "Year", "values": years, "isNumeric": False, "stateName": "$"}
    return {"fields": [], "queryItems": [], "selections": [selection]}


def _templates(rng: random.Random, kind: str, app_id: str) -> list[Json]:
    sheet_id, object_id_ = uuid(rng), uuid(rng)
    if kind in (TaskType.CHART_MONITORING, TaskType.CHART_SHARING):
        return _chart_templates(kind, app_id, sheet_id, object_id_)
    if kind == TaskType.SHEET_SHARING:
        return _sheet_templates(app_id, sheet_id)
    return [
        {
            "type": TemplateType.PIXEL_PERFECT.value,
            "subType": TemplateSubType.PDF.value,
            "fileName": "report",
            "fileAlias": "report",
            "fileTimeStamp": FileTimeStamp.DATE.value,
        }
    ]


def _chart_templates(kind: str, app_id: str, sheet_id: str, object_id_: str) -> list[Json]:
    chart = {
        "appId": app_id,
        "sheetId": sheet_id,
        "objectId": object_id_,
        "widthPx": 1584,
        "heightPx": 587,
        "outDpi": 96,
        "outZoom": 1,
        "jsOpts": {},
    }
    # a monitored chart is sent as an image, a shared one as a PDF
    sub = TemplateSubType.IMAGE if kind == TaskType.CHART_MONITORING else TemplateSubType.PDF
    return [
        {
            "type": TemplateType.CHART.value,
            "subType": sub.value,
            "chartData": chart,
            "fileAlias": "chart",
        }
    ]


def _sheet_templates(app_id: str, sheet_id: str) -> list[Json]:
    sheet: Json = {"appId": app_id, "sheetId": sheet_id, "sheetName": "Overview"}
    autofit = ResizeType.AUTOFIT.value
    sheet |= {"widthPx": 0, "heightPx": 0, "resizeType": autofit, "isPrivate": False}
    return [
        {
            "type": TemplateType.MULTI_SHEET.value,
            "subType": TemplateSubType.PDF.value,
            "multiSheetData": [sheet],
            "fileAlias": "report",
        }
    ]
