"""`turnout eval`: measure the guards on data, not anecdotes.

Provides `eval_toolcalls` (BFCL single-turn questions through a model, with turnout's parser,
repairs and grammar, against the same model without them) and `eval_loops` (the scripted trace
corpus in `turnout.agent.traces` through the `LoopDetector`).

The model is named as `turnout chat --model` names it: the in-process model (`local`,
`local:NAME`, a `.gguf`), or any other target (`ollama/NAME`, an OpenAI-compatible URL,
`openai/MODEL`, `anthropic/MODEL`). Targets of `eval toolcalls`, all on that one model so they
compare like with like:

- `turnout`: turnout's runtime for that model with its guards: for the in-process model the text
  protocol, the grammar for `tool_choice` (default "required": every BFCL case in these
  categories asks for a call) and the parser; for a remote one the native tools request, its
  structured calls validated and repaired against the schema, a reply's text read by the parser.
- `turnout-nogrammar`: the in-process model without the grammar: parser and repairs only.
- `plain`: the model without turnout: for the in-process model llama-cpp-python's
  `create_chat_completion(messages, tools=...)` with the GGUF's own chat template; for an
  OpenAI-compatible endpoint one `chat.completions.create(tools=...)` through the `openai` SDK.
  Scored on the `tool_calls` it returns. The same reply is also scored after turnout's parser
  reads its text (`plain+parser`), at no extra model time.

A call is *valid* when it names an offered function and its arguments satisfy the function's
JSON Schema; a case is an *AST match* when BFCL's checker accepts the call.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field
from turnout.agent import bfcl
from turnout.runtimes.base import ChatRequest, Message
from turnout.runtimes.errors import UpstreamFailure, UsageError
from turnout.runtimes.toolcalls import parse_tool_calls

TARGETS = ("turnout", "turnout-nogrammar", "plain")
LOCAL_ONLY = ("turnout-nogrammar",)  # a remote server's decoding cannot be constrained from here
Progress = Callable[[str], None]


class CaseOutcome(BaseModel):
    """One BFCL case through one target."""

    id: str
    category: str
    target: str
    model: str | None = None  # None in records written before it was kept
    valid: bool
    match: bool
    why: str = ""  # why it did not match
    calls: list[dict[str, Any]] = Field(default_factory=list)
    seconds: float = 0.0
    completion_tokens: int = 0


class TargetSummary(BaseModel):
    category: str
    target: str
    cases: int
    valid_rate: float
    ast_match_rate: float
    median_seconds: float


class ToolCallsReport(BaseModel):
    model: str
    tool_choice: str
    summaries: list[TargetSummary]


def eval_toolcalls(
    categories: list[str],
    limit: int | None,
    targets: list[str],
    model_spec: str,
    *,
    tool_choice: str = "required",
    max_tokens: int = 256,
    threads: int | None = None,
    record: Path | None = None,
    progress: Progress = lambda _: None,
) -> ToolCallsReport:
    """Run each case through each target, cases of all categories interleaved, so a run cut
    short still compares the targets on the same cases. `model_spec` names the model as
    `turnout chat --model` does; a bare catalog name is the in-process model."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise UsageError(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    per_category = [bfcl.load_cases(category, limit) for category in categories]
    cases = [case for group in _interleave(per_category) for case in group]
    model = open_eval_model(model_spec, threads, targets)
    # A record is also a resume point: an eval of hundreds of cases takes hours on a CPU, so a
    # run that is cut short carries on where it stopped instead of starting again.
    wanted = {case.id for case in cases}
    scored = {"plain", "plain+parser"} if "plain" in targets else set()
    scored |= {t for t in targets if t != "plain"}
    recorded = _read_record(record) if record and record.exists() else []
    others = sorted({o.model for o in recorded if o.model not in (None, model.name)})
    if others:
        raise UsageError(
            f"{record} holds outcomes of {', '.join(others)}, not {model.name}; "
            "pass a new --record file for this model"
        )
    outcomes = [o for o in recorded if o.id in wanted and o.target in scored]
    done = {(o.id, o.target) for o in outcomes}
    if done:
        progress(f"resuming from {record}: {len(done)} outcomes already scored")
    sink = record.open("a", encoding="utf-8") if record else None
    took: list[float] = []  # seconds per case actually run (not resumed), for the time left
    try:
        for index, case in enumerate(cases, 1):
            started = time.perf_counter()
            found: list[CaseOutcome] = []
            for target in targets:
                if (case.id, target) in done:
                    continue
                if target == "plain":
                    found.extend(_plain_case(model, case, max_tokens))
                else:
                    model.use_grammar(target == "turnout")
                    found.append(_turnout_case(model, case, target, tool_choice, max_tokens))
            for outcome in found:
                outcome.model = model.name
                outcomes.append(outcome)
                if sink:
                    sink.write(outcome.model_dump_json() + "\n")
                    sink.flush()
            if found:
                took.append(time.perf_counter() - started)
            progress(
                f"{index}/{len(cases)} {case.id}: "
                + " ".join(f"{o.target}={'M' if o.match else ('v' if o.valid else 'x')}" for o in found)
                + time_left(took, len(cases) - index)
            )
    finally:
        model.use_grammar(True)
        if sink:
            sink.close()
    return ToolCallsReport(model=model.name, tool_choice=tool_choice, summaries=summarize(outcomes))


