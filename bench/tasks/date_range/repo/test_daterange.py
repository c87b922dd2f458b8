from datetime import date

import pytest
from daterange import date_range, month_days, nights, weekends


def test_range_includes_both_ends():
    days = list(date_range(date(2024, 2, 27), date(2024, 3, 1)))
    assert days == [date(2024, 2, 27), date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)]


def test_single_day():
    assert list(date_range(date(2024, 5, 5), date(2024, 5, 5))) == [date(2024, 5, 5)]


def test_step():
    days = list(date_range(date(2024, 1, 1), date(2024, 1, 7), step=3))
    assert days == [date(2024, 1, 1), date(2024, 1, 4), date(2024, 1, 7)]


def test_nights():
    assert nights(date(2024, 7, 1), date(2024, 7, 4)) == 3
    with pytest.raises(ValueError):
        nights(date(2024, 7, 4), date(2024, 7, 4))


def test_month_days():
    assert len(month_days(2024, 2)) == 29
    assert month_days(2023, 12)[-1] == date(2023, 12, 31)


def test_weekends():
    assert weekends(date(2024, 6, 1), date(2024, 6, 9)) == [
        date(2024, 6, 1), date(2024, 6, 2), date(2024, 6, 8), date(2024, 6, 9),
    ]
