"""The sandbox's cost: the demo's test command inside bubblewrap and outside it, side by side.

    .venv/bin/python bench/sandbox.py [--runs 5] [--json]

The command is what `make demo` runs its tests with (the tests server's default, this Python's
`pytest -q`), on a fresh copy of examples/calc, started through the tests server's own
`run_command` (the allowlisted environment, the process-group kill and the orphan sweep alike),
once with `--sandbox bwrap` and once with `--sandbox none`. Runs alternate between the two, after
one warm-up each, so the shared machine's noise falls on both; a bare `true` is timed the same
way to show the sandbox's fixed start-up cost. Times are wall-clock medians in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from turnout.tools.sandbox import Sandbox, bwrap_problem
from turnout.tools.tests import default_test_command, run_command

CALC = Path(__file__).resolve().parents[1] / "examples" / "calc"
SANDBOXES = {"bwrap": Sandbox("bwrap"), "none": Sandbox("none")}


def time_once(command: str, root: Path, sandbox: Sandbox) -> tuple[float, int]:
    started = time.perf_counter()
    exit_code, timed_out, lines = run_command(command, root, 120, sandbox)
    if timed_out:
        raise SystemExit(f"{command!r} timed out: {lines[-5:]}")
    return (time.perf_counter() - started) * 1000, exit_code


def measure(command: str, root: Path, runs: int) -> dict[str, dict[str, float | int]]:
    times: dict[str, list[float]] = {name: [] for name in SANDBOXES}
    codes: dict[str, set[int]] = {name: set() for name in SANDBOXES}
    for name, sandbox in SANDBOXES.items():
        time_once(command, root, sandbox)  # warm-up: bytecode, page cache
    for _ in range(runs):
        for name, sandbox in SANDBOXES.items():
            elapsed, code = time_once(command, root, sandbox)
            times[name].append(elapsed)
            codes[name].add(code)
    if codes["bwrap"] != codes["none"]:
        raise SystemExit(f"{command!r} exits {codes['bwrap']} in the sandbox but {codes['none']} outside")
    return {name: {"median_ms": round(statistics.median(values), 1), "min_ms": round(min(values), 1),
                   "exit_code": next(iter(codes[name]))} for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per side (default 5)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if problem := bwrap_problem():
        raise SystemExit(f"no sandbox to measure: {problem}")
    with tempfile.TemporaryDirectory(prefix="turnout-bench-sandbox-") as tmp:
        root = Path(tmp) / "calc"
        shutil.copytree(CALC, root)
        results = {
            "demo tests": {"command": default_test_command(), **measure(default_test_command(), root, args.runs)},
            "true": {"command": "true", **measure("true", root, args.runs)},
        }
    if args.json:
        print(json.dumps({"runs": args.runs, "results": results}, indent=2))
        return
    print(f"median of {args.runs} runs, ms   {'outside':>9} {'bwrap':>9} {'cost':>9}")
    for label, row in results.items():
        outside, inside = row["none"]["median_ms"], row["bwrap"]["median_ms"]  # type: ignore[index]
        print(f"{label:<30} {outside:>9.1f} {inside:>9.1f} {inside - outside:>+9.1f}")
    print(f"demo test command: {results['demo tests']['command']} (exit code "
          f"{results['demo tests']['none']['exit_code']} on both sides)")  # type: ignore[index]


if __name__ == "__main__":
    main()
