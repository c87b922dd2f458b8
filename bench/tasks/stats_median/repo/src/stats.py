"""Descriptive statistics for the lab's measurement reports (no numpy on the lab machines)."""

import math
from collections import Counter
from collections.abc import Sequence


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; ValueError for no values."""
    if not values:
        raise ValueError("mean of empty data")
    return math.fsum(values) / len(values)


def variance(values: Sequence[float]) -> float:
    """Sample variance (n - 1 in the denominator); needs at least two values."""
    if len(values) < 2:
        raise ValueError("variance needs at least two values")
    m = mean(values)
    return math.fsum((v - m) ** 2 for v in values) / (len(values) - 1)


def stdev(values: Sequence[float]) -> float:
    """Sample standard deviation."""
    return math.sqrt(variance(values))


def mode(values: Sequence[float]) -> float:
    """The most common value; the smallest of them when several are equally common."""
    if not values:
        raise ValueError("mode of empty data")
    counts = Counter(values)
    top = max(counts.values())
    return min(v for v, c in counts.items() if c == top)
