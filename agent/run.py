"""One agent run: start the tool servers, drive the graph to the end, write the log and report.

Each run lives in `<repo>/.turnout/runs/<run id>/`: `events.jsonl` (one JSON event per line,
never a secret: the router logs hashes and sizes, not payloads) and `report.json`. The graph's
checkpoints go to the policy's `[state]` store (`<repo>/.turnout/checkpoints.sqlite`, or a shared
PostgreSQL database: `agent/state.py`), keyed by run id, so `turnout run --resume RUN_ID` carries
on from the last completed step of a killed run, from another checkout too with a shared store. `run.json`
says what the run is for (its task) and whether a process is working on it (`turnout runs`);
`changes.json` holds the bytes of every file the run wrote, from before it wrote them
(`turnout undo`, `agent/undo.py`). An interrupted run (Ctrl-C, SIGTERM) writes its report with
exit status `interrupted` before it stops.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import structlog
from pydantic import BaseModel
from turnout.agent.approvals import ApprovalMode, ApprovalPolicy, Asker, with_policy
from turnout.agent.compose import open_router, open_session
from turnout.agent.host import ServerSpec, builtin_servers
from turnout.agent.loop import AgentConfig, Candidate, build_graph, elapsed_clock
from turnout.agent.state import (
    RunStamp,
    check_same_repository,
    last_state,
    open_store,
    redact_url,
    repo_identity,
    run_config,
    store_errors,
    stored_runs,
    stored_stamp,
)
from turnout.agent.testrun import TestOutcome
from turnout.agent.undo import RecordWrites, load_record
from turnout.agent.workspace import SKIPPED_DIRS, Scratch, read_text_or_none
from turnout.agent.wrappers import ProtectTests
from turnout.router.atrest import open_private, private_dir, state_dir, write_private
from turnout.router.policy import TargetConfig, load_policy
from turnout.runtimes.base import ChatModel, ChatRequest, ChatResponse
from turnout.runtimes.errors import TurnoutError, UsageError
from turnout.runtimes.remote.retry import Pricing
from turnout.tools._common import unified_diff
from turnout.tools.sandbox import Sandbox, choose_sandbox


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
    # tests_passed | done | already_passing | no_candidate_passed | max_steps | error | interrupted
    exit_status: str
    steps: int  # model calls
    tokens: Tokens
    wall_seconds: float
    # What the replies cost at their targets' prices (turnout.toml's cost_per_mtok_*; 0 unpriced).
    cost_usd: float = 0.0
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


class RunMeta(BaseModel):
    """`run.json`: what a run is for, and whether a process is at work on it."""

    run_id: str
    task: str
    started: str  # ISO 8601, UTC
    model: str
    pid: int = 0  # the process working on it, while `active`
    active: bool = False
    # The repository the run is of, when it started: its remote's URL and head commit (git).
    remote: str = ""
    head: str = ""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run; its report (exit status `interrupted`) is written."""

    def __init__(self, report: RunReport) -> None:
        super().__init__(f"run {report.run_id} interrupted")
        self.report = report


