"""How long the client keeps trying one request: failed tries (network errors, 5xx) back off
with full jitter up to `max_attempts`; 429s are no failed tries, bounded by time instead.
"""

from __future__ import annotations

import random

from bulkshare.client.failures import RequestFailed

__all__ = ["THROTTLE_WINDOWS", "backoff_s", "throttled_too_long"]

_BACKOFF_BASE_S = 0.25
_BACKOFF_CAP_S = 20.0
#: a request answered 429 again and again is given up once its 429s span this many windows
#: of its tier (15 minutes at the documented 5-minute window): 429s alone never fail it sooner
THROTTLE_WINDOWS = 3


def backoff_s(rng: random.Random, attempt: int) -> float:
    """The pause before retry `attempt`: uniform in [0, min(cap, base * 2^attempt)]."""
    return rng.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt))


def throttled_too_long(
    window_s: float, since: float, now: float, sends: int
) -> RequestFailed | None:
    """The failure of a request refused with 429s from `since` until `now`, once that spans
    more than THROTTLE_WINDOWS windows (the service's other users may spend the tenant's
    limit for a while, never for ever); None while it may still wait its turn."""
    limit = THROTTLE_WINDOWS * window_s
    if now - since <= limit:
        return None
    return RequestFailed(
        429, f"rate limited (429) for more than {limit:g} s ({sends} attempts)", sends
    )
