import os
import sys
from datetime import date

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from workdays import add_business_days, is_business_day, next_business_day

XMAS = date(2024, 12, 25)


def test_weekend_is_not_a_business_day():
    assert not is_business_day(date(2024, 6, 1))  # a Saturday
    assert is_business_day(date(2024, 6, 3))


def test_next_business_day_skips_the_weekend():
    assert next_business_day(date(2024, 5, 31)) == date(2024, 6, 3)


def test_add_skips_holidays():
    assert add_business_days(date(2024, 12, 23), 2, {XMAS}) == date(2024, 12, 26)


def test_add_zero_days():
    assert add_business_days(date(2024, 6, 1), 0) == date(2024, 6, 1)
