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
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from turnout.agent.compose import open_local_model
from turnout.agent.loop import AgentConfig
from turnout.agent.run import run_task
from turnout.bench.agent_tasks import AgentTask, load_tasks, prepare_workspace, verify
from turnout.bench.serve import served_model
from turnout.runtimes.errors import UsageError
from turnout.runtimes.local.models import resolve


class BenchConfig(BaseModel):
    """One configuration compared: the agent's settings and the models that answer."""

    agent: dict[str, Any] = {}  # AgentConfig overrides
    model: str | None = None  # in process, the policy's local target (None: --model)
    # Served by `python -m llama_cpp.server` as the policy's on-prem target for hard work (a
    # stand-in for a cloud or team model); the in-process model keeps the repetitive work.
    hard: str | None = None


FULL = {"samples": 4, "reflections": 1, "alternatives": 4}

# The configurations compared, by name.
CONFIGS: dict[str, BenchConfig] = {
    "greedy": BenchConfig(agent={"samples": 0, "reflections": 0, "alternatives": 0, "mutants": 0}),
    "sampling": BenchConfig(agent={"samples": 4, "reflections": 1, "alternatives": 0}),
    "alternatives": BenchConfig(agent=FULL),
    # Routing: the 0.5B in process answers the sampled tries and reflections, the 1.5B on its
    # own server the greedy first tries; against each model alone.
    "small": BenchConfig(agent=FULL, model="qwen2.5-coder-0.5b"),
    "routed": BenchConfig(agent=FULL, model="qwen2.5-coder-0.5b", hard="qwen2.5-coder-1.5b"),
}


def routed_policy(base_url: str) -> str:
    """turnout.toml for the routed configuration: repetitive work local, hard work on the box."""
    return (
        'version = 1\n\n[targets.local]\nruntime = "llama_cpp"\nlocation = "local"\n\n'
        f'[targets.box]\nruntime = "openai_compat"\nlocation = "onprem"\nbase_url = "{base_url}"\n'
        # A CPU writes a whole file in minutes, not seconds; a retry would only double that.
        'model = "hard-model"\ntimeout_s = 900\nmax_attempts = 1\n\n'
        '[work]\nrepetitive = ["local"]\nhard = ["box"]\nescalation = ["box"]\n'
    )


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
    tokens_by_target: dict[str, int] = {}
    winner_route: str = ""  # the target whose candidate passed


def run_one(
    task: AgentTask, config_name: str, model: Any, work: Path, policy_file: Path | None = None,
    keep: Path | None = None,
) -> TaskResult:
    workspace = prepare_workspace(task, work / f"{config_name}-{task.name}")
    config = AgentConfig(**CONFIGS[config_name].agent)
    started = time.perf_counter()
    report = run_task(task.task, workspace, model, config=config, approval_mode="auto-edit",
                      policy_file=policy_file)
    wall = time.perf_counter() - started
    check = verify(task, workspace)
    if keep is not None:  # the run's events, report and candidates, to see why it went as it did
        shutil.copytree(workspace / ".turnout" / "runs" / report.run_id,
                        keep / f"{config_name}-{task.name}", dirs_exist_ok=True)
    return TaskResult(
        config=config_name, task=task.name, kind=task.kind, bug_class=task.bug_class,
        passed=check.passed, exit_status=report.exit_status, wall_seconds=round(wall, 2),
        first_edit_seconds=report.first_edit_seconds, steps=report.steps,
        candidates=len(report.candidates), prompt_tokens=report.tokens.prompt,
        cached_prompt_tokens=report.tokens.cached_prompt, completion_tokens=report.tokens.completion,
        model_seconds=report.model_seconds, verify_summary=check.summary, model=report.model,
        tokens_by_target=report.tokens.by_target,
        winner_route=next((c.route for c in report.candidates if c.status == "passed"), ""),
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
                # Routing: who answered how much, and whose candidate passed.
                "tokens_by_target": _sum_counts(r.tokens_by_target for r in group),
                "passed_by_target": _sum_counts({r.winner_route: 1} for r in passing if r.winner_route),
            })
    return rows