Progress = Callable[[str], None]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


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
    status: Progress = lambda _: None,
    allow_unsandboxed: bool = False,
) -> RunReport:
    """Run `task` in `repo`. Candidates are tried on a scratch copy; the winner lands in `repo`
    through its edit server, past the approvals: `approval_mode`, else the repository policy's
    `[approvals]`, else auto-edit. The policy is `policy_file`, else the repository's own.
    `progress` hears a line about each step, `status` what the run is doing next. Where no
    sandbox protects the commands (`tools/sandbox.py`), a mode that runs them without asking
    (auto-edit, full-auto) is refused unless `allow_unsandboxed`.

    Ctrl-C (or SIGTERM, which the command line turns into one) writes the report, exit status
    `interrupted`, and raises `RunInterrupted` carrying it."""
    config = config or AgentConfig()
    repo = check_repo(repo)
    # What the tests server (sandbox "auto") protects every command the run executes with.
    sandbox = choose_sandbox("auto")
    check_sandboxed(sandbox, approval_mode or load_policy(repo, policy_file).approvals.mode or "auto-edit",
                    allow_unsandboxed)
    run_id = run_id or new_run_id()
    run_dir = repo / ".turnout" / "runs" / run_id
    if resume:
        check_resume(repo, run_id, policy_file=policy_file)
    here = repo_identity(repo)
    state_dir(repo)  # .turnout/: 0700, files 0600, git-ignored (it holds payloads)
    private_dir(run_dir)
    progress(f"run {run_id} in {repo}; if it stops, `turnout run --resume {run_id}` carries on")
    progress(f"commands run in sandbox: {sandbox.describe()}")
    started = time.perf_counter()
    with (
        at_work_on(run_dir, RunMeta(run_id=run_id, task=task, started=utc_now(), model=model.name,
                                    remote=here.remote, head=here.head)) as meta,
        open_private(run_dir / "events.jsonl") as events_file,
        open_private(run_dir / "servers.log") as servers_log,
    ):
        logger = run_logger(events_file, run_id)
        emit = ProgressSink(logger, progress, status)
        # The task may quote what it is about (a customer's row, a key): a hash and a length.
        emit("run_start", task_sha256=hashlib.sha256(task.encode()).hexdigest()[:16], task_chars=len(task),
             repo=str(repo), remote=here.remote, head=here.head, model=model.name, resume=resume,
             sandbox=sandbox.kind)
        # The repo's policy (turnout.toml, [tool.turnout], or local only); `model` is its local target.
        router = open_router(repo, model, run_id=run_id, logger=logger, policy_file=policy_file)
        rules = router.policy.approvals
        approvals = with_policy(ApprovalPolicy(mode="auto-edit"), rules.mode, rules.tools, approval_mode)
        state: dict[str, Any] = {}
        error = ""
        interrupted = False
        priced = PricedModel(router, router.policy.targets, run_dir / "cost.json")
        stamp = RunStamp(turnout_task=meta.task, turnout_model=meta.model, turnout_started=meta.started,
                         turnout_repo=str(repo), turnout_remote=meta.remote or here.remote,
                         turnout_head=meta.head or here.head)
        if resume and (note := check_same_repository(stamp, here, run_id)):
            progress(note)
        thread = run_config(run_id, stamp, 6 * (config.max_candidates + config.mutants) + 20)
        store = contextlib.ExitStack()  # the state store: open for the run, closed after its last read
        saver = None
        try:
            saver = store.enter_context(open_store(repo, router.policy.state))
            clock = elapsed_clock()
            with (
                open_session(
                    repo, router, servers or builtin_servers(repo, test_command), approvals,
                    errlog=servers_log, asker=asker, notify=lambda line: emit("approval", message=line),
                ) as session,
                Scratch(repo, test_command, errlog=servers_log) as scratch,
            ):
                scratch.wrap(ProtectTests)
                # What the run writes in the user's tree is recorded first, for `turnout undo`.
                guarded = RecordWrites(ProtectTests(session.tools), repo, run_dir, run_id)
                graph = build_graph(priced, guarded, scratch, repo, task, config, emit, clock).compile(
                    checkpointer=saver
                )
                # Landing touches the user's files, so each step is on disk before the next begins.
                state = graph.invoke(None if resume else {}, thread, durability="sync")
        except TurnoutError as exc:
            error = str(exc)
            emit("run_error", error=error)
        except store_errors() as exc:  # the shared store went away mid-run
            error = f"the state store failed: {redact_url(str(exc)).strip()}"
            emit("run_error", error=error)
        except KeyboardInterrupt:
            # The last completed step is checkpointed; the report says where the run stopped.
            interrupted = True
            emit("run_interrupted")
        finally:
            with store:
                if not state and saver is not None:
                    with contextlib.suppress(*store_errors()):
                        state = last_state(saver, run_id)
        report = make_report(state, repo, run_id, run_dir, model.name, time.perf_counter() - started, error)
        report.cost_usd = round(priced.cost_usd, 6)
        if interrupted:
            report.exit_status = "interrupted"
        emit(
            "run_end", exit_status=report.exit_status, steps=report.steps,
            tokens=report.tokens.total, files_changed=report.files_changed,
        )
    write_atomic(run_dir / "report.json", report.model_dump_json(indent=2))
    if report.exit_status == "interrupted":
        raise RunInterrupted(report)
    return report


def target_prices(targets: Mapping[str, TargetConfig]) -> dict[str, Pricing]:
    """The price of each target that has one, by target name (a reply's `route`)."""
    return {
        name: Pricing(input_per_mtok=t.cost_per_mtok_input, output_per_mtok=t.cost_per_mtok_output)
        for name, t in targets.items() if t.cost_per_mtok_input or t.cost_per_mtok_output
    }


