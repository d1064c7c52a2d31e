"""Plans and runs rendered for people (table) and for programs (json)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from bulkshare.config import Limits
from bulkshare.plan import Change, Plan
from bulkshare.run import Summary

__all__ = ["WriteEstimate", "estimate_writes", "plan_json", "plan_table", "summary_text"]

_MAX_TABLE_ROWS = 200


@dataclass(frozen=True)
class WriteEstimate:
    """How long a number of writes takes at a tenant's tier-2 limit."""

    writes: int
    per_window: int  #: writes the budget allows in one window
    window_s: float
    seconds: float  #: the least time the window arithmetic allows (first write to last)

    @property
    def fits_one_window(self) -> bool:
        return self.writes <= self.per_window

    def describe(self) -> str:
        if self.writes == 0:
            return "no writes"
        if self.fits_one_window:
            return (
                f"{self.writes} writes fit in one window ({self.per_window} per "
                f"{self.window_s:g} s): no waiting for the rate limit"
            )
        return (
            f"{self.writes} writes need {math.ceil(self.writes / self.per_window)} windows "
            f"of {self.window_s:g} s ({self.per_window} each): at least "
            f"{_duration(self.seconds)}"
        )


def estimate_writes(writes: int, limits: Limits) -> WriteEstimate:
    """The window minimum: (ceil(W / L) - 1) * window_s for W writes and L per window."""
    per_window = max(
        1, math.floor(limits.tier2_per_minute * limits.window_s / 60 * limits.headroom)
    )
    windows = math.ceil(writes / per_window) if writes else 0
    return WriteEstimate(writes, per_window, limits.window_s, max(0, windows - 1) * limits.window_s)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _short(value: Any, width: int = 28) -> str:
    text = (
        "-" if value is None else value if isinstance(value, str) else orjson.dumps(value).decode()
    )
    return text if len(text) <= width else text[: width - 1] + "…"


def _before_after(change: Change) -> str:
    if change.method == "DELETE":
        return "task → deleted"
    if change.method == "POST":
        return f"{change.action} requested"
    parts = [
        f"{k}: {_short(change.before.get(k), 20)} → {_short(v, 20)}"
        for k, v in change.after.items()
    ]
    return "; ".join(parts)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    rows = [list(r) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return out


def plan_table(plan: Plan, limits: Limits) -> str:
    """The plan as a text table with counts and the write-time estimate."""
    lines = [
        f"plan: job {plan.job_name} on tenant {plan.tenant}: {len(plan.changes)} changes, "
        f"{plan.scanned} tasks read"
    ]
    rows = [
        (
            c.task_id,
            _short(c.task.get("name")),
            _short(c.task.get("ownerName") or c.task.get("owner"), 20),
            c.action,
            _before_after(c),
        )
        for c in plan.changes[:_MAX_TABLE_ROWS]
    ]
    if rows:
        lines += ["", *_table(("task", "name", "owner", "action", "before → after"), rows)]
    if len(plan.changes) > _MAX_TABLE_ROWS:
        lines.append(f"… and {len(plan.changes) - _MAX_TABLE_ROWS} more (use --format json)")
    lines += [
        "",
        _counts_line("changes", plan.counts()),
        _counts_line("skipped, already done", dict(plan.skipped)),
        "time: " + estimate_writes(plan.writes(), limits).describe(),
    ]
    return "\n".join(lines)


def _counts_line(title: str, counts: Mapping[str, int]) -> str:
    if not counts:
        return f"{title}: none"
    return f"{title}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def plan_json(plan: Plan, limits: Limits) -> bytes:
    """The plan document plus the estimate, as JSON."""
    doc = plan.to_json()
    est = estimate_writes(plan.writes(), limits)
    doc["estimate"] = {
        "writes": est.writes,
        "per_window": est.per_window,
        "window_s": est.window_s,
        "min_seconds": est.seconds,
        "fits_one_window": est.fits_one_window,
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def summary_text(summary: Summary) -> str:
    """A run's summary in a few lines."""
    lines = [
        f"run {summary.run_id}: job {summary.job} on tenant {summary.tenant}",
        f"  planned {summary.planned}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items()))
        if summary.counts
        else f"  planned {summary.planned}; nothing to do",
        f"  took {summary.duration_s:.1f} s; 429s seen {summary.throttled}; "
        f"exit {summary.exit_code}",
    ]
    return "\n".join(lines)
