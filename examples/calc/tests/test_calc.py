import pytest
from calc import mean, spread, total


def test_total_adds_every_value():
    assert total([1, 2, 3.5]) == 6.5


def test_mean_of_four_values():
    assert mean([2, 4, 6, 8]) == 5


def test_mean_of_one_value_is_that_value():
    assert mean([7]) == 7


def test_mean_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        mean([])


def test_spread():
    assert spread([3, 9, 1]) == 8
