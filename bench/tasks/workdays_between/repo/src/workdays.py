"""Business-day arithmetic for the invoicing due dates (Monday to Friday, minus holidays)."""

from collections.abc import Collection
from datetime import date, timedelta

ONE_DAY = timedelta(days=1)


def is_business_day(day: date, holidays: Collection[date] = ()) -> bool:
    """Monday to Friday, and not a holiday."""
    return day.weekday() < 5 and day not in holidays


def next_business_day(day: date, holidays: Collection[date] = ()) -> date:
    """The first business day strictly after `day`."""
    day += ONE_DAY
    while not is_business_day(day, holidays):
        day += ONE_DAY
    return day


def add_business_days(start: date, days: int, holidays: Collection[date] = ()) -> date:
    """The date `days` business days after `start` (`start` itself need not be one)."""
    if days < 0:
        raise ValueError("days must not be negative")
    current = start
    for _ in range(days):
        current = next_business_day(current, holidays)
    return current
