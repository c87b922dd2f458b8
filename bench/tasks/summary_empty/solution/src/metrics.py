"""Summary statistics for the dashboard's response-time panels."""

import math
from collections.abc import Sequence


def summarize(values: Sequence[float]) -> dict[str, float | int | None]:
    """Count, total, mean, min and max of `values`.

    A panel with no samples yet is normal: for an empty sequence the count and total are 0 and
    the other figures are None (the dashboard shows a dash).
    """
    total = math.fsum(values)
    if not values:
        return {"count": 0, "total": 0, "mean": None, "min": None, "max": None}
    return {
        "count": len(values),
        "total": total,
        "mean": total / len(values),
        "min": min(values),
        "max": max(values),
    }


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct`-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= pct <= 100:
        raise ValueError("pct must be between 0 and 100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * pct / 100
    low = math.floor(pos)
    high = math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
