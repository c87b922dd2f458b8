"""Billing periods named by month ("2024-03"), as the accounting exports use them."""

import re
from datetime import date, timedelta

_MONTH = re.compile(r"(\d{4})-(\d{2})")


def parse_month(text: str) -> tuple[int, int]:
    """ "2024-03" -> (2024, 3). ValueError for a malformed text or a month outside 1-12."""
    match = _MONTH.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected YYYY-MM, got {text!r}")
    year, month = int(match[1]), int(match[2])
    return year, month


def month_bounds(text: str) -> tuple[date, date]:
    """The first and last day of the month."""
    year, month = parse_month(text)
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def next_month(text: str) -> str:
    year, month = parse_month(text)
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}"


def months_between(start: str, end: str) -> list[str]:
    """Every month from `start` to `end`, both included."""
    if parse_month(end) < parse_month(start):
        return []
    months = [start]
    while months[-1] != end:
        months.append(next_month(months[-1]))
    return months
