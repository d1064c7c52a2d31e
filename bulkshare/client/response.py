"""A final answer from the service (`Response`) and the readers `ApiClient` judges it with:
a JSON document, an error's one-line detail, a list page, a refused redirect, query pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from bulkshare.client.failures import AnswerRefused, RequestFailed, shown
from bulkshare.client.paging import Page, total_count

__all__ = ["Response", "describe", "ok_json", "page_of", "query_pairs", "redirected"]


@dataclass(frozen=True)
class Response:
    """A final answer from the service (any status the caller must judge itself)."""

    status: int
    body: bytes
    attempts: int
    settled: bool = False  #: an in-doubt write was found applied by reading, not by its answer

    def json(self) -> Any:
        """The body as JSON; RequestFailed if it is not JSON."""
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            raise RequestFailed(
                self.status, "malformed JSON in the answer", self.attempts
            ) from None


def ok_json(resp: Response) -> Any:
    """The answer's JSON document; RequestFailed on any non-2xx answer."""
    if not 200 <= resp.status < 300:
        raise RequestFailed(resp.status, _error_detail(resp.body), resp.attempts)
    return resp.json()


def _error_detail(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
        first = doc["errors"][0]
        text = f"{first.get('title', '')}: {first.get('detail', '')}".strip(": ")
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return "unexpected answer"
    return text if len(text) <= 300 else text[:297] + "..."  # it ends up in one error line


def page_of(doc: Any, key: str, resp: Response, require_key: bool) -> Page:
    """A list answer's `key` items and totalCount; RequestFailed if it holds no such list."""
    items = doc.get(key, None if require_key else []) if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise RequestFailed(resp.status, f"list answer without a {key!r} list", resp.attempts)
    return Page(items, total_count(doc))


def redirected(status: int, headers: Mapping[str, str], attempts: int) -> AnswerRefused:
    """The refusal of a redirect, which bulkshare never follows."""
    where = headers.get("Location")
    return AnswerRefused(
        status,
        f"the tenant redirected to {shown(where) if where else 'nowhere given'}; bulkshare "
        "never follows a redirect (is the tenant URL in the config right?)",
        attempts,
    )


def query_pairs(params: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    """Query parameters as pairs: a list value repeats its key, a bool is `true`/`false`."""
    if not params:
        return None
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            out.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return out


def describe(exc: BaseException) -> str:
    """A transport failure in a few words, for a retry warning or an error line."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