def time_left(seconds_per_case: list[float], cases_left: int) -> str:
    """'  (about 1h58m left)' from the recent cases' median pace; '' when nothing is left or
    nothing has been timed yet."""
    if cases_left <= 0 or not seconds_per_case:
        return ""
    pace = statistics.median(seconds_per_case[-20:])  # recent: the machine's load changes
    minutes = round(pace * cases_left / 60)
    if minutes < 1:
        return "  (under a minute left)"
    hours, minutes = divmod(minutes, 60)
    return f"  (about {hours}h{minutes:02d}m left)" if hours else f"  (about {minutes}m left)"


class EvalModel:
    """The model under test and the two ways to reach it: through turnout's runtime
    (`runtime`, the guards) and without turnout (`plain`: one reply in the OpenAI
    chat-completion shape, or None where the model does not speak that wire format)."""

    def __init__(
        self,
        name: str,
        runtime: Any,
        plain: Callable[[dict[str, Any]], dict[str, Any]] | None,
        use_grammar: Callable[[bool], None] = lambda _: None,
    ) -> None:
        self.name = name
        self.runtime = runtime
        self.plain = plain
        self.use_grammar = use_grammar


def open_eval_model(spec: str, threads: int | None, targets: list[str]) -> EvalModel:
    """The model named by `spec`, checked against the targets asked for before any case runs."""
    from turnout.agent.chat import target_for
    from turnout.runtimes.registry import make_runtime

    # A bare name is a catalog model, as `turnout eval toolcalls --model NAME` always meant.
    is_bare = not any(mark in spec for mark in ("/", ":")) and not spec.endswith(".gguf")
    target = target_for(f"local:{spec}" if is_bare else spec)
    if target.runtime == "llama_cpp":
        from turnout.runtimes.llama_cpp import LlamaCppConfig, LlamaCppModel

        # llama-cpp-python's own decode for every target: the guards are under test here, and
        # greedy output does not depend on the decode loop (speculation has its own benchmarks).
        local = LlamaCppModel(
            LlamaCppConfig(model=target.model, n_ctx=4096, n_threads=threads, drafter="off", calibrate=False)
        )

        def use_grammar(on: bool) -> None:
            local.config.constrain_tool_calls = on

        def plain_local(body: dict[str, Any]) -> dict[str, Any]:
            reply: dict[str, Any] = local.llama.create_chat_completion(**body)
            return reply

        return EvalModel(local.name, local, plain_local, use_grammar)
    local_only = [t for t in targets if t in LOCAL_ONLY]
    if local_only:
        raise UsageError(
            f"--target {', '.join(local_only)} needs the in-process model, and {spec} is reached "
            "over the network; use --target turnout and --target plain"
        )
    runtime = make_runtime(spec, target)
    if hasattr(runtime.config, "stream"):
        # Whole replies: the eval scores calls, not time to first token; a non-streamed reply
        # carries the server's own token counts; and llama_cpp.server cuts a stream whose tool
        # call was not forced.
        runtime.config.stream = False
    client = getattr(runtime, "client", None)
    if "plain" in targets and client is None:
        raise UsageError(
            f"--target plain sends the OpenAI chat-completions format, which {spec} does not "
            "take; use --target turnout"
        )

    def plain(body: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = client.chat.completions.create(model=runtime.config.model, **body).model_dump()
        return reply

    return EvalModel(runtime.name, runtime, plain)


def _interleave(groups: list[list[bfcl.BfclCase]]) -> list[list[bfcl.BfclCase]]:
    longest = max((len(g) for g in groups), default=0)
    return [[g[i] for g in groups if i < len(g)] for i in range(longest)]


def summarize(outcomes: list[CaseOutcome]) -> list[TargetSummary]:
    keys = list(dict.fromkeys((o.category, o.target) for o in outcomes))
    summaries = []
    for category, target in keys:
        group = [o for o in outcomes if o.category == category and o.target == target]
        summaries.append(
            TargetSummary(
                category=category,
                target=target,
                cases=len(group),
                valid_rate=sum(o.valid for o in group) / len(group),
                ast_match_rate=sum(o.match for o in group) / len(group),
                median_seconds=round(statistics.median(o.seconds for o in group), 2),
            )
        )
    return summaries


def _turnout_case(
    model: EvalModel, case: bfcl.BfclCase, target: str, tool_choice: str, max_tokens: int
) -> CaseOutcome:
    tools = [bfcl.tool_spec(f) for f in case.functions]
    messages = [Message(role=m["role"], content=m["content"]) for m in case.messages]  # type: ignore[arg-type]
    started = time.perf_counter()
    try:
        response = model.runtime.chat(
            ChatRequest(messages=messages, tools=tools, tool_choice=tool_choice, max_tokens=max_tokens)
        )
    except UpstreamFailure as exc:
        if tool_choice != "required":
            raise
        raise UsageError(
            f"{exc}. Not every server takes tool_choice \"required\" (llama_cpp.server answers "
            "it with a 500); run again with --tool-choice auto, and --record to keep what was scored"
        ) from exc
    seconds = time.perf_counter() - started
    calls = [(c.name, c.arguments) for c in response.tool_calls]
    return _score(case, target, calls, bool(calls), seconds, response.usage.completion_tokens)


def _plain_case(model: EvalModel, case: bfcl.BfclCase, max_tokens: int) -> list[CaseOutcome]:
    """The model on its own: its chat template (or server's tool support), `tools=`, no grammar."""
    assert model.plain is not None  # open_eval_model refused `plain` for models without it
    started = time.perf_counter()
    result = model.plain(
        {
            "messages": case.messages,
            "tools": [bfcl.openai_tool(f) for f in case.functions],
            # OpenAI's default when tools are sent, said out loud: llama_cpp.server ignores the
            # tools of a request that names no tool_choice.
            "tool_choice": "auto",
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "seed": 0,
        }
    )
    seconds = time.perf_counter() - started
    message = result["choices"][0]["message"]
    tokens = int((result.get("usage") or {}).get("completion_tokens", 0))
    schemas = {f["name"]: bfcl.json_schema(f.get("parameters") or {}) for f in case.functions}
    calls: list[tuple[str, dict[str, Any]]] = []
    valid = False
    for tool_call in message.get("tool_calls") or []:
        function = tool_call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except json.JSONDecodeError:
            continue
        name = function.get("name", "")
        if isinstance(arguments, dict):
            calls.append((name, arguments))
            schema = schemas.get(name)
            valid = valid or (
                schema is not None and not list(Draft202012Validator(schema).iter_errors(arguments))
            )
    plain = _score(case, "plain", calls, valid, seconds, tokens)
    parsed = parse_tool_calls(message.get("content") or "", [bfcl.tool_spec(f) for f in case.functions])
    parsed_calls = calls or [(c.name, c.arguments) for c in parsed.calls]
    reparsed = _score(case, "plain+parser", parsed_calls, bool(parsed_calls), seconds, tokens)
    return [plain, reparsed]


def _score(
    case: bfcl.BfclCase,
    target: str,
    calls: list[tuple[str, dict[str, Any]]],
    valid: bool,
    seconds: float,
    tokens: int,
) -> CaseOutcome:
    match, why = bfcl.ast_match(case.functions, calls, case.answers, case.category) if calls else (
        False, "no call"
    )
    return CaseOutcome(
        id=case.id, category=case.category, target=target, valid=valid, match=match, why=why,
        calls=[{"name": n, "arguments": a} for n, a in calls], seconds=round(seconds, 3),
        completion_tokens=tokens,
    )


def render_toolcalls(report: ToolCallsReport) -> str:
    lines = [
        f"BFCL single-turn, model {report.model}, tool_choice={report.tool_choice} (turnout targets)",
        f"  {'category':<14} {'target':<18} {'cases':>5} {'valid':>7} {'AST match':>9} {'median s':>8}",
    ]
    for s in report.summaries:
        lines.append(
            f"  {s.category:<14} {s.target:<18} {s.cases:>5} {s.valid_rate:>7.1%} "
            f"{s.ast_match_rate:>9.1%} {s.median_seconds:>8.2f}"
        )
    return "\n".join(lines)


def summarize_record(path: Path) -> list[TargetSummary]:
    """The summary of a recorded run (`--record`), e.g. of one cut short."""
    return summarize(_read_record(path))


def _read_record(path: Path) -> list[CaseOutcome]:
    outcomes = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            outcomes.append(CaseOutcome.model_validate_json(line))
        except ValueError as exc:
            # The last line of a run killed mid-write is the only one that can be cut short.
            raise UsageError(
                f"{path}:{number} is not a recorded outcome ({exc.__class__.__name__}); "
                "delete that line (a run killed while writing it) or pass a new --record file"
            ) from None
    return outcomes


# ---------------------------------------------------------------------------------------------
# eval loops


class TraceOutcome(BaseModel):
    name: str
    looping: bool
    detected_at: int | None  # first step answered with anything but "continue"
    stopped_at: int | None
    actions: list[str]  # the detector's answer at each step
    signals: list[str]
    steps_to_detect: int | None = None  # from the first step of the loop's second cycle
    in_time: bool | None = None  # caught within 3 steps of the second cycle's start


class ReplyOutcome(BaseModel):
    name: str
    degenerate: bool
    tripped: bool
    tokens: int
    tokens_to_abort: int | None = None  # from the first token of the repetition
    tokens_saved: int = 0


class LoopsReport(BaseModel):
    tokenizer: str
    traces: list[TraceOutcome]
    replies: list[ReplyOutcome]
    looping: int
    caught: int
    caught_in_time: int
    healthy: int
    healthy_flagged: int  # healthy traces that got at least a nudge
    healthy_stopped: int
    median_steps_to_detect: float
    degenerate: int
    degenerate_aborted: int
    max_tokens_to_abort: int
    healthy_replies_aborted: int


def eval_loops(config: Any = None, reply_budget: int = 1024) -> LoopsReport:
    """Every trace of the corpus through a fresh `LoopDetector`, fed step by step the way the
    agent loop feeds it; every reply through a `RepetitionGuard`, token by token."""
    from turnout.agent.guards import LoopDetector
    from turnout.agent.traces import REPLIES, TRACES
    from turnout.runtimes.repetition import RepetitionGuard

    traces = [_run_trace(trace, LoopDetector(config)) for trace in TRACES]
    tokenize, tokenizer = _tokenizer()
    replies = []
    for reply in REPLIES:
        tokens = tokenize(reply.text)
        guard = RepetitionGuard()
        guard.feed_all(tokens)
        start = len(tokenize(reply.text[: reply.repetition_starts])) if reply.degenerate else 0
        replies.append(
            ReplyOutcome(
                name=reply.name, degenerate=reply.degenerate, tripped=guard.tripped, tokens=len(tokens),
                tokens_to_abort=guard.tripped_at - start if guard.tripped else None,
                tokens_saved=max(reply_budget - guard.tripped_at, 0) if guard.tripped else 0,
            )
        )
    looping = [t for t in traces if t.looping]
    healthy = [t for t in traces if not t.looping]
    detect = [t.steps_to_detect for t in looping if t.steps_to_detect is not None]
    degenerate = [r for r in replies if r.degenerate]
    return LoopsReport(
        tokenizer=tokenizer,
        traces=traces,
        replies=replies,
        looping=len(looping),
        caught=sum(t.detected_at is not None for t in looping),
        caught_in_time=sum(bool(t.in_time) for t in looping),
        healthy=len(healthy),
        healthy_flagged=sum(t.detected_at is not None for t in healthy),
        healthy_stopped=sum(t.stopped_at is not None for t in healthy),
        median_steps_to_detect=statistics.median(detect) if detect else -1,
        degenerate=len(degenerate),
        degenerate_aborted=sum(r.tripped for r in degenerate),
        max_tokens_to_abort=max((r.tokens_to_abort or 0) for r in degenerate) if degenerate else 0,
        healthy_replies_aborted=sum(r.tripped for r in replies if not r.degenerate),
    )


def _run_trace(trace: Any, detector: Any) -> TraceOutcome:
    detector.record_tests(0, trace.initial_tests, passed=False)
    detector.verdict()
    actions: list[str] = []
    signals: list[str] = []
    for number, step in enumerate(trace.steps, 1):
        detector.record_reply(
            number, valid_calls=len(step.calls), problems=step.invalid,
            repetition_aborted=step.repetition_aborted, tokens_saved=step.tokens_saved,
        )
        for call in step.calls:
            detector.record_call(number, call.name, call.arguments, call.result, call.is_error)
        for edit in step.edits:
            detector.record_edit(number, edit.path, edit.before, edit.after)
        if step.tests is not None:
            detector.record_tests(number, step.tests, step.passed)
        verdict = detector.verdict()
        actions.append(verdict.action)
        signals.extend(e.signal for e in verdict.evidence)
        if verdict.action == "stop" or step.passed:
            break
    flagged = [i + 1 for i, a in enumerate(actions) if a != "continue"]
    detected = flagged[0] if flagged else None
    stopped = len(actions) if actions and actions[-1] == "stop" else None
    outcome = TraceOutcome(
        name=trace.name, looping=trace.looping, detected_at=detected, stopped_at=stopped,
        actions=actions, signals=list(dict.fromkeys(signals)),
    )
    if trace.looping and detected is not None:
        second_cycle = trace.loop_start + trace.period
        outcome.steps_to_detect = detected - second_cycle
        outcome.in_time = outcome.steps_to_detect <= 3
    elif trace.looping:
        outcome.in_time = False
    return outcome


def _tokenizer() -> tuple[Callable[[str], list[Any]], str]:
    """The default model's own tokenizer when it is installed (vocabulary only: fast), else
    words, spaces and punctuation as a stand-in."""
    import re

    from turnout.runtimes import models

    for name in (models.DEFAULT_MODEL, models.TEST_MODEL):
        if models.is_installed(name):
            import llama_cpp
            from llama_cpp._utils import suppress_stdout_stderr

            # A vocabulary-only load still makes a context and llama.cpp warns that it is
            # longer than the (absent) training context: noise on the user's terminal.
            with suppress_stdout_stderr(disable=False):
                vocab = llama_cpp.Llama(
                    model_path=str(models.resolve(name)), vocab_only=True, verbose=False
                )

            def tokenize(text: str, vocab: Any = vocab) -> list[Any]:
                return vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False)

            return tokenize, f"{name} (llama.cpp vocabulary)"
    pieces = re.compile(r"\w+|\s+|[^\w\s]")
    return (lambda text: pieces.findall(text)), "words, spaces and punctuation (no model installed)"


