"""Ids and timestamps in the service's formats: 24-hex task ids, 32-character user ids, UUIDs
for apps, sheets and charts, and RFC 3339 times with milliseconds.
"""

from __future__ import annotations

import random
import time

__all__ = ["iso", "object_id", "user_id", "uuid"]

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def iso(epoch: float) -> str:
    """RFC 3339 UTC timestamp with milliseconds, the service's format."""
    whole = int(epoch)
    millis = int((epoch - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def user_id(rng: random.Random) -> str:
    """A 32-character Qlik-style user id (URL-safe alphabet)."""
    return "".join(rng.choices(_ID_ALPHABET, k=32))


def object_id(rng: random.Random) -> str:
    """A 24-hex-digit id, the shape of the service's task, execution and space ids."""
    return f"{rng.getrandbits(96):024x}"


def uuid(rng: random.Random) -> str:
    """A UUID-shaped id drawn from `rng` (apps, sheets and charts have these)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
