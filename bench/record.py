"""Write benchmark figures into BENCHMARKS.md: one table row per figure, replaced on re-run."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["machine", "record"]

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
HEADER = [
    "# Benchmarks",
    "",
    "Figures produced by the scripts under `bench/`; each run replaces its own rows.",
    "",
    "A row's date says when it was measured, and machines of one kind differ from day to day:",
    "on 2026-12-01 this machine ran commit f13115e (whose figures the 2026-11-28/29 rows were)",
    "at about a third of its earlier speed (`bench.listing`: 22,638 offset tasks/s against",
    "63,978). Speed rows of that day therefore name f13115e's figure measured the same hour,",
    "and that comparison, not the older row, is what a change is judged by.",
    "",
    "| figure | command | result | machine | date |",
    "| --- | --- | --- | --- | --- |",
]


def machine() -> str:
    """A short description of this machine."""
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, "
        f"Python {platform.python_version()}"
    )


def record(figure: str, command: str, result: str) -> None:
    """Add or replace the row for `figure`."""
    rows = _rows()
    rows[figure] = f"| {figure} | `{command}` | {result} | {machine()} | {_today()} |"
    BENCHMARKS.write_text("\n".join(HEADER + list(rows.values())) + "\n")
    print(f"{figure}: {result}")


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _rows() -> dict[str, str]:
    if not BENCHMARKS.exists():
        return {}
    rows: dict[str, str] = {}
    # every table row but the column heads, wherever the header ends (its text changes)
    for line in BENCHMARKS.read_text().splitlines():
        if line.startswith("| ") and line not in HEADER:
            rows[line.split(" | ")[0][2:]] = line
    return rows
