import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from stats import median


def test_odd_count_is_the_middle_value():
    assert median([5, 1, 3]) == 3


def test_even_count_is_the_mean_of_the_middle_two():
    assert median([4, 1, 3, 2]) == 2.5
    assert isinstance(median([1, 2]), float)


def test_single_value():
    assert median([7]) == 7


def test_input_is_not_modified():
    data = [3, 1, 2]
    median(data)
    assert data == [3, 1, 2]


def test_tuple_input():
    assert median((10, 30, 20)) == 20


def test_empty_is_an_error():
    with pytest.raises(ValueError, match="median of empty data"):
        median([])
