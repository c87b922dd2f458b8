import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import stats


def test_mean():
    assert stats.mean([1, 2, 3, 4]) == 2.5


def test_mean_of_nothing():
    with pytest.raises(ValueError):
        stats.mean([])


def test_variance_and_stdev():
    assert stats.variance([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(4.571428, rel=1e-5)
    assert stats.stdev([1, 1, 1]) == 0


def test_mode_prefers_the_smallest_on_ties():
    assert stats.mode([3, 1, 3, 1, 2]) == 1
