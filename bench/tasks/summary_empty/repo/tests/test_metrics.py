import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from metrics import percentile, summarize


def test_summary_of_samples():
    assert summarize([120, 80, 100]) == {
        "count": 3, "total": 300.0, "mean": 100.0, "min": 80, "max": 120,
    }


def test_summary_of_no_samples():
    assert summarize([]) == {"count": 0, "total": 0, "mean": None, "min": None, "max": None}


def test_summary_of_an_empty_tuple():
    assert summarize(())["mean"] is None


def test_median_percentile():
    assert percentile([1, 2, 3, 4], 50) == 2.5


def test_percentile_needs_values():
    with pytest.raises(ValueError):
        percentile([], 90)
