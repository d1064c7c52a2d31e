"""The task ids a listing has given so far, held compactly: a large tenant's listing must not
cost more memory than the plan it feeds.

Exact, never a probability: an id is only ever reported as seen if that very id was added.
"""

from __future__ import annotations

import re

__all__ = ["SeenIds"]

#: the service's task ids are 24 lowercase hex digits: 12 bytes each as a record, where a str
#: of them costs 73 bytes and its set slot as much again
_HEX_ID = re.compile(r"[0-9a-f]{24}").fullmatch
_RECORD = 12
#: records per byte string before there are twice as many strings: finding a record is one
#: scan of a few hundred bytes, and the strings' own overhead stays small beside the records
_PER_BUCKET = 32
_FIRST_BUCKETS = 256


class SeenIds:
    """A set of task ids with one operation, `add`; ids of another shape go into a plain set."""

    __slots__ = ("_buckets", "_count", "_other", "_records")

    def __init__(self) -> None:
        self._buckets = [bytearray() for _ in range(_FIRST_BUCKETS)]
        self._records = 0
        self._other: set[str] = set()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, task_id: str) -> bool:
        """Record `task_id`; False if it was recorded already (then nothing changes)."""
        if _HEX_ID(task_id) is None:
            # every other id: a lowercase 24-hex id and any other string are never equal,
            # so the two stores cannot hide a repeat from each other
            if task_id in self._other:
                return False
            self._other.add(task_id)
        elif not self._add_record(bytes.fromhex(task_id)):
            return False
        self._count += 1
        return True

    def _add_record(self, record: bytes) -> bool:
        buckets = self._buckets
        bucket = buckets[hash(record) & (len(buckets) - 1)]
        at = bucket.find(record)
        while at >= 0 and at % _RECORD:  # a match across two records is none
            at = bucket.find(record, at + 1)
        if at >= 0:
            return False
        bucket += record
        self._records += 1
        if self._records > _PER_BUCKET * len(buckets):
            self._spread()
        return True

    def _spread(self) -> None:
        """Twice as many buckets, each record moved to its own (`hash` of its bytes)."""
        buckets = [bytearray() for _ in range(2 * len(self._buckets))]
        mask = len(buckets) - 1
        for bucket in self._buckets:
            for at in range(0, len(bucket), _RECORD):
                record = bytes(bucket[at : at + _RECORD])
                buckets[hash(record) & mask] += record
        self._buckets = buckets
