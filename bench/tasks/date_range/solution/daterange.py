"""Date ranges for the booking calendar. Ranges include both ends unless said otherwise."""

from collections.abc import Iterator
from datetime import date, timedelta


def date_range(start: date, end: date, step: int = 1) -> Iterator[date]:
    """Every `step`-th day from `start` to `end`, both included; nothing if end < start."""
    if step < 1:
        raise ValueError("step must be at least 1")
    for offset in range(0, (end - start).days + 1, step):
        yield start + timedelta(days=offset)


def nights(check_in: date, check_out: date) -> int:
    """Nights of a stay (the check-out day is not a night)."""
    if check_out <= check_in:
        raise ValueError("check-out must be after check-in")
    return (check_out - check_in).days


def month_days(year: int, month: int) -> list[date]:
    """Every day of a month."""
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return list(date_range(first, following - timedelta(days=1)))


def weekends(start: date, end: date) -> list[date]:
    """The Saturdays and Sundays from `start` to `end`."""
    return [d for d in date_range(start, end) if d.weekday() >= 5]