def _sum_counts(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for count in counts:
        for key, value in count.items():
            total[key] = total.get(key, 0) + value
    return total


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


ModelOpener = Callable[[str], Any]


class ConfigModels:
    """The in-process model of each configuration, opened when first needed and kept while the
    configurations that follow use it; one at a time, so switching closes the last."""

    def __init__(self, opener: ModelOpener, default: str) -> None:
        self._opener = opener
        self.default = default
        self._name = ""
        self._model: Any = None

    def for_config(self, config: BenchConfig) -> Any:
        name = config.model or self.default
        if name != self._name:
            self._model = None  # the last model's memory goes before the next one loads
            self._model = self._opener(name)
            self._name = name
        return self._model


def run_benchmark(
    tasks: list[AgentTask], configs: list[str], models: ConfigModels, record: Path,
    say: Callable[[str], None], threads: int | None = None, keep: Path | None = None,
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
            todo = [t for t in tasks if (config, t.name) not in done]
            results += [done[(config, t.name)] for t in tasks if (config, t.name) in done]
            if not todo:
                continue
            setup = CONFIGS[config]
            with ExitStack() as stack:
                policy_file = None
                if setup.hard:
                    say(f"bench agent: serving {setup.hard} with llama_cpp.server for {config} ...")
                    base_url = stack.enter_context(served_model(
                        resolve(setup.hard), threads=threads or os.cpu_count() or 1, alias="hard-model"
                    ))
                    policy_file = Path(tmp) / f"{config}-policy.toml"
                    policy_file.write_text(routed_policy(base_url), encoding="utf-8")
                say(f"bench agent: {config} on {setup.model or models.default}"
                    + (f" (hard work: {setup.hard})" if setup.hard else "") + " ...")
                model = models.for_config(setup)
                for index, task in enumerate(todo, 1):
                    say(f"bench agent: {config} {index}/{len(todo)} {task.name} ...")
                    result = run_one(task, config, model, Path(tmp), policy_file, keep)
                    say(f"bench agent: {config} {task.name}: {'pass' if result.passed else 'FAIL'} "
                        f"({result.exit_status}, {result.wall_seconds:.0f}s, {result.candidates} candidates)")
                    with record.open("a", encoding="utf-8") as out:
                        out.write(result.model_dump_json() + "\n")
                    results.append(result)
    order = {t.name: i for i, t in enumerate(tasks)}
    return sorted(results, key=lambda r: (configs.index(r.config), order[r.task]))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configs", default="greedy,sampling",
                        help=f"configurations to compare, from {', '.join(CONFIGS)} (default: all)")
    parser.add_argument("--tasks", default="", help="comma-separated task names (default: every task)")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="catalog model or .gguf path")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--out", type=Path, default=Path("build/bench-agent"),
                        help="folder for results.json, plot.png, the record and each run's events in runs/ (default: build/bench-agent)")
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
    # Two llama.cpp processes (the routed configuration's server and this one) must not spin
    # on each other's cores between batches; read by OpenMP when the first model loads.
    if any(CONFIGS[c].hard for c in configs):
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    models = ConfigModels(lambda name: open_local_model(name, threads=args.threads), args.model)
    results = run_benchmark(tasks, configs, models, record, say, threads=args.threads, keep=args.out / "runs")
    rows = summarise(results)
    (args.out / "results.json").write_text(
        json.dumps({"summary": rows, "results": [r.model_dump() for r in results]}, indent=2),
        encoding="utf-8",
    )
    plot(rows, args.out / "plot.png")
    say(f"bench agent: wrote {args.out / 'results.json'} and {args.out / 'plot.png'}")
    print(json.dumps({"summary": rows}, indent=2) if args.json else render(results, rows))
    return 0
