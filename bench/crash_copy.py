"""The copy job of bench/crash.py: a seeded source tenant copied into a seeded target with app,
user and space maps, and what a finished copy run must leave (a complete `id-map.csv`).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.copy_scale import build_maps, space_map
from bulkshare.copy.marker import MARKER_PREFIX
from bulkshare.plan import EffectKind, Plan
from bulkshare.sim import SimTenant

__all__ = ["TARGET_TASKS", "copy_job_text", "id_map_problems", "target_tenant"]

#: the source is seeded with the bench's --seed, the target with the next seed and this many
TARGET_TASKS = 60


def target_tenant(seed: int) -> SimTenant:
    """The tenant the copies go to (its users and apps are the maps' targets)."""
    return SimTenant.seed(TARGET_TASKS, seed + 1)


def copy_job_text(source: SimTenant, target: SimTenant) -> str:
    """Every live task of `source` copied into `target`, every id mapped (unmapped refused)."""
    src, dst = source.to_document(), target.to_document()
    apps, users = build_maps(src, dst)
    spaces = space_map(src, dst, apps)
    return (
        '[job]\nname = "crash-copy"\n\n[copy]\nfrom = "src"\nwhere.all = true\n'
        f'unmapped = "refuse"\napp_map = {_inline(apps)}\nuser_map = {_inline(users)}\n'
        f"space_map = {_inline(spaces)}\n"
    )


def _inline(mapping: Mapping[str, str]) -> str:
    return "{ " + ", ".join(f'"{k}" = "{v}"' for k, v in sorted(mapping.items())) + " }"


def id_map_problems(run_dir: Path, doc: dict[str, Any]) -> list[str]:
    """What the finished run's id-map.csv gets wrong against the plan and the target."""
    # creates only: an execute or cancel is a POST too, and makes no id-map.csv row
    changes = Plan.read(run_dir / "plan.json").changes
    creates = {c.task_id for c in changes if c.kind is EffectKind.CREATE}
    path = run_dir / "id-map.csv"
    if not creates:
        return []
    if not path.exists():
        return ["no id-map.csv"]
    rows = list(csv.reader(path.read_text().splitlines()))[1:]
    made = {
        tag.rsplit(":", 1)[1]: t["id"]
        for t in doc["sharingTasks"]
        for tag in t.get("tags") or ()
        if isinstance(tag, str) and tag.startswith(MARKER_PREFIX)
    }
    problems = []
    if len(rows) != len(creates) or {r[0] for r in rows} != creates:
        problems.append(f"id-map.csv has {len(rows)} rows for {len(creates)} creates")
    wrong = [r for r in rows if made.get(r[0]) != r[1]]
    if wrong:
        problems.append(f"id-map.csv names {len(wrong)} target(s) wrongly: {wrong[:2]}")
    return problems
