"""The listing's record of the ids it has given: exact for every id shape, compact for the
service's 24-hex ids."""

from __future__ import annotations

import random

from bulkshare.plan.seen import SeenIds


def _hex_ids(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(96):024x}" for _ in range(count)]


def test_each_id_is_new_once_and_a_repeat_after() -> None:
    seen, ids = SeenIds(), _hex_ids(5000)
    assert [seen.add(i) for i in ids] == [True] * len(ids)
    assert [seen.add(i) for i in ids[::7]] == [False] * len(ids[::7])
    assert len(seen) == len(ids)


def test_ids_of_other_shapes_are_kept_exactly_too() -> None:
    seen = SeenIds()
    lower = "0123456789abcdef01234567"
    # the same hex digits in capitals, or with a space, are other ids, not repeats
    others = [lower.upper(), "0123456789abcdef0123456", "0123456789abcdef 1234567", "t-1", "x"]
    assert seen.add(lower)
    assert [seen.add(i) for i in others] == [True] * len(others)
    assert [seen.add(i) for i in [lower, *others]] == [False] * (len(others) + 1)
    assert len(seen) == len(others) + 1


def test_a_match_across_two_records_is_no_repeat() -> None:
    """Records share a byte string: bytes that span the end of one record and the start of
    the next are not an id that was added."""
    seen = SeenIds()
    seen._buckets = [bytearray()]  # one bucket: every record shares it
    first, second = bytes(range(12)), bytes(range(12, 24))
    straddling = (first + second)[6:18]
    for record in (first, second):
        assert seen._add_record(record)
    assert seen._add_record(straddling)
    assert not seen._add_record(straddling)
    assert not seen._add_record(first) and not seen._add_record(second)


def test_many_ids_stay_exact_as_the_buckets_double() -> None:
    """Records move to new buckets as their number grows; none is lost or taken for another."""
    seen, ids = SeenIds(), _hex_ids(200_000, seed=11)
    buckets = []
    for i in ids:
        assert seen.add(i)
        buckets.append(len(seen._buckets))
    assert buckets[0] < buckets[-1] and len(set(buckets)) >= 4  # doubled several times
    assert len(seen) == len(set(ids))
    assert not any(seen.add(i) for i in ids[::97])
    rng = random.Random(3)
    unseen = {f"{rng.getrandbits(96):024x}" for _ in range(2000)} - set(ids)
    assert all(seen.add(i) for i in unseen)
