"""The agent loop, as a LangGraph graph checkpointed to SQLite.

    prepare -> model -> tools -> model -> ... -> END

`prepare` runs the tests once and puts what a small model needs in front of it: the task, the
failing output, and the source files the failure names (a 1.5B model that must discover them by
itself tends to edit the assertion instead). `model` asks the router for a reply; only calls that
parsed and validated enter the history, and the model sees the error for any that did not.
`tools` runs the calls through the MCP host; after an edit that applied, the loop runs the tests
itself and stops as soon as they pass. Every state change is checkpointed, so a killed run
resumes from its last completed step.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field
from turnout.agent.guards import LoopConfig, LoopDetector, LoopVerdict
from turnout.agent.testrun import TestOutcome, files_named_in, is_test_file, parse_test_result
from turnout.runtimes.base import ChatModel, ChatRequest, Message, ToolCall, ToolHost, ToolResult

EDIT_TOOLS = frozenset({"replace_in_file", "write_file", "apply_patch"})
TEST_TOOL = "run_tests"

SYSTEM_PROMPT = """\
You are turnout, a careful coding agent working in a repository. Your job: make the failing \
tests pass by fixing the code under test. Never change the tests themselves.
Edit with replace_in_file, copying `old` exactly from the file as shown (whole lines, same \
indentation), or with write_file and the whole corrected file. After an edit the tests run \
automatically and you see the result."""


class AgentConfig(BaseModel):
    """How one run behaves."""

    max_steps: int = Field(default=12, description="model replies allowed before giving up")
    max_tokens: int = Field(default=1024, description="tokens per model reply")
    temperature: float = Field(default=0.0, description="0 = greedy, reproducible")
    context_chars: int = Field(default=12_000, description="budget for files put in the prompt")
    protect_tests: bool = Field(
        default=True, description="refuse edits to test files: the tests are the specification"
    )
    loop: LoopConfig = Field(default_factory=LoopConfig, description="when a run is going in circles")


class RunState(TypedDict, total=False):
    messages: list[dict[str, Any]]
    pending: list[dict[str, Any]]  # validated tool calls from the last reply, not yet run
    step: int
    exit_status: str  # empty while the run goes on
    tests_before: dict[str, Any]
    tests_after: dict[str, Any]
    originals: dict[str, str | None]  # content of each edited file before the run touched it
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int  # of prompt_tokens, those the runtime took from its KV cache
    model_seconds: float  # time the model spent reading prompts and writing replies
    invalid_calls: int
    tool_errors: int
    loop: dict[str, Any]  # the LoopDetector's memory, checkpointed with the rest
    escalate: str  # why the next request asks the router for a stronger target; "" = no
    reask: bool  # the last reply had only invalid calls: the next one must be a call


class EventSink:
    """Where the loop reports what happens (a structlog logger in production)."""

    def __init__(self, logger: Any) -> None:
        self._log = logger

    def __call__(self, event: str, **fields: Any) -> None:
        self._log.info(event, **fields)


def build_graph(
    model: ChatModel, host: ToolHost, repo: Path, task: str, config: AgentConfig, emit: EventSink
) -> StateGraph:
    tools = host.list_tools()
    repo = repo.resolve()

    def run_tests() -> TestOutcome:
        result = host.call_tool(TEST_TOOL, {})
        if result.is_error:
            return TestOutcome(exit_code=-1, summary="the test tool failed", output=result.content)
        return parse_test_result(result.content)

    def prepare(state: RunState) -> RunState:
        before = run_tests()
        emit("tests_before", exit_code=before.exit_code, summary=before.summary)
        detector = LoopDetector(config.loop)
        detector.record_tests(0, before.output, before.passed)
        update: RunState = {
            "tests_before": before.model_dump(),
            "tests_after": before.model_dump(),
            "step": 0,
            "pending": [],
            "originals": {},
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "invalid_calls": 0,
            "tool_errors": 0,
            "loop": detector.dump(),
            "escalate": "",
            "reask": False,
        }
        if before.passed:
            update["exit_status"] = "already_passing"
            update["messages"] = []
            return update
        update["exit_status"] = ""
        update["messages"] = [
            Message(role="system", content=SYSTEM_PROMPT).model_dump(),
            Message(role="user", content=first_prompt(task, before, repo, config)).model_dump(),
        ]
        return update

    def call_model(state: RunState) -> RunState:
        step = state["step"]
        if step >= config.max_steps:
            emit("stop", reason="max_steps", steps=step)
            return {"exit_status": "max_steps"}
        messages = [Message.model_validate(m) for m in state["messages"]]
        request = ChatRequest(
            messages=messages, tools=tools, max_tokens=config.max_tokens,
            temperature=config.temperature,
            # A re-ask after an invalid call must be a call: the local runtime's grammar then
            # makes it valid by construction.
            tool_choice="required" if state.get("reask") else None,
            escalate=bool(state.get("escalate")), escalation_reason=state.get("escalate", ""),
        )
        response = model.chat(request)
        detector = LoopDetector(config.loop, state.get("loop"))
        detector.record_reply(
            step + 1, valid_calls=len(response.tool_calls), problems=len(response.problems),
            repetition_aborted=response.stats.repetition_aborted,
            tokens_saved=response.stats.tokens_saved,
        )
        emit(
            "model_reply", step=step + 1, route=response.route, model=response.model,
            calls=[c.name for c in response.tool_calls], problems=response.problems,
            prompt_tokens=response.usage.prompt_tokens,
            completion_tokens=response.usage.completion_tokens,
            # How much of the prompt came from the runtime's cache, and what the rest cost: on a
            # CPU a cold 8k-token prompt takes minutes, a reused one seconds (bench context).
            cached_prompt_tokens=response.stats.cached_prompt_tokens,
            prefill_s=round(response.stats.prefill_seconds, 2),
            decode_tps=round(response.stats.decode_tps, 2),
        )
        update: RunState = {
            "step": step + 1,
            "prompt_tokens": state["prompt_tokens"] + response.usage.prompt_tokens,
            "completion_tokens": state["completion_tokens"] + response.usage.completion_tokens,
            # .get: runs checkpointed before these were counted resume with them at zero.
            "cached_prompt_tokens": state.get("cached_prompt_tokens", 0) + response.stats.cached_prompt_tokens,
            "model_seconds": state.get("model_seconds", 0.0)
            + response.stats.prefill_seconds + response.stats.decode_seconds,
        }
        history = list(state["messages"])
        if response.tool_calls:
            history.append(
                Message(role="assistant", content=response.text, tool_calls=response.tool_calls).model_dump()
            )
            update["pending"] = [c.model_dump() for c in response.tool_calls]
        elif response.problems:
            # The malformed call never enters the history: the model sees only what was wrong.
            update["invalid_calls"] = state["invalid_calls"] + len(response.problems)
            history.append(Message(role="user", content=invalid_call_feedback(response.problems)).model_dump())
            update["pending"] = []
        else:
            after = TestOutcome.model_validate(state["tests_after"])
            history.append(Message(role="assistant", content=response.text).model_dump())
            history.append(Message(role="user", content=still_failing_nudge(after)).model_dump())
            update["pending"] = []
        update["reask"] = bool(response.problems) and not response.tool_calls
        respond_to_loop(detector.verdict(), history, update, emit)
        update["loop"] = detector.dump()
        update["messages"] = history
        return update

    def run_tools(state: RunState) -> RunState:
        history = list(state["messages"])
        originals = dict(state["originals"])
        update: RunState = {"pending": [], "tool_errors": state["tool_errors"]}
        detector = LoopDetector(config.loop, state.get("loop"))
        step = state["step"]
        edited = False
        for raw_call in state["pending"]:
            call = ToolCall.model_validate(raw_call)
            targets = edited_paths(call) if call.name in EDIT_TOOLS else []
            protected = [rel for rel in targets if config.protect_tests and is_test_file(rel)]
            if protected:
                result = ToolResult(content=refused_test_edit(protected), is_error=True)
            else:
                before = {rel: read_text_or_none(repo / rel) for rel in targets}
                for rel in targets:
                    originals.setdefault(rel, before[rel])
                result = host.call_tool(call.name, call.arguments)
                for rel in targets if not result.is_error else []:
                    detector.record_edit(step, rel, before[rel], read_text_or_none(repo / rel))
            detector.record_call(step, call.name, call.arguments, result.content, result.is_error)
            emit("tool_result", tool=call.name, is_error=result.is_error, chars=len(result.content))
            if result.is_error:
                update["tool_errors"] += 1
            history.append(
                Message(
                    role="tool", name=call.name, tool_call_id=call.id,
                    content=("ERROR: " if result.is_error else "") + result.content,
                ).model_dump()
            )
            if call.name == TEST_TOOL and not result.is_error:
                outcome = parse_test_result(result.content)
                detector.record_tests(step, outcome.output, outcome.passed)
                update["tests_after"] = outcome.model_dump()
                if outcome.passed:
                    update["exit_status"] = "tests_passed"
                    break
            edited = edited or (call.name in EDIT_TOOLS and not result.is_error)
        if edited and not update.get("exit_status"):
            outcome = run_tests()
            emit("tests_after_edit", exit_code=outcome.exit_code, summary=outcome.summary)
            detector.record_tests(step, outcome.output, outcome.passed)
            update["tests_after"] = outcome.model_dump()
            if outcome.passed:
                update["exit_status"] = "tests_passed"
            else:
                history.append(Message(role="user", content=tests_after_edit(outcome)).model_dump())
        if not update.get("exit_status"):
            respond_to_loop(detector.verdict(), history, update, emit)
        update["loop"] = detector.dump()
        update["messages"] = history
        update["originals"] = originals
        return update

    def after_model(state: RunState) -> str:
        if state.get("exit_status"):
            return END
        return "tools" if state.get("pending") else "model"

    def after_tools(state: RunState) -> str:
        return END if state.get("exit_status") else "model"

    graph = StateGraph(RunState)
    graph.add_node("prepare", prepare)
    graph.add_node("model", call_model)
    graph.add_node("tools", run_tools)
    graph.add_edge(START, "prepare")
    graph.add_conditional_edges("prepare", lambda s: END if s.get("exit_status") else "model")
    graph.add_conditional_edges("model", after_model)
    graph.add_conditional_edges("tools", after_tools)
    return graph


def respond_to_loop(
    verdict: LoopVerdict, history: list[dict[str, Any]], update: RunState, emit: EventSink
) -> None:
    """Carry out the loop detector's answer: a nudge, escalation, or a clean stop."""
    if verdict.action == "continue":
        return
    # The details quote calls and test output: they go to the report, not to the event log.
    emit(
        "loop_detected", action=verdict.action,
        signals=[e.signal for e in verdict.evidence], repeats=[e.repeats for e in verdict.evidence],
    )
    if verdict.action == "stop":
        update["exit_status"] = "loop_detected"
        return
    if verdict.action == "escalate":
        update["escalate"] = ", ".join(dict.fromkeys(e.signal for e in verdict.evidence))
    history.append(Message(role="user", content=verdict.message).model_dump())