def render_loops(report: LoopsReport) -> str:
    lines = [
        f"loop traces: {report.looping} looping, {report.healthy} healthy",
        (f"  looping caught: {report.caught}/{report.looping}, within 3 steps of the second cycle: "
        f"{report.caught_in_time}/{report.looping}, median steps to detect: "
        f"{report.median_steps_to_detect}"),
        (f"  healthy flagged (a nudge): {report.healthy_flagged}/{report.healthy}, "
        f"stopped: {report.healthy_stopped}/{report.healthy}"),
        (f"replies ({report.tokenizer}): {report.degenerate} degenerate, "
        f"{len(report.replies) - report.degenerate} healthy"),
        (f"  degenerate aborted: {report.degenerate_aborted}/{report.degenerate}, at most "
        f"{report.max_tokens_to_abort} tokens after the repetition began; healthy aborted: "
        f"{report.healthy_replies_aborted}"),
        "",
    ]
    for t in report.traces:
        where = (
            f"flagged at step {t.detected_at} ({', '.join(t.signals)}), +{t.steps_to_detect} "
            f"after the second cycle began"
            if t.looping and t.detected_at else
            (f"flagged at step {t.detected_at} ({', '.join(t.signals)})" if t.detected_at else "not flagged")
        )
        stop = f", stopped at {t.stopped_at}" if t.stopped_at else ""
        lines.append(f"  {'LOOP' if t.looping else 'ok  '} {t.name}: {where}{stop}")
    for r in report.replies:
        what = f"aborted {r.tokens_to_abort} tokens in" if r.tripped else "not aborted"
        lines.append(f"  {'DEGN' if r.degenerate else 'ok  '} reply {r.name}: {what} ({r.tokens} tokens)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The command line: `turnout eval toolcalls|loops`


def add_arguments(sub: Any) -> None:
    """The `eval` subcommand, added to the CLI's subparsers."""
    import argparse

    ev = sub.add_parser(
        "eval", help="measure the guards: tool-call validity on BFCL, loop detection on traces",
        description="Evaluations of turnout's guards. `toolcalls` runs the Berkeley Function "
        "Calling Leaderboard's single-turn questions through a model (the in-process one by "
        "default, or any that `turnout chat --model` reaches) with and without turnout's "
        "parser, repairs and grammar; `loops` runs the shipped trace corpus through the loop "
        "detector.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  turnout eval toolcalls --category simple_python --limit 50\n"
        "  turnout eval toolcalls --model ollama/qwen2.5-coder:1.5b --limit 200 --record ollama.jsonl\n"
        "  turnout eval loops --json",
    )
    esub = ev.add_subparsers(dest="eval_command", metavar="EVAL")
    tc = esub.add_parser("toolcalls", help="BFCL single-turn: valid-call rate and AST match rate")
    tc.add_argument("--category", action="append", choices=["simple_python", "multiple"], default=None,
                    help="BFCL category (repeatable; default: simple_python and multiple)")
    tc.add_argument("--limit", type=int, default=None, metavar="N", help="first N cases of each category")
    tc.add_argument("--target", action="append", choices=list(TARGETS), default=None,
                    help="what to run (repeatable; default: turnout and plain)")
    tc.add_argument("--model", default="qwen2.5-coder-1.5b", metavar="MODEL",
                    help="the model under test: a catalog name or FILE.gguf (in process, the "
                    "default qwen2.5-coder-1.5b), or as `turnout chat --model` names it: "
                    "ollama/NAME, http://HOST:PORT/v1[#MODEL], openai/MODEL, anthropic/MODEL")
    tc.add_argument("--tool-choice", default="required",
                    help="tool_choice for the turnout targets: required (default), auto; "
                    "the plain target sends none, as a client that does not know turnout would")
    tc.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads")
    tc.add_argument("--record", type=Path, default=None, metavar="FILE.jsonl",
                    help="append each case's outcome to this file as it is scored; "
                    "cases already in it are not run again (resume a run cut short)")
    tc.add_argument("--json", action="store_true", help="print the summary as JSON")
    lp = esub.add_parser("loops", help="the trace corpus: recall, false positives, steps to detect")
    lp.add_argument("--json", action="store_true", help="print the full report as JSON")


def cmd_eval(args: Any, parser: Any) -> int:
    import sys

    if args.eval_command == "loops":
        report = eval_loops()
        print(report.model_dump_json(indent=2) if args.json else render_loops(report))
        ok = (report.caught_in_time == report.looping and report.healthy_stopped == 0
              and report.degenerate_aborted == report.degenerate and report.healthy_replies_aborted == 0)
        return 0 if ok else 1
    if args.eval_command == "toolcalls":
        tc_report = eval_toolcalls(
            args.category or list(bfcl.CATEGORIES), args.limit, args.target or ["turnout", "plain"],
            args.model, tool_choice=args.tool_choice, threads=args.threads, record=args.record,
            progress=lambda line: print(f"turnout: {line}", file=sys.stderr, flush=True),
        )
        print(tc_report.model_dump_json(indent=2) if args.json else render_toolcalls(tc_report))
        return 0
    parser.parse_args(["eval", "--help"])
    return 2
