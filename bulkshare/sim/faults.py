"""Deterministic faults for write requests: a 503 before applying, a 500 or a dropped
connection after applying. Draws depend on the seed, the request and its repeat count only.
"""

from __future__ import annotations

import enum
import hashlib
from collections import Counter

__all__ = ["Fault", "FaultPlan"]


class Fault(enum.StrEnum):
    """What happens to one write request."""

    NONE = "none"  # answered normally
    UNAVAILABLE = "503-before"  # 503, nothing applied
    ERROR_AFTER = "500-after"  # applied, then answered 500
    DROP_AFTER = "drop-after"  # applied, then the connection is closed without an answer


_KINDS = (Fault.UNAVAILABLE, Fault.ERROR_AFTER, Fault.DROP_AFTER)


class FaultPlan:
    """Draws a Fault per write; the n-th time a (method, path) is written always draws the same."""

    __slots__ = ("_seen", "rate", "seed")

    def __init__(self, rate: float, seed: int) -> None:
        #: probability of a fault per write
        self.rate = rate
        #: seed of the draws
        self.seed = seed
        self._seen: Counter[tuple[str, str]] = Counter()

    def __repr__(self) -> str:
        return (
            f"<FaultPlan rate={self.rate} seed={self.seed} writes_seen={sum(self._seen.values())}>"
        )

    def draw(self, method: str, path: str) -> Fault:
        """The fault of this write request."""
        if self.rate <= 0.0:
            return Fault.NONE
        nth = self._seen[(method, path)]
        self._seen[(method, path)] += 1
        digest = hashlib.blake2b(
            f"{self.seed}|{method}|{path}|{nth}".encode(), digest_size=8
        ).digest()
        chance = int.from_bytes(digest[:6], "big") / float(1 << 48)
        if chance >= self.rate:
            return Fault.NONE
        return _KINDS[digest[6] % len(_KINDS)]
