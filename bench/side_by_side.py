"""Two `turnout run`s at once on one machine, against one alone.

llama.cpp threads of two processes decoding on the same cores stall each other; turnout's model
calls take turns across processes instead (`runtimes/local/cputurn.py`). This runs the demo
(`examples/calc`, each run on a fresh copy, its prompt cache empty) alone, then two at once,
`--rounds` times, and reports each run's wall time against the median alone.

    .venv/bin/python -m turnout.bench.side_by_side --rounds 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from turnout.bench.warmstart import EXAMPLE, TASK


def start(folder: Path, name: str, model: str) -> tuple[subprocess.Popen[str], float]:
    repo = folder / name
    shutil.copytree(EXAMPLE, repo)
    process = subprocess.Popen(
        [sys.executable, "-m", "turnout.agent.cli", "run", TASK, "--repo", str(repo), "--model", model, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
    )
    return process, time.perf_counter()


def finish(process: subprocess.Popen[str], started: float) -> dict[str, object]:
    out, _ = process.communicate()
    wall = time.perf_counter() - started
    try:
        status = json.loads(out)["exit_status"]
    except (ValueError, KeyError):
        status = f"no report (exit {process.returncode})"
    return {"wall_seconds": round(wall, 2), "exit_status": status}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m turnout.bench.side_by_side", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    alone: list[dict[str, object]] = []
    together: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="turnout-side-by-side-") as tmp:
        folder = Path(tmp)
        for r in range(args.rounds):
            alone.append(finish(*start(folder, f"alone-{r}", args.model)))
            print(f"round {r + 1} alone: {alone[-1]}", file=sys.stderr)
            pair = [start(folder, f"pair-{r}-{i}", args.model) for i in range(2)]
            together += [finish(*p) for p in pair]
            print(f"round {r + 1} together: {together[-2:]}", file=sys.stderr)
    base = statistics.median(float(a["wall_seconds"]) for a in alone)  # type: ignore[arg-type]
    ratios = [round(float(t["wall_seconds"]) / base, 2) for t in together]  # type: ignore[arg-type]
    result = {"alone": alone, "together": together, "alone_median_s": base, "together_over_alone": ratios,
              "worst_ratio": max(ratios)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"alone: median {base:.1f} s ({', '.join(str(a['exit_status']) for a in alone)})")
        walls = ", ".join(f"{t['wall_seconds']} s" for t in together)
        print(f"two at once: {walls}; "
              f"each over alone {ratios}, worst {max(ratios)}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