class PricedModel:
    """The run's model, pricing each reply at the price of the target that answered it. The sum
    is kept in the run's `cost.json` after every priced reply, so a resumed run adds to what the
    interrupted part spent (a reply the kill cut off before its checkpoint is paid twice, as
    it was)."""

    def __init__(self, inner: ChatModel, targets: Mapping[str, TargetConfig], path: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self._prices = target_prices(targets)
        self._path = path
        try:
            self.cost_usd = float(json.loads(path.read_text(encoding="utf-8"))["cost_usd"])
        except (OSError, ValueError, KeyError, TypeError):
            self.cost_usd = 0.0

    def chat(self, request: ChatRequest) -> ChatResponse:
        response = self.inner.chat(request)
        price = self._prices.get(response.route)
        if price is not None:
            self.cost_usd += price.cost(response.usage)
            write_atomic(self._path, json.dumps({"cost_usd": self.cost_usd}))
        return response


@contextlib.contextmanager
def at_work_on(run_dir: Path, fresh: RunMeta) -> Iterator[RunMeta]:
    """Mark the run as worked on by this process (`run.json`) until the block ends, however it
    ends. A resumed run keeps its own task and start time."""
    meta = read_meta(run_dir) or fresh
    write_atomic(run_dir / "run.json", meta.model_copy(update={"pid": os.getpid(), "active": True})
                 .model_dump_json(indent=2))
    try:
        yield meta
    finally:
        write_atomic(run_dir / "run.json", meta.model_dump_json(indent=2))


def check_repo(repo: Path) -> Path:
    if not repo.exists():
        raise UsageError(f"--repo {repo}: no such directory; give the path of the repository to work in")
    if not repo.is_dir():
        raise UsageError(f"--repo {repo}: not a directory; give the path of the repository to work in")
    return repo.resolve()


_PYTEST_CONFIGS = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def check_sandboxed(sandbox: Sandbox, mode: ApprovalMode, allow_unsandboxed: bool) -> None:
    """Refuse to run commands unasked (auto-edit, full-auto) with nothing to contain them."""
    if sandbox.kind == "none" and mode != "ask" and not allow_unsandboxed:
        raise UsageError(
            f"approval mode {mode} runs the tests and the candidates' code without asking, and no "
            f"sandbox protects them here: {sandbox.note}. Install bubblewrap (`make install` as "
            "root, or apt-get install bubblewrap), or pass --allow-unsandboxed to run them "
            "unprotected"
        )


def check_has_tests(repo: Path, test_command: str | None) -> None:
    """Stop before a model loads when the default test command (pytest) would find no test: a
    run checks every change against the tests, and without any it cannot tell a fix from a
    break. A configured command, or a pytest configuration that names its own test files
    (`python_files`), is trusted."""
    if test_command:
        return
    for name in _PYTEST_CONFIGS:
        text = read_text_or_none(repo / name) or ""
        if "python_files" in text:
            return
    for directory, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
        if any(f.endswith(".py") and (f.startswith("test_") or f.endswith("_test.py")) for f in files):
            return
    raise UsageError(
        f"{repo} has no tests pytest would find (no test_*.py or *_test.py file), and a run "
        "checks every change against the tests; add a test, or name the command that runs "
        "yours with --test-command CMD (e.g. --test-command 'npm test' or 'make check')"
    )


def check_resume(repo: Path, run_id: str, flag: str = "--resume", policy_file: Path | None = None) -> None:
    """The run exists here, or in the shared state store (then this checkout adopts it)."""
    runs = repo / ".turnout" / "runs"
    if not (runs / run_id).is_dir() and not adopt_run(repo, run_id, policy_file):
        known = sorted(p.name for p in runs.glob("*") if p.is_dir())[-5:] if runs.is_dir() else []
        hint = (f"recent runs: {', '.join(known)} (`turnout runs` lists them)" if known
                else "this repository has no runs yet")
        raise UsageError(f"{flag} {run_id}: no such run in {runs}; {hint}")


def adopt_run(repo: Path, run_id: str, policy_file: Path | None = None) -> bool:
    """Take on a run this checkout has never seen, from the policy's shared state store: its
    `run.json` is written from the run's stamp in the store, so the run resumes here. False when
    the store is this checkout's own, or holds no such run; refused for another repository's run."""
    state = load_policy(repo, policy_file).state
    if state.checkpointer == "sqlite":
        return False
    with open_store(repo, state) as saver:
        stamp = stored_stamp(saver, run_id)
    if stamp is None:
        return False
    check_same_repository(stamp, repo_identity(repo), run_id)
    state_dir(repo)
    run_dir = repo / ".turnout" / "runs" / run_id
    private_dir(run_dir)
    write_atomic(run_dir / "run.json", RunMeta(
        run_id=run_id, task=stamp.turnout_task, started=stamp.turnout_started, model=stamp.turnout_model,
        remote=stamp.turnout_remote, head=stamp.turnout_head,
    ).model_dump_json(indent=2))
    return True


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_meta(run_dir: Path) -> RunMeta | None:
    """The run's `run.json`; for a run from before it existed, what its first event says."""
    try:
        return RunMeta.model_validate_json((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    try:
        with (run_dir / "events.jsonl").open(encoding="utf-8") as events:
            first = json.loads(events.readline())
        return RunMeta(run_id=run_dir.name, task=str(first.get("task", "")),
                       started=str(first.get("timestamp", "")), model=str(first.get("model", "")))
    except (OSError, ValueError):
        return None


class RunListing(BaseModel):
    """One line of `turnout runs`."""

    run_id: str
    started: str
    # running | killed (its process died without a report) | stopped (no report) | the report's
    status: str
    task: str
    steps: int = 0
    files_changed: list[str] = []
    undone: bool = False
    elsewhere: str = ""  # the checkout it ran in, for a run only the shared store holds


def list_runs(repo: Path, policy_file: Path | None = None) -> list[RunListing]:
    """The repository's runs, newest first: those of this checkout, and those other checkouts
    of the same repository keep in the policy's shared state store (`--resume` adopts them)."""
    runs = repo / ".turnout" / "runs"
    listings = _local_runs(runs)
    here = {r.run_id for r in listings}
    for run_id, stamp, status in _stored_runs(repo, policy_file):
        if run_id not in here:
            listings.append(RunListing(run_id=run_id, started=stamp.turnout_started, task=stamp.turnout_task,
                                       status=status or "stopped", elsewhere=stamp.turnout_repo))
    return sorted(listings, key=lambda r: (r.started, r.run_id), reverse=True)


def _stored_runs(repo: Path, policy_file: Path | None) -> list[tuple[str, RunStamp, str]]:
    try:
        state = load_policy(repo, policy_file).state
    except TurnoutError:
        return []  # `turnout runs` still lists this checkout's runs; the policy error shows elsewhere
    if state.checkpointer == "sqlite":
        return []  # this checkout's own store: its runs are the folders above
    try:
        with open_store(repo, state) as saver:
            return stored_runs(saver, repo_identity(repo))
    except (TurnoutError, *store_errors()):
        return []


def _local_runs(runs: Path) -> list[RunListing]:
    listings = []
    for run_dir in runs.iterdir() if runs.is_dir() else []:
        if not run_dir.is_dir():
            continue
        meta = read_meta(run_dir)
        started = meta.started if meta and meta.started else datetime.fromtimestamp(
            run_dir.stat().st_mtime, UTC).isoformat(timespec="seconds")
        listing = RunListing(run_id=run_dir.name, started=started, status="stopped",
                             task=meta.task if meta else "")
        try:
            report = RunReport.model_validate_json((run_dir / "report.json").read_text(encoding="utf-8"))
            listing.status, listing.steps = report.exit_status, report.steps
            listing.files_changed = report.files_changed
        except (OSError, ValueError):
            pass
        if meta and meta.active:
            listing.status = "running" if process_alive(meta.pid) else "killed"
        record = load_record(run_dir)
        listing.undone = bool(record and record.undone)
        listings.append(listing)
    return listings


def process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def resolve_run(repo: Path, ref: str, flag: str, policy_file: Path | None = None) -> str:
    """A run id from what a user typed: an id, or `last` (the most recently started run here).
    An id this checkout has never seen is looked up in the policy's shared state store."""
    if ref == "last":
        runs = list_runs(repo)
        if not runs:
            raise UsageError(f"{flag} last: {repo} has no runs yet; start one with `turnout run TASK`")
        return runs[0].run_id
    if not (repo / ".turnout" / "runs" / ref).is_dir():
        check_resume(repo, ref, flag, policy_file)
    return ref


def resumed_task(repo: Path, run_id: str, given: str | None) -> str:
    """The task a resumed run carries on with: its own. A TASK given with --resume must be it."""
    meta = read_meta(repo / ".turnout" / "runs" / run_id)
    recorded = meta.task if meta else ""
    if given and recorded and given != recorded:
        raise UsageError(
            f"--resume {run_id} carries on with the run's own task ({recorded!r}); leave TASK out, "
            "or start a new run for a different task"
        )
    if not (given or recorded):
        raise UsageError(f"--resume {run_id}: the run's task is not recorded; give it as TASK")
    return given or recorded


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
        "interrupted": (f"interrupted; `turnout run --resume {report.run_id} --repo "
                        f"{Path(report.run_dir).parents[2]}` carries on"),
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
            f"{report.tokens.completion} completion)"
            + (f"   cost: ${report.cost_usd:.4f}" if report.cost_usd else "") + "   "
            f"wall: {report.wall_seconds:.1f}s (model {report.model_seconds:.1f}s)   model: {report.model}"
        ),
        f"  log: {report.run_dir}/events.jsonl",
    ]
    return "\n".join(lines)


class ProgressSink:
    """Events go to the run log (a structlog logger); a line a person can read about each goes
    to the progress callback, and what the run does next to the status callback (the live
    status line of `turnout run` on a terminal)."""

    def __init__(self, logger: Any, progress: Progress, status: Progress = lambda _: None) -> None:
        self._log = logger
        self._progress = progress
        self._status = status
        self._steps = self._tokens = 0  # this process's part of the run
        self._tps = 0.0

    def __call__(self, event: str, **fields: Any) -> None:
        self._log.info(event, **fields)
        line = describe(event, fields)
        if line:
            self._progress(line)
        if event == "model_reply":
            self._steps = int(fields.get("step") or 0)
            self._tokens += int(fields.get("prompt_tokens") or 0) + int(fields.get("completion_tokens") or 0)
            self._tps = float(fields.get("decode_tps") or 0.0)
        counts = (f" · step {self._steps} · {self._tokens:,} tokens" if self._steps else "") + (
            f" · {self._tps:.1f} tok/s" if self._tps else "")
        self._status(doing_next(event, fields) + counts)


def describe(event: str, f: dict[str, Any]) -> str:
    """One event of the run, as a line for a person ("" for one not worth a line)."""
    files = ", ".join(f.get("files") or [])
    match event:
        case "run_start":
            return "resuming from the last completed step" if f.get("resume") else ""
        case "tests_before" | "tests_after":
            return f"{event.replace('_', ' ')}: {f.get('summary') or 'exit code ' + str(f.get('exit_code'))}"
        case "localized":
            return f"{'repairing' if f.get('mode') == 'repair' else 'task'}; showing the model {files or 'no file'}"
        case "traced":
            return f"traced {f.get('test')} ({f.get('lines')} lines of what the code did)"
        case "trace_failed":
            return f"could not trace {f.get('test')}: {str(f.get('reason', ''))[:120]}"
        case "model_reply":
            tps = f.get("decode_tps") or 0
            return (
                f"reply {f.get('step')} ({f.get('kind')}, from {f.get('route') or f.get('model')}): "
                f"{f.get('edits')} edit(s); {f.get('prompt_tokens', 0):,} prompt + "
                f"{f.get('completion_tokens', 0):,} completion tokens"
                + (f", {tps:.1f} tok/s" if tps else "")
            )
        case "candidate":
            return f"change #{f.get('id')} {f.get('status')}: {f.get('summary')}" + (f" ({files})" if files else "")
        case "landed":
            return f"landed change #{f.get('candidate')} in {files}"
        case "land_failed":
            return f"could not land the change: {f.get('reason')}"
        case "run_error":
            return f"error: {f.get('error')}"
        case "run_interrupted":
            return "interrupted; writing the report"
        case "run_end":
            return (f"finished: {f.get('exit_status')} after {f.get('steps')} model call(s), "
                    f"{f.get('tokens', 0):,} tokens")
        case "approval":
            return str(f.get("message", ""))
    shown = {k: v for k, v in f.items() if v not in ([], "", None)}
    return f"{event} " + " ".join(f"{k}={v}" for k, v in shown.items())


def doing_next(event: str, f: dict[str, Any]) -> str:
    """What the run does after `event`, for the status line."""
    match event:
        case "run_start":
            return "running the tests"
        case "tests_before":
            return "finding the code the tests exercise"
        case "localized":
            return "tracing the failing test" if f.get("mode") == "repair" else "asking the model"
        case "traced" | "trace_failed" | "spec" | "mutants":
            return "asking the model"
        case "model_reply":
            return "trying the change on a scratch copy"
        case "candidate":
            return "landing the change" if f.get("status") == "passed" else "trying the next change, or asking the model"
        case "landed":
            return "running the tests in your tree"
    return "finishing"


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
    write_private(path, text)  # 0600: a report holds the diff and the model's summary
