"""One agent run: start the tool servers, drive the graph to the end, write the log and report.

Each run lives in `<repo>/.turnout/runs/<run id>/`: `events.jsonl` (one JSON event per line,
never a secret: the router logs hashes and sizes, not payloads) and `report.json`. The graph's
checkpoints go to `<repo>/.turnout/checkpoints.sqlite`, keyed by run id, so
`turnout run --resume RUN_ID` carries on from the last completed step of a killed run.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import structlog
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import BaseModel
from turnout.agent.approvals import (
    ApprovalMode,
    ApprovalPolicy,
    Asker,
    GuardedHost,
    ToolPins,
    tool_pins_path,
    with_policy,
)
from turnout.agent.host import McpHost, ServerSpec, builtin_servers
from turnout.agent.loop import AgentConfig, EventSink, build_graph, unified_diff
from turnout.agent.testrun import TestOutcome
from turnout.router.router import PolicyRouter
from turnout.runtimes.base import ChatModel
from turnout.runtimes.errors import TurnoutError, UsageError


class TestSummary(BaseModel):
    __test__ = False

    exit_code: int
    summary: str
    passed: bool


class Tokens(BaseModel):
    prompt: int
    completion: int
    total: int
    cached_prompt: int = 0  # of `prompt`, those read from the local runtime's KV cache


class RunReport(BaseModel):
    """What a run did, for people (`render`) and scripts (`--json`)."""

    run_id: str
    exit_status: str  # tests_passed | already_passing | max_steps | loop_detected | error
    steps: int
    tokens: Tokens
    wall_seconds: float
    model_seconds: float = 0.0  # of wall_seconds, the model's (prefill and decode, as it reports)
    files_changed: list[str]
    tests_before: TestSummary
    tests_after: TestSummary
    tests_passed: bool
    invalid_calls: int
    tool_errors: int
    model: str
    run_dir: str
    error: str = ""
    diff: str = ""
    loop_evidence: list[dict[str, Any]] = []  # what the loop detector saw and answered, in order


Progress = Callable[[str], None]


def run_task(
    task: str,
    repo: Path,
    model: ChatModel,
    *,
    config: AgentConfig | None = None,
    run_id: str | None = None,
    resume: bool = False,
    servers: list[ServerSpec] | None = None,
    approval_mode: ApprovalMode | None = None,
    asker: Asker | None = None,
    progress: Progress = lambda _: None,
) -> RunReport:
    """Run `task` in `repo`. The model's tool calls pass the approvals: `approval_mode`, else
    the repository policy's `[approvals]`, else auto-edit (reads and edits by turnout's own
    servers run, any other command is asked of `asker`; with no one to ask it is refused and
    the model told so)."""
    config = config or AgentConfig()
    repo = check_repo(repo)
    run_id = run_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    run_dir = repo / ".turnout" / "runs" / run_id
    if resume:
        check_resume(repo, run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with (
        (run_dir / "events.jsonl").open("a", encoding="utf-8") as events_file,
        (run_dir / "servers.log").open("a", encoding="utf-8") as servers_log,
    ):
        logger = run_logger(events_file, run_id)
        emit = ProgressSink(logger, progress)
        emit("run_start", task=task, repo=str(repo), model=model.name, resume=resume)
        # The repo's policy (turnout.toml, [tool.turnout], or local only); `model` is its local target.
        router = PolicyRouter.for_repo(repo, model, run_id=run_id, logger=logger)
        rules = router.policy.approvals
        approvals = with_policy(ApprovalPolicy(mode="auto-edit"), rules.mode, rules.tools, approval_mode)
        state: dict[str, Any] = {}
        error = ""
        conn = sqlite3.connect(repo / ".turnout" / "checkpoints.sqlite", check_same_thread=False)
        try:
            with McpHost(servers or builtin_servers(repo), errlog=servers_log, roots=[repo]) as host:
                guarded = GuardedHost(
                    host, approvals, pins=ToolPins(tool_pins_path()), asker=asker,
                    notify=lambda line: emit("approval", message=line),
                )
                graph = build_graph(router, guarded, repo, task, config, emit).compile(
                    checkpointer=SqliteSaver(conn)
                )
                thread = {"configurable": {"thread_id": run_id}, "recursion_limit": 4 * config.max_steps + 10}
                # Edits touch the user's files, so each step is on disk before the next begins.
                state = graph.invoke(None if resume else {}, thread, durability="sync")
        except TurnoutError as exc:
            error = str(exc)
            emit("run_error", error=error)
            if not state:
                state = _last_state(conn, run_id)
        finally:
            conn.close()
        report = make_report(state, repo, run_id, run_dir, model.name, time.perf_counter() - started, error)
        emit(
            "run_end", exit_status=report.exit_status, steps=report.steps,
            tokens=report.tokens.total, files_changed=report.files_changed,
        )
    write_atomic(run_dir / "report.json", report.model_dump_json(indent=2))
    return report


def check_repo(repo: Path) -> Path:
    if not repo.exists():
        raise UsageError(f"--repo {repo}: no such directory; give the path of the repository to work in")
    if not repo.is_dir():
        raise UsageError(f"--repo {repo}: not a directory; give the path of the repository to work in")
    return repo.resolve()


def check_resume(repo: Path, run_id: str) -> None:
    runs = repo / ".turnout" / "runs"
    if not (runs / run_id).is_dir():
        known = sorted(p.name for p in runs.glob("*") if p.is_dir())[-5:] if runs.is_dir() else []
        hint = f"recent runs: {', '.join(known)}" if known else "this repository has no runs yet"
        raise UsageError(f"--resume {run_id}: no such run in {runs}; {hint}")


def _last_state(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    snapshot = SqliteSaver(conn).get({"configurable": {"thread_id": run_id}})
    return dict(snapshot["channel_values"]) if snapshot else {}


def make_report(
    state: dict[str, Any], repo: Path, run_id: str, run_dir: Path, model: str, wall: float, error: str
) -> RunReport:
    empty = TestOutcome(exit_code=-1, summary="not run").model_dump()
    before = TestOutcome.model_validate(state.get("tests_before") or empty)
    after = TestOutcome.model_validate(state.get("tests_after") or empty)
    diff, changed = unified_diff(repo, state.get("originals") or {})
    prompt, completion = state.get("prompt_tokens", 0), state.get("completion_tokens", 0)
    status = "error" if error else (state.get("exit_status") or "error")
    return RunReport(
        run_id=run_id,
        exit_status=status,
        steps=state.get("step", 0),
        tokens=Tokens(
            prompt=prompt, completion=completion, total=prompt + completion,
            cached_prompt=state.get("cached_prompt_tokens", 0),
        ),
        wall_seconds=round(wall, 2),
        model_seconds=round(state.get("model_seconds", 0.0), 2),
        files_changed=changed,
        tests_before=TestSummary(exit_code=before.exit_code, summary=before.summary, passed=before.passed),
        tests_after=TestSummary(exit_code=after.exit_code, summary=after.summary, passed=after.passed),
        tests_passed=after.passed,
        invalid_calls=state.get("invalid_calls", 0),
        tool_errors=state.get("tool_errors", 0),
        model=model,
        run_dir=str(run_dir),
        error=error,
        diff=diff,
        loop_evidence=list((state.get("loop") or {}).get("evidence", [])),
    )


def render(report: RunReport) -> str:
    """The human-readable report: the diff, then a few lines that say how it went."""
    lines = []
    if report.diff:
        lines += [report.diff.rstrip("\n"), ""]
    verdict = {
        "tests_passed": "the tests pass",
        "already_passing": "the tests already passed; nothing to do",
        "max_steps": "out of steps; the tests still fail",
        "loop_detected": "stopped: the run was going round in circles; the tests still fail",
        "error": f"stopped on an error: {report.error}",
    }.get(report.exit_status, report.exit_status)
    lines += [
        f"turnout run {report.run_id}: {verdict}",
        f"  tests before: {report.tests_before.summary or report.tests_before.exit_code}",
        f"  tests after:  {report.tests_after.summary or report.tests_after.exit_code}",
        f"  files changed: {', '.join(report.files_changed) or 'none'}",
        (
            f"  steps: {report.steps}   tokens: {report.tokens.total} "
            f"({report.tokens.prompt} prompt, {report.tokens.cached_prompt} of it cached; "
            f"{report.tokens.completion} completion)   "
            f"wall: {report.wall_seconds:.1f}s (model {report.model_seconds:.1f}s)   model: {report.model}"
        ),
        f"  log: {report.run_dir}/events.jsonl",
    ]
    lines += [
        f"  loop: step {e['step']} {e['signal']} -> {e['action']}: {e['detail']}"
        for e in report.loop_evidence
    ]
    return "\n".join(lines)


class ProgressSink(EventSink):
    """Events go to the run log; a one-line summary of each goes to the progress callback."""

    def __init__(self, logger: Any, progress: Progress) -> None:
        super().__init__(logger)
        self._progress = progress

    def __call__(self, event: str, **fields: Any) -> None:
        super().__call__(event, **fields)
        shown = {k: v for k, v in fields.items() if k not in {"task", "repo"} and v not in ([], "", None)}
        self._progress(f"{event} " + " ".join(f"{k}={v}" for k, v in shown.items()))


def run_logger(stream: TextIO, run_id: str) -> Any:
    """A structlog logger that writes JSON lines to this run's events file only."""
    return structlog.wrap_logger(
        structlog.WriteLogger(stream),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        context_class=dict,
    ).bind(run_id=run_id)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
