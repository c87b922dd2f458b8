"""Aider on the same tasks and the same GGUF, verified the same way as `turnout bench agent`.

A benchmark script, not a test: it needs Aider in a virtualenv of its own (its pinned
dependencies clash with turnout's) and serves the model with `python -m llama_cpp.server`, the
OpenAI-compatible server of the llama-cpp-python that turnout already installs.

    python3 -m venv build/aider-venv
    build/aider-venv/bin/pip install aider-chat==0.86.2
    .venv/bin/python -m turnout.bench.aider_compare [--tasks free_shipping,paginate] [--json]

Each task gets a fresh workspace; Aider runs once with `--edit-format whole --auto-test`
(it reruns the tests after each edit and feeds failures back, up to its own retry limit), then
the task's verification restores the original tests and runs them, as for turnout. Then turnout
runs the same tasks (`--turnout-config`, in process, after the server has stopped) and the two
are printed side by side. Both records resume: a task already in Aider's record
(build/bench-agent/aider.jsonl) or in turnout's (`--turnout-record`, the record `turnout bench
agent` writes) is not run again.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from turnout.agent.compose import open_local_model
from turnout.bench.agent import ConfigModels, run_benchmark
from turnout.bench.agent_tasks import load_tasks, prepare_workspace, verify
from turnout.bench.serve import served_model
from turnout.runtimes.local import models


def run_aider(aider: Path, workspace: Path, task: str, base_url: str, timeout: float) -> tuple[int, float]:
    env = {**os.environ, "OPENAI_API_KEY": "sk-local", "OPENAI_API_BASE": base_url}
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [str(aider), "--model", "openai/local-model", "--edit-format", "whole", "--auto-test",
             "--test-cmd", f"{sys.executable} -m pytest -q", "--yes-always", "--no-auto-commits",
             "--no-gitignore", "--no-show-model-warnings", "--no-check-update", "--no-analytics",
             "--map-tokens", "1024", "--message", task],
            cwd=workspace, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
            check=False,
        )
        code = done.returncode
    except subprocess.TimeoutExpired:
        code = -9
    return code, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="", help="comma-separated task names (default: all)")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="catalog model or .gguf path")
    parser.add_argument("--aider", type=Path, default=Path("build/aider-venv/bin/aider"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per task")
    parser.add_argument("--record", type=Path, default=Path("build/bench-agent/aider.jsonl"),
                        help="Aider's rows: resumed from and appended to")
    parser.add_argument("--turnout-config", default="alternatives",
                        help="the `turnout bench agent` configuration to compare (default: alternatives)")
    parser.add_argument("--turnout-record", type=Path, default=Path("build/bench-agent/record.jsonl"),
                        help="turnout's rows: resumed from and appended to, as `turnout bench agent --record`")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    args.aider = args.aider.resolve()  # Aider runs in each task's workspace
    if not args.aider.exists():
        print(f"{args.aider} not found; install Aider first (see this module's docstring)", file=sys.stderr)
        return 2
    tasks = load_tasks(names=[t for t in args.tasks.split(",") if t] or None)
    args.record.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if args.record.exists():
        for line in args.record.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["task"]] = row
    todo = [t for t in tasks if t.name not in done]
    if todo:
        with (served_model(models.resolve(args.model), threads=args.threads) as base_url,
              tempfile.TemporaryDirectory(prefix="turnout-aider-") as tmp):
            for task in todo:
                workspace = prepare_workspace(task, Path(tmp) / task.name)
                code, wall = run_aider(args.aider, workspace, task.task, base_url, args.timeout)
                check = verify(task, workspace)
                row = {"config": "aider", "task": task.name, "kind": task.kind, "passed": check.passed,
                       "aider_exit": code, "wall_seconds": round(wall, 1), "verify_summary": check.summary}
                print(f"aider {task.name}: {'pass' if check.passed else 'FAIL'} ({wall:.0f}s)", file=sys.stderr)
                with args.record.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(row) + "\n")
                done[task.name] = row
    aider = [done[t.name] for t in tasks]
    # turnout on the same tasks after the server is gone (one model process at a time); rows
    # already in its record are kept, so a `turnout bench agent` run just before is reused.
    models_for = ConfigModels(lambda name: open_local_model(name, threads=args.threads), args.model)
    ours = run_benchmark(tasks, [args.turnout_config], models_for, args.turnout_record,
                         lambda line: print(line, file=sys.stderr), threads=args.threads)
    by_task = {r.task: r for r in ours}
    rows = [{"task": a["task"], "kind": a["kind"], "aider": a["passed"], "aider_wall_s": a["wall_seconds"],
             "turnout": by_task[a["task"]].passed, "turnout_wall_s": by_task[a["task"]].wall_seconds}
            for a in aider]
    summary = {name: {"passed": sum(r[name] for r in rows), "tasks": len(rows),
                      "median_wall_s": statistics.median(r[f"{name}_wall_s"] for r in rows) if rows else 0.0}
               for name in ("turnout", "aider")}
    if args.json:
        print(json.dumps({"summary": summary, "results": rows}, indent=2))
    else:
        print(f"{'task':<24} {'kind':<8} {'turnout':>8} {'wall s':>7} {'aider':>6} {'wall s':>7}")
        for r in rows:
            print(f"{r['task']:<24} {r['kind']:<8} {'pass' if r['turnout'] else 'FAIL':>8} "
                  f"{r['turnout_wall_s']:>7.0f} {'pass' if r['aider'] else 'FAIL':>6} {r['aider_wall_s']:>7.0f}")
        for name, total in summary.items():
            print(f"{name}: {total['passed']}/{total['tasks']} passed, median wall {total['median_wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
