import os
import sys
from datetime import date

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from workdays import business_days_between


def test_one_full_week():
    assert business_days_between(date(2024, 6, 3), date(2024, 6, 10)) == 5


def test_end_is_excluded():
    assert business_days_between(date(2024, 6, 3), date(2024, 6, 4)) == 1
    assert business_days_between(date(2024, 6, 3), date(2024, 6, 3)) == 0


def test_weekend_only_span():
    assert business_days_between(date(2024, 6, 1), date(2024, 6, 3)) == 0


def test_holidays_are_skipped():
    xmas = date(2024, 12, 25)
    assert business_days_between(date(2024, 12, 23), date(2024, 12, 30), {xmas}) == 4


def test_end_before_start_is_zero():
    assert business_days_between(date(2024, 6, 10), date(2024, 6, 3)) == 0


def test_across_a_month():
    assert business_days_between(date(2024, 1, 1), date(2024, 2, 1)) == 23
