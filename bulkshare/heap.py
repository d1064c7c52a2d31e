"""The cyclic collector around bulk work: millions of small objects with no cycles, which the
collector can only slow down (a full collection scans every live container).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused", "settled"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Build something large with the collector off; frozen afterwards, it is never scanned
    again by the collections a run's own allocations trigger."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def settled() -> None:
    """What is alive now (a plan as it grows) leaves the collector's generations.

    Each page of a listing is alive long enough to be promoted to the oldest generation, so
    full collections keep coming, and each would scan the whole plan again: quadratic in the
    plan's size. Frozen objects are still freed by reference counting; only a cycle among
    them waits for the process to end, and plans and pages make none.
    """
    gc.freeze()
