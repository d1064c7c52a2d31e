"""Errors the simulator answers with, in the sharing service's own error shape: every non-2xx
answer is `{"errors": [{"code", "title", "detail", "meta": {"httpCode"}}], "traceId"}`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from http import HTTPStatus

import orjson

__all__ = ["SimError", "error_body"]

_TITLES = {429: "API rate limit reached."}


class SimError(Exception):
    """A request the simulated service refuses; carries the HTTP status and the reason."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.code = code or f"HTTP-{status}"
        self.headers = dict(headers or {})


def _title(status: int) -> str:
    if status in _TITLES:
        return _TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_body(status: int, detail: str, code: str | None = None) -> bytes:
    """The JSON body of an error answer, with a fresh trace id."""
    error = {
        "code": code or f"HTTP-{status}",
        "title": _title(status),
        "detail": detail,
        "meta": {"httpCode": status},
    }
    return orjson.dumps({"errors": [error], "traceId": secrets.token_hex(16)})
