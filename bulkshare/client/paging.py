"""Paged answers, and the guards that make every paging walk end: a repeated link, an empty
page that still links on, more pages than `totalCount` allows, or the `max_pages` ceiling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from yarl import URL

from bulkshare.client.failures import PagingStopped, shown

__all__ = ["DEFAULT_MAX_PAGES", "PAGE_SLACK", "Page", "PageGuard", "next_href", "total_count"]

#: pages one listing may take at most (10 M tasks at 100 a page)
DEFAULT_MAX_PAGES = 100_000
#: pages allowed beyond ceil(totalCount / page size): tasks added while the list is read
PAGE_SLACK = 2


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list answer."""

    items: list[Any]  #: the page's list (its items unchecked: the caller judges them)
    total: int | None  #: the page's `totalCount`, when it gave a usable one


def total_count(doc: dict[str, Any]) -> int | None:
    """A list answer's `totalCount`, or None when it is missing or not a count."""
    value = doc.get("totalCount")
    return value if type(value) is int and value >= 0 else None


def next_href(doc: dict[str, Any]) -> str | None:
    """`links.next.href` of a list answer, or None when there is no next page."""
    links = doc.get("links")
    if not isinstance(links, dict):
        return None
    nxt = links.get("next")
    href = nxt.get("href") if isinstance(nxt, dict) else None
    return href if isinstance(href, str) and href else None


class PageGuard:
    """Watches one paging walk and stops it (PagingStopped) the moment it cannot be right."""

    __slots__ = ("_largest", "_seen", "max_pages", "pages", "what")

    def __init__(self, what: str, max_pages: int) -> None:
        self.what = what  #: the listing, for messages
        self.max_pages = max_pages  #: the ceiling
        self.pages = 0  #: pages received so far
        self._largest = 0  # the largest page seen: the page size the server really gives
        self._seen: set[str] = set()

    def __repr__(self) -> str:
        return f"<PageGuard {self.what} pages={self.pages}/{self.max_pages}>"

    def link(self, url: URL) -> None:
        """About to request `url`: refuse a link that was already requested (a loop)."""
        key = str(url)
        if key in self._seen:
            raise PagingStopped(
                f"{self.what}: page {self.pages + 1} links back to an earlier page "
                f"({shown(key)}); the listing would never end"
            )
        self._seen.add(key)

    def page(self, page: Page, has_next: bool) -> None:
        """A page came: refuse to go on when the next one cannot be right."""
        self.pages += 1
        self._largest = max(self._largest, len(page.items))
        if not has_next:
            return
        if not page.items:
            raise PagingStopped(f"{self.what}: page {self.pages} is empty but links to a next page")
        if self.pages >= self.max_pages:
            raise PagingStopped(
                f"{self.what}: more than {self.max_pages:,} pages ([defaults] max_pages); "
                "raise it if the tenant really is that large"
            )
        if page.total is not None:
            allowed = math.ceil(page.total / self._largest) + PAGE_SLACK
            if self.pages >= allowed:
                raise PagingStopped(
                    f"{self.what}: page {self.pages} links to another, but totalCount "
                    f"{page.total:,} at {self._largest} a page allows {allowed:,} pages"
                )
