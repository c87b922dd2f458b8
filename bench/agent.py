"""`turnout bench agent`: the agent on the task suite in bench/tasks, configurations side by side.

Each (configuration, task) pair gets a fresh git workspace made from the task's repo, one
`turnout run` on it, and then the task's own verification: the original tests restored over
whatever the agent did to them, the hidden tests of feature tasks copied in, pytest run in a
separate process. So a task passes only when the code is right, not when the agent says so.

One model process serves every configuration (loaded once; its KV cache is reset between runs by
the runtime's own prefix matching). Results are appended to a JSON-lines record as each run
ends, so an interrupted benchmark resumes with `--record` and runs only what is missing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from turnout.agent.compose import open_local_model
from turnout.agent.loop import AgentConfig
from turnout.agent.run import run_task
from turnout.bench.agent_tasks import AgentTask, load_tasks, prepare_workspace, verify
from turnout.runtimes.errors import UsageError

# The configurations compared, by name. Each is an AgentConfig override.
CONFIGS: dict[str, dict[str, Any]] = {
    "greedy": {"samples": 0, "reflections": 0, "alternatives": 0},
    "sampling": {"samples": 4, "reflections": 1, "alternatives": 0},
    "alternatives": {"samples": 4, "reflections": 1, "alternatives": 4},
}


class TaskResult(BaseModel):
    config: str
    task: str
    kind: str
    bug_class: str
    passed: bool  # the task's own verification, after the run
    exit_status: str
    wall_seconds: float
    first_edit_seconds: float
    steps: int
    candidates: int
    prompt_tokens: int
    cached_prompt_tokens: int
    completion_tokens: int
    model_seconds: float
    verify_summary: str
    model: str


def run_one(task: AgentTask, config_name: str, model: Any, work: Path) -> TaskResult:
    workspace = prepare_workspace(task, work / f"{config_name}-{task.name}")
    config = AgentConfig(**CONFIGS[config_name])
    started = time.perf_counter()
    report = run_task(task.task, workspace, model, config=config, approval_mode="auto-edit")
    wall = time.perf_counter() - started
    check = verify(task, workspace)
    return TaskResult(
        config=config_name, task=task.name, kind=task.kind, bug_class=task.bug_class,
        passed=check.passed, exit_status=report.exit_status, wall_seconds=round(wall, 2),
        first_edit_seconds=report.first_edit_seconds, steps=report.steps,
        candidates=len(report.candidates), prompt_tokens=report.tokens.prompt,
        cached_prompt_tokens=report.tokens.cached_prompt, completion_tokens=report.tokens.completion,
        model_seconds=report.model_seconds, verify_summary=check.summary, model=report.model,
    )


def summarise(results: list[TaskResult]) -> list[dict[str, Any]]:
    """Per configuration and task kind: pass rate, median wall (all runs, and passing runs)."""
    rows = []
    for config in dict.fromkeys(r.config for r in results):
        for kind in ("bug", "feature", "all"):
            group = [r for r in results if r.config == config and (kind == "all" or r.kind == kind)]
            if not group:
                continue
            passing = [r for r in group if r.passed]
            rows.append({
                "config": config, "kind": kind, "tasks": len(group), "passed": len(passing),
                "pass_rate": round(len(passing) / len(group), 3),
                "median_wall_s": round(statistics.median(r.wall_seconds for r in group), 1),
                "median_wall_passing_s": round(statistics.median(r.wall_seconds for r in passing), 1)
                if passing else None,
                "median_candidates": statistics.median(r.candidates for r in group),
                "tokens": sum(r.prompt_tokens + r.completion_tokens for r in group),
                "cached_prompt_tokens": sum(r.cached_prompt_tokens for r in group),
                "model_seconds": round(sum(r.model_seconds for r in group), 1),
                "loop_or_max_steps": sum(r.exit_status == "max_steps" for r in group),
            })
    return rows


def render(results: list[TaskResult], rows: list[dict[str, Any]]) -> str:
    lines = [
        (f"{'config':<10} {'task':<24} {'kind':<8} {'pass':<5} {'exit':<20} {'wall s':>7} "
        f"{'edit s':>7} {'cands':>5} {'tokens':>7}")
    ]
    for r in results:
        lines.append(
            f"{r.config:<10} {r.task:<24} {r.kind:<8} {'yes' if r.passed else 'no':<5} "
            f"{r.exit_status:<20} {r.wall_seconds:>7.1f} {r.first_edit_seconds:>7.1f} "
            f"{r.candidates:>5} {r.prompt_tokens + r.completion_tokens:>7}"
        )
    lines.append("")
    lines.append(f"{'config':<10} {'kind':<8} {'passed':>10} {'rate':>6} {'med wall':>9} "
                 f"{'med wall ok':>12} {'tokens':>8}")
    for row in rows:
        ok = row["median_wall_passing_s"]
        lines.append(
            f"{row['config']:<10} {row['kind']:<8} {row['passed']:>4}/{row['tasks']:<5} "
            f"{row['pass_rate']:>6.0%} {row['median_wall_s']:>9.1f} "
            f"{'-' if ok is None else f'{ok:.1f}':>12} {row['tokens']:>8}"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Pass rate and median wall time per configuration, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals = [r for r in rows if r["kind"] == "all"]
    names = [r["config"] for r in totals]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.bar(names, [100 * r["pass_rate"] for r in totals], color="#3b7dd8")
    left.set_ylabel("tasks passed (%)")
    left.set_ylim(0, 100)
    right.bar(names, [r["median_wall_s"] for r in totals], color="#d8893b")
    right.set_ylabel("median wall per task (s)")
    fig.suptitle(f"turnout bench agent ({totals[0]['tasks'] if totals else 0} tasks per configuration)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_benchmark(
    tasks: list[AgentTask], configs: list[str], model: Any, record: Path,
    say: Callable[[str], None],
) -> list[TaskResult]:
    done = {}
    if record.exists():
        for line in record.read_text(encoding="utf-8").splitlines():
            if line.strip():
                result = TaskResult.model_validate_json(line)
                done[(result.config, result.task)] = result
    results: list[TaskResult] = []
    with tempfile.TemporaryDirectory(prefix="turnout-bench-agent-") as tmp:
        for config in configs:
            for index, task in enumerate(tasks, 1):
                if (config, task.name) in done:
                    results.append(done[(config, task.name)])
                    continue
                say(f"bench agent: {config} {index}/{len(tasks)} {task.name} ...")
                result = run_one(task, config, model, Path(tmp))
                say(f"bench agent: {config} {task.name}: {'pass' if result.passed else 'FAIL'} "
                    f"({result.exit_status}, {result.wall_seconds:.0f}s, {result.candidates} candidates)")
                with record.open("a", encoding="utf-8") as out:
                    out.write(result.model_dump_json() + "\n")
                results.append(result)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configs", default="greedy,sampling",
                        help=f"configurations to compare, from {', '.join(CONFIGS)} (default: all)")
    parser.add_argument("--tasks", default="", help="comma-separated task names (default: every task)")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="catalog model or .gguf path")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--out", type=Path, default=Path("build/bench-agent"),
                        help="folder for results.json, plot.png and the record (default: build/bench-agent)")
    parser.add_argument("--record", type=Path, default=None,
                        help="JSON-lines record to resume from and append to (default: OUT/record.jsonl)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run_cli(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise UsageError(f"--configs: unknown {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    try:
        tasks = load_tasks(names=[t.strip() for t in args.tasks.split(",") if t.strip()] or None)
    except ValueError as exc:
        raise UsageError(f"--tasks: {exc}") from None
    args.out.mkdir(parents=True, exist_ok=True)
    record = args.record or args.out / "record.jsonl"
    say(f"bench agent: loading {args.model} ...")
    model = open_local_model(args.model, threads=args.threads)
    results = run_benchmark(tasks, configs, model, record, say)
    rows = summarise(results)
    (args.out / "results.json").write_text(
        json.dumps({"summary": rows, "results": [r.model_dump() for r in results]}, indent=2),
        encoding="utf-8",
    )
    plot(rows, args.out / "plot.png")
    say(f"bench agent: wrote {args.out / 'results.json'} and {args.out / 'plot.png'}")
    print(json.dumps({"summary": rows}, indent=2) if args.json else render(results, rows))
    return 0
