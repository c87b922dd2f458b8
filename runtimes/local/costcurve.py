"""What a batch of k tokens costs against one token, for one model on one machine.

Speculative decoding pays a k-row verify batch to maybe gain k tokens. On a GPU that batch costs
little more than one token; on this CPU it costs 2.1x at k=4 and 11x at k=32 (docs/measurements.md), so the
right draft length depends on the machine. `calibrate` measures the curve once and caches it in
the models directory, keyed by the model file, the thread and GPU-layer settings and the CPU;
`CostCurve.cost(n)` then interpolates it for the decoder. Every speculative call times its
verify batches anyway, and `corrected` moves the cached curve toward those timings, so a curve
first measured under load does not stay wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

WIDTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


class CostCurve(BaseModel):
    """Cost of evaluating n tokens in one batch (all rows' logits), in units of one token."""

    ratios: dict[int, float] = Field(description="batch width -> cost relative to width 1")
    single_token_seconds: float = Field(default=0.0, description="median time of one token")
    key: str = Field(default="", description="model, machine and settings it was measured for")

    def cost(self, n: int) -> float:
        """Interpolated cost of an n-row batch; linear beyond the widest measured width."""
        if n <= 1:
            return 1.0
        widths = sorted(self.ratios)
        if n in self.ratios:
            return self.ratios[n]
        if n > widths[-1]:
            w = widths[-1]
            return self.ratios[w] * n / w
        lo = max(w for w in widths if w < n)
        hi = min(w for w in widths if w > n)
        t = (n - lo) / (hi - lo)
        return self.ratios[lo] + t * (self.ratios[hi] - self.ratios[lo])


# Qwen2.5-Coder-1.5B on the 2-core development machine, a fallback for tests and for runtimes
# that choose not to calibrate (docs/measurements.md#batch-cost-on-the-cpu).
CPU_DEFAULT = CostCurve(ratios={1: 1.0, 2: 1.6, 4: 2.1, 8: 4.5, 16: 6.0, 32: 11.0})


def cache_key(model_path: Path, n_threads: int, n_gpu_layers: int) -> str:
    """A name for one model file on one machine with one setting of threads and offload."""
    stat = model_path.stat()
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    ident = f"{model_path.name}|{stat.st_size}|{n_threads}|{n_gpu_layers}|{cpu}|{os.cpu_count()}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def cache_path(cache_dir: Path, model_path: Path, key: str) -> Path:
    return cache_dir / "costcurves" / f"{model_path.stem}-{key}.json"


def load_or_calibrate(
    cache_dir: Path,
    model_path: Path,
    n_threads: int,
    n_gpu_layers: int,
    time_batch: Callable[[int], float],
    *,
    repeats: int = 5,
) -> CostCurve:
    """The cached curve for this model and machine, measuring it first if there is none.

    `time_batch(n)` evaluates an n-token batch and returns its seconds.
    """
    key = cache_key(model_path, n_threads, n_gpu_layers)
    path = cache_path(cache_dir, model_path, key)
    if path.is_file():
        try:
            return CostCurve.model_validate_json(path.read_text())
        except ValueError:
            pass  # a corrupt cache file is simply measured again
    curve = calibrate(time_batch, repeats=repeats)
    curve.key = key
    save(curve, path)
    return curve


def save(curve: CostCurve, path: Path) -> None:
    """Write the curve where `load_or_calibrate` finds it, whole or not at all."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(curve.model_dump(), indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only models directory only costs a recalibration next time


# How far one generation's timings move the curve: a run's dozens of verify steps are evidence,
# but one run under a burst of load must not undo a quiet calibration.
LEARNING_WEIGHT = 0.2
MIN_STEPS = 3  # timings of one width (and of single rows) needed before they say anything


def corrected(curve: CostCurve, rows: list[int], seconds: list[float]) -> CostCurve | None:
    """The curve moved toward what one generation's verify steps measured (`rows[i]` tokens
    took `seconds[i]`), or None when they do not say enough: each width seen at least
    MIN_STEPS times is compared with the single-row steps of the same generation, which ran
    under the same load, so a curve calibrated while the machine was busy (or quiet) drifts
    to the truth of the calls that use it."""
    by_width: dict[int, list[float]] = {}
    for width, took in zip(rows, seconds):
        by_width.setdefault(width, []).append(took)
    singles = by_width.pop(1, [])
    if len(singles) < MIN_STEPS or not any(len(v) >= MIN_STEPS for v in by_width.values()):
        return None
    one = statistics.median(singles)
    if one <= 0:
        return None
    ratios = dict(curve.ratios)
    for width, timings in sorted(by_width.items()):
        if len(timings) < MIN_STEPS:
            continue
        seen = min(float(width), max(1.0, statistics.median(timings) / one))
        ratios[width] = (1 - LEARNING_WEIGHT) * curve.cost(width) + LEARNING_WEIGHT * seen
    widest = 1.0
    for width in sorted(ratios):  # still never cheaper than a narrower batch
        widest = max(widest, ratios[width])
        ratios[width] = round(widest, 4)
    ratios[1] = 1.0
    return curve.model_copy(update={"ratios": dict(sorted(ratios.items()))})


def calibrate(time_batch: Callable[[int], float], *, repeats: int = 5) -> CostCurve:
    """Measure the curve. Each width is timed right after a one-token batch and their ratio
    kept: on a shared CPU the load drifts, and a pair measured back to back sees the same load.
    The median over repeats then drops the pairs a burst of load split."""
    time_batch(1)  # warm up: first decodes allocate buffers
    ratios_seen: dict[int, list[float]] = {w: [] for w in WIDTHS if w > 1}
    singles: list[float] = []
    for _ in range(repeats):
        for width, seen in ratios_seen.items():
            one = time_batch(1)
            singles.append(one)
            seen.append(time_batch(width) / one if one > 0 else 1.0)
    # Between 1 (free, as on a big GPU) and k (no batching gain at all): outside that is noise.
    ratios = {w: min(float(w), max(1.0, statistics.median(r))) for w, r in ratios_seen.items()}
    # A batch never costs less than a narrower one; noise can say otherwise.
    widest = 1.0
    for w in sorted(ratios):
        widest = max(widest, ratios[w])
        ratios[w] = widest
    ratios[1] = 1.0
    return CostCurve(ratios=dict(sorted(ratios.items())), single_token_seconds=statistics.median(singles))
