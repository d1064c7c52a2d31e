"""The rule for schedule starts the service would refuse (`startDateTime` more than a year
back): moved forward by whole periods of the task's recurrence to the first one at or after now.

With a recurrence of FREQ=DAILY;INTERVAL=2 the start moves by whole 2-day steps, so every
run falls where it fell before (same time of day, same weekday for WEEKLY, same day of month
for MONTHLY where the month has it, same date for YEARLY); without a readable FREQ, by whole
days (the time of day kept). A start within the year is left exactly as it is.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

__all__ = ["MAX_START_AGE", "rebase_schedule", "rebase_start"]

#: a start further back than this is refused by the service; one day short of a year, since
#: startDateTime is local time in the task's timezone and `now` is UTC
MAX_START_AGE = timedelta(days=364)
_FIXED = {
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
}
_FORMAT = "%Y-%m-%dT%H:%M:%S"


def rebase_schedule(options: Mapping[str, Any], now: datetime) -> str | None:
    """The new `startDateTime` of `options`, or None when it may stay as it is."""
    start = _parse(options.get("startDateTime"))
    if start is None:
        return None
    freq, interval = _frequency(options.get("recurrence"))
    moved = rebase_start(start, now.replace(tzinfo=None, microsecond=0), freq, interval)
    return None if moved == start else moved.strftime(_FORMAT)


def rebase_start(start: datetime, now: datetime, freq: str, interval: int) -> datetime:
    """`start` moved by whole periods to the first at or after `now`, if it is too old."""
    if now - start <= MAX_START_AGE:
        return start
    if freq in ("MONTHLY", "YEARLY"):
        return _by_months(start, now, interval * (12 if freq == "YEARLY" else 1))
    step = _FIXED.get(freq, _FIXED["DAILY"]) * interval
    periods = -(-(now - start) // step)  # ceiling: the first at or after now
    return start + step * periods


def _by_months(start: datetime, now: datetime, months: int) -> datetime:
    elapsed = (now.year - start.year) * 12 + (now.month - start.month)
    n = max(0, elapsed // months)
    while (moved := _add_months(start, n * months)) < now:
        n += 1
    return moved


def _add_months(start: datetime, months: int) -> datetime:
    total = start.month - 1 + months
    year, month = start.year + total // 12, total % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None  # not ours to judge: the service answers for it
    return None if moment.tzinfo is not None else moment


def _frequency(recurrence: Any) -> tuple[str, int]:
    """FREQ and INTERVAL of the first RRULE, ("", 1) if there is none."""
    rules = recurrence if isinstance(recurrence, list) else []
    for rule in rules:
        if not isinstance(rule, str):
            continue
        parts = dict(p.split("=", 1) for p in rule.removeprefix("RRULE:").split(";") if "=" in p)
        interval = parts.get("INTERVAL", "1")
        steps = int(interval) if interval.isdigit() and int(interval) > 0 else 1
        return parts.get("FREQ", "").upper(), steps
    return "", 1
