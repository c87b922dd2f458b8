"""Warm starts across processes: the first model reply of a `turnout run` whose prompt a
previous process already evaluated (its state read from the repository's `.turnout/kv`)
against the same run with that folder emptied.

Each run is a separate `turnout run` process on a copy of `examples/calc`, undone after it
(`turnout undo`) so the next one starts from the same tree and the same failing tests. Cold and
warm alternate, `--pairs` times, so a noisy machine slows both alike; the figures are medians.
From each run's events: the first model reply's prompt tokens, how many were read from disk,
its prompt seconds (prefill, the load included), and the run's wall time.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m turnout.bench.warmstart --pairs 3
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

from pydantic import BaseModel

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "calc"
TASK = "make the failing tests pass"


class RunFigures(BaseModel):
    kind: str  # cold | warm
    exit_status: str
    prompt_tokens: int
    disk_prompt_tokens: int
    prompt_seconds: float
    wall_seconds: float


def turnout(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "turnout.agent.cli", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, check=False)


def one_run(repo: Path, kind: str, model: str, threads: int | None) -> RunFigures:
    if kind == "cold":
        shutil.rmtree(repo / ".turnout" / "kv", ignore_errors=True)
    started = time.perf_counter()
    extra = ["--threads", str(threads)] if threads else []
    done = turnout("run", TASK, "--repo", str(repo), "--model", model, "--json", *extra)
    wall = time.perf_counter() - started
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise SystemExit(f"turnout run printed no report (exit {done.returncode}):\n{done.stderr[-2000:]}")
    events = [json.loads(line) for line in Path(report["run_dir"], "events.jsonl").read_text().splitlines()]
    first = next((e for e in events if e.get("event") == "model_reply"), None)
    if first is None:
        raise SystemExit(f"the run made no model call: {report.get('exit_status')}")
    undone = turnout("undo", report["run_id"], "--repo", str(repo))
    if undone.returncode != 0 and report.get("files_changed"):
        raise SystemExit(f"turnout undo failed: {undone.stderr}")
    return RunFigures(
        kind=kind, exit_status=report["exit_status"], prompt_tokens=first["prompt_tokens"],
        disk_prompt_tokens=first.get("disk_prompt_tokens", 0), prompt_seconds=first["prefill_s"],
        wall_seconds=round(wall, 2),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m turnout.bench.warmstart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="cold/warm pairs (default 3)")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="turnout-warmstart-") as tmp:
        repo = Path(tmp) / "calc"
        shutil.copytree(EXAMPLE, repo)
        runs: list[RunFigures] = []
        for pair in range(args.pairs):
            for kind in ("cold", "warm"):
                runs.append(one_run(repo, kind, args.model, args.threads))
                print(f"pair {pair + 1} {kind}: {runs[-1].model_dump_json()}", file=sys.stderr)
    summary = {}
    for kind in ("cold", "warm"):
        group = [r for r in runs if r.kind == kind]
        summary[kind] = {
            "prompt_seconds": statistics.median(r.prompt_seconds for r in group),
            "disk_prompt_tokens": statistics.median(r.disk_prompt_tokens for r in group),
            "prompt_tokens": statistics.median(r.prompt_tokens for r in group),
            "wall_seconds": statistics.median(r.wall_seconds for r in group),
            "exit_status": sorted({r.exit_status for r in group}),
        }
    cold, warm = summary["cold"], summary["warm"]
    summary["prompt_seconds_ratio"] = round(warm["prompt_seconds"] / cold["prompt_seconds"], 3)
    summary["wall_ratio"] = round(warm["wall_seconds"] / cold["wall_seconds"], 3)
    if args.json:
        print(json.dumps({"summary": summary, "runs": [r.model_dump() for r in runs]}, indent=2))
    else:
        print("| run | prompt tokens | read from disk | prompt s | run wall s | exit |")
        print("|---|---|---|---|---|---|")
        for kind in ("cold", "warm"):
            s = summary[kind]
            print(f"| {kind} | {s['prompt_tokens']:.0f} | {s['disk_prompt_tokens']:.0f} | "
                  f"{s['prompt_seconds']:.2f} | {s['wall_seconds']:.1f} | {', '.join(s['exit_status'])} |")
        print(f"warm/cold: prompt seconds {summary['prompt_seconds_ratio']}x, run wall {summary['wall_ratio']}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
