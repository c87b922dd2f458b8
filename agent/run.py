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
from turnout.agent.approvals import ApprovalMode, ApprovalPolicy, Asker, with_policy
from turnout.agent.compose import open_router, open_session
from turnout.agent.host import ServerSpec, builtin_servers
from turnout.agent.loop import AgentConfig, Candidate, build_graph, elapsed_clock
from turnout.agent.testrun import TestOutcome
from turnout.agent.workspace import Scratch, read_text_or_none
from turnout.agent.wrappers import ProtectTests
from turnout.runtimes.base import ChatModel
from turnout.runtimes.errors import TurnoutError, UsageError
from turnout.tools._common import unified_diff


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
    by_target: dict[str, int] = {}  # prompt + completion, per target that answered


class CandidateSummary(BaseModel):
    """One try, as the report shows it (the reply and files stay in the checkpoint)."""

    id: int
    round: int
    seed: int | None
    status: str  # passed | failed | duplicate | unreadable | pending
    route: str = ""  # the target that wrote it
    failures: int
    summary: str
    files: list[str]


class RunReport(BaseModel):
    """What a run did, for people (`render`) and scripts (`--json`)."""

    run_id: str
    # tests_passed | done | already_passing | no_candidate_passed | max_steps | error
    exit_status: str
    steps: int  # model calls
    tokens: Tokens
    wall_seconds: float
    model_seconds: float = 0.0  # of wall_seconds, the model's (prefill and decode, as it reports)
    first_edit_seconds: float = 0.0  # when the winning change landed in the tree; 0 = never
    files_changed: list[str]
    tests_before: TestSummary
    tests_after: TestSummary
    tests_passed: bool
    candidates: list[CandidateSummary] = []
    summary: str = ""  # the model's own paragraph about the change it made
    model: str
    run_dir: str
    error: str = ""
    diff: str = ""


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
    test_command: str | None = None,
    approval_mode: ApprovalMode | None = None,
    asker: Asker | None = None,
    progress: Progress = lambda _: None,
    policy_file: Path | None = None,
) -> RunReport:
    """Run `task` in `repo`. Candidates are tried on a scratch copy; the winner lands in `repo`
    through its edit server, past the approvals: `approval_mode`, else the repository policy's
    `[approvals]`, else auto-edit. The policy is `policy_file`, else the repository's own."""
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
        router = open_router(repo, model, run_id=run_id, logger=logger, policy_file=policy_file)
        rules = router.policy.approvals
        approvals = with_policy(ApprovalPolicy(mode="auto-edit"), rules.mode, rules.tools, approval_mode)
        state: dict[str, Any] = {}
        error = ""
        conn = sqlite3.connect(repo / ".turnout" / "checkpoints.sqlite", check_same_thread=False)
        thread = {"configurable": {"thread_id": run_id}, "recursion_limit": 6 * config.max_candidates + 20}
        try:
            clock = elapsed_clock()
            with (
                open_session(
                    repo, router, servers or builtin_servers(repo, test_command), approvals,
                    errlog=servers_log, asker=asker, notify=lambda line: emit("approval", message=line),
                ) as session,
                Scratch(repo, test_command, errlog=servers_log) as scratch,
            ):
                scratch.wrap(ProtectTests)
                guarded = ProtectTests(session.tools)
                graph = build_graph(session.model, guarded, scratch, repo, task, config, emit, clock).compile(
                    checkpointer=SqliteSaver(conn)
                )
                # Landing touches the user's files, so each step is on disk before the next begins.
                state = graph.invoke(None if resume else {}, thread, durability="sync")
        except TurnoutError as exc:
            error = str(exc)
            emit("run_error", error=error)
        finally:
            if not state:
                state = _last_state(conn, run_id)
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
    diff, changed = tree_diff(repo, state.get("originals") or {})
    prompt, completion = state.get("prompt_tokens", 0), state.get("completion_tokens", 0)
    error = error or state.get("error", "")
    status = "error" if error else (state.get("exit_status") or "error")
    candidates = [Candidate.model_validate(c) for c in state.get("candidates") or []]
    return RunReport(
        run_id=run_id,
        exit_status=status,
        steps=state.get("step", 0),
        tokens=Tokens(
            prompt=prompt, completion=completion, total=prompt + completion,
            cached_prompt=state.get("cached_prompt_tokens", 0),
            by_target=state.get("tokens_by_target") or {},
        ),
        wall_seconds=round(wall, 2),
        model_seconds=round(state.get("model_seconds", 0.0), 2),
        first_edit_seconds=state.get("first_edit_seconds", 0.0),
        files_changed=changed,
        tests_before=TestSummary(exit_code=before.exit_code, summary=before.summary, passed=before.passed),
        tests_after=TestSummary(exit_code=after.exit_code, summary=after.summary, passed=after.passed),
        tests_passed=after.passed,
        candidates=[
            CandidateSummary(id=c.id, round=c.round, seed=c.seed, status=c.status, route=c.route,
                             failures=c.failures, summary=c.summary, files=sorted(c.files))
            for c in candidates
        ],
        summary=state.get("summary", ""),
        model=model,
        run_dir=str(run_dir),
        error=error,
        diff=diff,
    )


def tree_diff(repo: Path, originals: dict[str, str | None]) -> tuple[str, list[str]]:
    """The run's whole change in the user's tree: each landed file against its text before."""
    chunks: list[str] = []
    changed: list[str] = []
    for rel in sorted(originals):
        now = read_text_or_none(repo / rel)
        if now != originals[rel]:
            changed.append(rel)
            chunks.append(unified_diff(rel, originals[rel], now))
    return "".join(chunks), changed


def render(report: RunReport) -> str:
    """The human-readable report: the diff, then a few lines that say how it went."""
    lines = []
    if report.diff:
        lines += [report.diff.rstrip("\n"), ""]
    verdict = {
        "tests_passed": "the tests pass",
        "done": "done; the tests still pass",
        "already_passing": "the tests already passed; nothing to do",
        "no_candidate_passed": "no change passed the tests; the working tree is as it was",
        "max_steps": "out of model calls; the working tree is as it was",
        "error": f"stopped on an error: {report.error}",
    }.get(report.exit_status, report.exit_status)
    tried = report.candidates
    passed = sum(c.status == "passed" for c in tried)
    lines += [f"turnout run {report.run_id}: {verdict}"]
    if report.summary:
        lines += [f"  {report.summary}"]
    lines += [
        f"  tests before: {report.tests_before.summary or report.tests_before.exit_code}",
        f"  tests after:  {report.tests_after.summary or report.tests_after.exit_code}",
        f"  files changed: {', '.join(report.files_changed) or 'none'}",
        f"  candidates: {len(tried)} tried, {passed} passed"
        + "".join(f"; #{c.id} {c.status}: {c.summary}" for c in tried if c.status != "passed")[:300],
        (
            f"  steps: {report.steps}   tokens: {report.tokens.total} "
            f"({report.tokens.prompt} prompt, {report.tokens.cached_prompt} of it cached; "
            f"{report.tokens.completion} completion)   "
            f"wall: {report.wall_seconds:.1f}s (model {report.model_seconds:.1f}s)   model: {report.model}"
        ),
        f"  log: {report.run_dir}/events.jsonl",
    ]
    return "\n".join(lines)


class ProgressSink:
    """Events go to the run log (a structlog logger); a one-line summary of each goes to the
    progress callback."""

    def __init__(self, logger: Any, progress: Progress) -> None:
        self._log = logger
        self._progress = progress

    def __call__(self, event: str, **fields: Any) -> None:
        self._log.info(event, **fields)
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
