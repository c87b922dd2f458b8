from datetime import date

import pytest
from periods import month_bounds, months_between, next_month, parse_month


def test_parse():
    assert parse_month(" 2024-03 ") == (2024, 3)


@pytest.mark.parametrize("text", ["2024-13", "2024-00", "2024-3", "March 2024"])
def test_invalid_months_are_rejected(text):
    with pytest.raises(ValueError):
        parse_month(text)


def test_bounds_of_february():
    assert month_bounds("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))


def test_year_end():
    assert next_month("2023-12") == "2024-01"
    assert months_between("2023-11", "2024-02") == ["2023-11", "2023-12", "2024-01", "2024-02"]
