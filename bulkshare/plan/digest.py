"""A plan's content hash and signature: SHA-256 of its canonical JSON (sorted keys), and an
HMAC of that hash; the hash can be taken one change at a time, so a large plan is never built.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

__all__ = ["content_hash", "content_hash_by_part", "sign"]


def content_hash(body: Mapping[str, Any]) -> str:
    """Hex SHA-256 of `body` as canonical JSON."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def content_hash_by_part(
    body_with: Callable[[str], Mapping[str, Any]], parts: Iterable[Mapping[str, Any]]
) -> str:
    """`content_hash` of the body whose one list value is `parts`, fed to the hash a part at a
    time: `body_with(slot)` is that body with the string `slot` in the list's place."""
    slot = f"parts-{secrets.token_hex(16)}"  # random: no text from a tenant can name it
    head, *tail = orjson.dumps(body_with(slot), option=orjson.OPT_SORT_KEYS).split(
        orjson.dumps(slot)
    )
    if len(tail) != 1:
        raise ValueError("the slot is not in the body once")
    digest = hashlib.sha256(head)
    digest.update(b"[")
    for i, part in enumerate(parts):
        # what orjson writes for a list: its items' JSON, comma-separated, no spaces
        digest.update(b"," if i else b"")
        digest.update(orjson.dumps(part, option=orjson.OPT_SORT_KEYS))
    digest.update(b"]")
    digest.update(tail[0])
    return digest.hexdigest()


def sign(content_hash: str, key: bytes) -> str:
    """The signature of a plan: hex HMAC-SHA256 of its content hash (ASCII hex) under `key`."""
    return hmac.new(key, content_hash.encode("ascii"), hashlib.sha256).hexdigest()