def first_prompt(task: str, tests: TestOutcome, repo: Path, config: AgentConfig) -> str:
    summary = tests.summary or f"exit code {tests.exit_code}"
    parts = [f"Task: {task}", f"The tests fail ({summary}):\n```\n{tail(tests.output, 4000)}\n```"]
    # Only the code under test goes in: shown the test file, a small model "fixes" the assertion.
    sources = [rel for rel in files_named_in(tests.output, repo) if not is_test_file(rel)]
    budget = config.context_chars
    shown = []
    for rel in sources:
        text = read_text_or_none(repo / rel)
        if text is None or len(text) > budget:
            continue
        budget -= len(text)
        shown.append(rel)
        parts.append(f"File {rel}:\n```python\n{text.rstrip()}\n```")
    where = f"The bug is in the code under test ({', '.join(shown)}), not in the tests. " if shown else ""
    parts.append(f"{where}Fix the code so that the tests pass. Reply with one tool call.")
    return "\n\n".join(parts)


def refused_test_edit(paths: list[str]) -> str:
    return (
        f"refused: {', '.join(paths)} is a test file and the tests are the specification. "
        "Fix the code under test instead."
    )


def invalid_call_feedback(problems: list[str]) -> str:
    listed = "\n".join(f"- {p}" for p in problems)
    return f"Your tool call was not valid and was not run:\n{listed}\nReply with one corrected tool call."


