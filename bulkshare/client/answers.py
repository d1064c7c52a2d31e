"""Reading the service's answers within bounds: a body no larger than a limit, and a
Retry-After no longer than a cap, in either of its forms.
"""

from __future__ import annotations

import math
import re
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import NoReturn

import aiohttp

from bulkshare.client.failures import AnswerRefused

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_RETRY_AFTER_CAP_S",
    "DEFAULT_RETRY_AFTER_S",
    "read_bounded",
    "retry_after",
    "retry_after_seconds",
]

#: the largest answer read (a list page of 100 tasks is about 100 KB)
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: the longest pause one 429 may impose, whatever its Retry-After says
DEFAULT_RETRY_AFTER_CAP_S = 600.0
#: the pause after a 429 whose Retry-After is missing, negative, inf, nan or garbage
DEFAULT_RETRY_AFTER_S = 1.0
#: RFC 9110 delta-seconds (digits), with a decimal part tolerated
_DELTA = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,9})?").fullmatch


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """What a Retry-After value asks for, in seconds from `now` (wall clock); None if unusable.

    Both forms are understood: delta-seconds (`120`) and an HTTP-date
    (`Wed, 21 Oct 2026 07:28:00 GMT`, a date in the past meaning now).
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA(text):
        return float(text)
    if text.isdigit() and text.isascii():
        return math.inf  # more digits than anyone means: clamped by the caller
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def retry_after(value: str | None, now: float, cap: float) -> tuple[float, bool]:
    """(seconds to pause, True when the tenant asked for more than `cap`)."""
    asked = retry_after_seconds(value, now)
    if asked is None:
        return min(cap, DEFAULT_RETRY_AFTER_S), False
    if asked > cap:
        return cap, True
    return min(cap, max(1.0, math.ceil(asked))), False


async def read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, refused (AnswerRefused) as soon as it passes `limit` bytes.

    Counted as it streams in, after decompression, so neither a server that streams forever
    nor a small compressed answer that inflates can take more than `limit` of memory.
    """
    if resp.content_length is not None and resp.content_length > limit:
        _refuse(resp, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > limit:
            _refuse(resp, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(resp: aiohttp.ClientResponse, limit: int) -> NoReturn:
    resp.close()  # drop the connection: reading the rest would be what we refuse to do
    raise AnswerRefused(
        resp.status,
        f"answer larger than {limit:,} bytes refused ([defaults] max_response_bytes)",
        1,
    )
