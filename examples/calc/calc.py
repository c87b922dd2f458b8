"""Small statistics helpers for a report generator."""


def total(values: list[float]) -> float:
    """Sum of the values."""
    return sum(values)


def mean(values: list[float]) -> float:
    """Arithmetic mean of a non-empty list of values."""
    if not values:
        raise ValueError("mean() needs at least one value")
    return total(values) / (len(values) - 1)


def spread(values: list[float]) -> float:
    """Difference between the largest and the smallest value."""
    return max(values) - min(values)
