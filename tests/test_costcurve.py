"""The batch cost curve: measured once per model and machine, cached, interpolated."""

from __future__ import annotations

import itertools
from pathlib import Path

from turnout.runtimes.local.costcurve import CostCurve, calibrate, load_or_calibrate


def cpu_like(width: int) -> float:
    """Seconds for a batch, shaped like the measured CPU curve (k=4 2.1x, k=32 11x:
    docs/measurements.md#batch-cost-on-the-cpu)."""
    table = {1: 1.0, 2: 1.6, 3: 1.9, 4: 2.1, 6: 3.4, 8: 4.5, 12: 5.2, 16: 6.0, 24: 8.5, 32: 11.0}
    return 0.05 * table[width]


def test_calibration_recovers_the_ratios_even_when_the_load_drifts() -> None:
    calls = {"n": 0}

    def drifting(width: int) -> float:
        # The machine gets three times slower halfway through: pairs still see the same load.
        calls["n"] += 1
        return cpu_like(width) * (3.0 if calls["n"] > 40 else 1.0)

    curve = calibrate(drifting, repeats=5)
    assert abs(curve.ratios[4] - 2.1) < 0.01
    assert abs(curve.ratios[32] - 11.0) < 0.01


def test_a_batch_never_counts_as_cheaper_than_a_narrower_one() -> None:
    noisy = {1: 1.0, 2: 2.0, 3: 1.5, 4: 2.5, 6: 3, 8: 4, 12: 5, 16: 6, 24: 8, 32: 10}
    curve = calibrate(lambda w: noisy[w], repeats=1)
    widths = sorted(curve.ratios)
    assert all(curve.ratios[a] <= curve.ratios[b] for a, b in itertools.pairwise(widths))


def test_the_curve_is_measured_once_and_then_read_from_the_cache(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 60)
    measured: list[int] = []

    def timing(width: int) -> float:
        measured.append(width)
        return cpu_like(width)

    first = load_or_calibrate(tmp_path, model, 2, 0, timing, repeats=1)
    count = len(measured)
    second = load_or_calibrate(tmp_path, model, 2, 0, timing, repeats=1)
    assert count > 0 and len(measured) == count  # nothing measured the second time
    assert second.ratios == first.ratios
    # Another thread count is another machine setting: measured afresh.
    load_or_calibrate(tmp_path, model, 4, 0, timing, repeats=1)
    assert len(measured) > count


def test_costs_between_and_beyond_measured_widths_are_interpolated() -> None:
    curve = CostCurve(ratios={1: 1.0, 4: 2.0, 8: 4.0})
    assert curve.cost(1) == 1.0
    assert curve.cost(6) == 3.0
    assert curve.cost(16) == 8.0


def test_a_curve_taken_under_load_moves_toward_what_later_calls_measure() -> None:
    from turnout.runtimes.local.costcurve import MIN_STEPS, corrected

    loaded = CostCurve(ratios={1: 1.0, 4: 2.1, 8: 4.5, 32: 15.5})  # 32 rows measured while busy
    # One generation's verify steps: single rows at 50 ms, 32-row batches at 8x that.
    rows = [1] * 10 + [32] * 6
    seconds = [0.05] * 10 + [0.40] * 6
    better = corrected(loaded, rows, seconds)
    assert better is not None
    assert 8.0 < better.ratios[32] < 15.5  # moved toward 8.0, not jumped there
    assert better.ratios[4] == 2.1 and better.ratios[8] == 4.5  # widths not seen stay put
    for _ in range(30):  # call after call, it converges on what the machine does now
        better = corrected(better, rows, seconds) or better
    assert abs(better.ratios[32] - 8.0) < 0.1

    # Too few timings say nothing; a width is never cheaper than a narrower one.
    assert corrected(loaded, [1] * (MIN_STEPS - 1) + [32] * 5, [0.05] * (MIN_STEPS - 1) + [0.4] * 5) is None
    cheap = corrected(loaded, [1] * 5 + [16] * 5, [0.05] * 5 + [0.05] * 5)
    assert cheap is not None and cheap.ratios[16] >= cheap.ratios[8]
