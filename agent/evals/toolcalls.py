"""`turnout eval toolcalls`: BFCL single-turn questions through a model, with turnout's parser,
repairs and grammar, against the same model without them.

The model is named by a model spec, as every command names it (`agent/compose.py`): the
in-process model (a catalog name, `local`, `local:NAME`, a `.gguf`), or any other
(`ollama/NAME`, an OpenAI-compatible URL, `openai/MODEL`, `anthropic/MODEL`). Targets, all on
that one model so they compare like with like:

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
from turnout.agent.compose import open_model, target_for
from turnout.runtimes.base import ChatRequest, Message
from turnout.runtimes.errors import UpstreamFailure, UsageError
from turnout.runtimes.local.llama_cpp import LlamaCppModel
from turnout.runtimes.textprotocol.parse import parse_tool_calls

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
    # Under tool_choice auto, in process: the model's Yes to "is that call right?" after it
    # called a tool, and whether the reply was decoded as words for it.
    call_check: float | None = None
    declined: bool = False


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
    check_calls_below: float | None = None,
    skip: int = 0,
) -> ToolCallsReport:
    """Run each case through each target, cases of all categories interleaved, so a run cut
    short still compares the targets on the same cases. `model_spec` is a model spec, as every
    command's `--model` takes it; a bare catalog name is the in-process model."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise UsageError(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    per_category = [bfcl.load_cases(category, limit, skip) for category in categories]
    cases = [case for group in _interleave(per_category) for case in group]
    # A record is also a resume point: an eval of hundreds of cases takes hours on a CPU, so a
    # run that is cut short carries on where it stopped instead of starting again. It is read
    # before the model is loaded, so a damaged one is reported at once.
    recorded = _read_record(record) if record and record.exists() else []
    model = open_eval_model(model_spec, threads, targets, check_calls_below)
    wanted = {case.id for case in cases}
    scored = {"plain", "plain+parser"} if "plain" in targets else set()
    scored |= {t for t in targets if t != "plain"}
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
                    # Whether to call at all is the question of a decline category, so its
                    # cases are asked as `turnout chat` asks: the model may answer in words.
                    choice = "auto" if case.category in bfcl.DECLINE else tool_choice
                    found.append(_turnout_case(model, case, target, choice, max_tokens))
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


def open_eval_model(
    spec: str, threads: int | None, targets: list[str], check_calls_below: float | None = None,
) -> EvalModel:
    """The model named by `spec`, checked against the targets asked for before any case runs."""
    target = target_for(spec)
    local_only = [t for t in targets if t in LOCAL_ONLY]
    if local_only and target.runtime != "llama_cpp":
        raise UsageError(
            f"--target {', '.join(local_only)} needs the in-process model, and {spec} is reached "
            "over the network; use --target turnout and --target plain"
        )
    # In process: llama-cpp-python's own decode for every target: the guards are under test
    # here, and greedy output does not depend on the decode loop (speculation has its own
    # benchmarks).
    runtime = open_model(target, name=spec, threads=threads, n_ctx=4096, drafter="off", calibrate=False)
    if isinstance(runtime, LlamaCppModel):
        local = runtime
        if check_calls_below is not None:
            local.config.check_calls_below = check_calls_below

        def use_grammar(on: bool) -> None:
            local.config.constrain_tool_calls = on

        def plain_local(body: dict[str, Any]) -> dict[str, Any]:
            reply: dict[str, Any] = local.llama.create_chat_completion(**body)
            return reply

        return EvalModel(local.name, local, plain_local, use_grammar)
    remote: Any = runtime  # a networked runtime: its config and SDK client, where it has them
    if hasattr(remote.config, "stream"):
        # Whole replies: the eval scores calls, not time to first token; a non-streamed reply
        # carries the server's own token counts; and llama_cpp.server cuts a stream whose tool
        # call was not forced.
        remote.config.stream = False
    client = getattr(remote, "client", None)
    if "plain" in targets and client is None:
        raise UsageError(
            f"--target plain sends the OpenAI chat-completions format, which {spec} does not "
            "take; use --target turnout"
        )

    def plain(body: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = client.chat.completions.create(model=remote.config.model, **body).model_dump()
        return reply

    return EvalModel(remote.name, remote, plain)


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
    # Under auto, turnout's own decode loop, as `turnout chat` decodes: it is where the model's
    # doubt about calling at all is seen (the greedy reply is the same as the library's).
    drafter = "none" if tool_choice == "auto" and isinstance(model.runtime, LlamaCppModel) else None
    try:
        response = model.runtime.chat(
            ChatRequest(messages=messages, tools=tools, tool_choice=tool_choice, max_tokens=max_tokens,
                        drafter=drafter)
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
    outcome = _score(case, target, calls, bool(calls), seconds, response.usage.completion_tokens)
    outcome.call_check = response.stats.call_check
    outcome.declined = response.stats.declined_call
    return outcome


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
    if calls or case.category in bfcl.DECLINE:
        match, why = bfcl.ast_match(case.functions, calls, case.answers, case.category)
    else:
        match, why = False, "no call"
    return CaseOutcome(
        id=case.id, category=case.category, target=target, valid=valid, match=match, why=why,
        calls=[{"name": n, "arguments": a} for n, a in calls], seconds=round(seconds, 3),
        completion_tokens=tokens,
    )


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