def still_failing_nudge(tests: TestOutcome) -> str:
    return (
        f"The tests still fail ({tests.summary or 'see above'}). Do not explain: fix the code "
        "with a tool call (replace_in_file or write_file)."
    )


def tests_after_edit(tests: TestOutcome) -> str:
    return (
        f"The edit was applied, but the tests still fail ({tests.summary}):\n"
        f"```\n{tail(tests.output, 3000)}\n```\nFix the code with another tool call."
    )


def tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


_PATCH_TARGET = re.compile(r"(?m)^\+\+\+ (?:b/)?(\S+)")


def edited_paths(call: ToolCall) -> list[str]:
    if call.name == "apply_patch":
        return [p for p in _PATCH_TARGET.findall(str(call.arguments.get("patch", ""))) if p != "/dev/null"]
    path = call.arguments.get("path")
    return [str(path)] if isinstance(path, str) else []


def read_text_or_none(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def unified_diff(repo: Path, originals: dict[str, str | None]) -> tuple[str, list[str]]:
    """The run's whole change: each edited file against its content before the run."""
    chunks: list[str] = []
    changed: list[str] = []
    for rel in sorted(originals):
        before = originals[rel]
        after = read_text_or_none(repo / rel)
        if before == after:
            continue
        changed.append(rel)
        chunks.extend(
            difflib.unified_diff(
                (before or "").splitlines(keepends=True),
                (after or "").splitlines(keepends=True),
                fromfile="/dev/null" if before is None else f"a/{rel}",
                tofile=f"b/{rel}",
            )
        )
    return "".join(chunks), changed
