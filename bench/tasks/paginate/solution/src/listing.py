"""Pagination for list views: which items a page shows and which page links to offer."""

import math
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def page_count(total: int, per_page: int) -> int:
    """How many pages `total` items fill; an empty listing still has one (empty) page."""
    if per_page <= 0:
        raise ValueError("per_page must be positive")
    return max(1, math.ceil(total / per_page))


def paginate(items: Sequence[T], page: int, per_page: int = 10) -> list[T]:
    """The items shown on `page` (numbered from 1); a page past the end is empty."""
    if page < 1:
        raise ValueError("pages are numbered from 1")
    start = (page - 1) * per_page
    return list(items[start:start + per_page])


def page_window(current: int, pages: int, size: int = 5) -> list[int]:
    """Up to `size` page numbers centred on `current`, for the pager links."""
    size = min(size, pages)
    first = max(1, current - size // 2)
    first = min(first, pages - size + 1)
    return list(range(first, first + size))
