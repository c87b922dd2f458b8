"""The agent loop of `turnout run`: localize, propose, verify by tests, land the winner.

    prepare -> propose -> verify -> verify ... -> land -> END
                  ^          |
                  +----------+  (no candidate passed and rounds remain)

`prepare` runs the tests once, decides what the run is for (repair failing tests, or do a task
while keeping them green) and puts the code that matters in front of the model: the modules the
failing tests import, the files the traceback and the task name, and a map of the rest.
`propose` asks for edits in plain markdown (whole files, or SEARCH/REPLACE blocks for files too
large to rewrite): first one greedy reply, then several sampled ones, then a reflection round
that shows the model what its best try still gets wrong. `verify` tries one candidate at a time
on a scratch copy of the repository; `land` writes the first that passes into the user's tree
as one all-or-nothing patch. Failure is cheap: a candidate that fails costs a test run, never
the user's files. Every node's result is checkpointed, so a killed run resumes where it stopped
and never lands an edit twice.
"""

from __future__ import annotations

import ast
import builtins
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field
from turnout.agent import prompts
from turnout.agent.edits import Edit, parse_reply, render_edits
from turnout.agent.examples import dotted, example_tests, module_names
from turnout.agent.localize import localize, module_path, repo_map, search_roots
from turnout.agent.mutants import (
    assignment_lines,
    imported_reads,
    interleaved,
    mutants_of,
    string_lines,
    suspicious_lines,
    traced_lines,
)
from turnout.agent.testrun import (
    TestOutcome,
    failing_files,
    failing_test_ids,
    is_test_file,
    parse_test_result,
)
from turnout.agent.workspace import Scratch, Trial, land, read_text_or_none, syntax_error
from turnout.runtimes.base import ChatModel, ChatRequest, ChatResponse, Message, ToolHost

Mode = Literal["repair", "task"]


class AgentConfig(BaseModel):
    """How one run behaves. Every bound is here, with a default that suits a 1.5B model on a CPU."""

    max_steps: int = Field(default=12, ge=1, description="model calls allowed in the whole run")
    max_tokens: int = Field(default=3072, ge=64, description="most tokens one reply may have")
    context_chars: int = Field(
        default=10_000, ge=1000, description="budget for the files shown whole in the first prompt"
    )
    map_chars: int = Field(default=2500, ge=0, description="budget for the repository map")
    whole_file_chars: int = Field(
        default=6000, ge=200,
        description="files up to this size are rewritten whole; larger ones by SEARCH/REPLACE",
    )
    samples: int = Field(
        default=4, ge=0, description="candidates sampled when the greedy one fails (0: greedy only)"
    )
    reflections: int = Field(
        default=1, ge=0, description="rounds that show the model what its best try still fails"
    )
    alternatives: int = Field(
        default=4, ge=0,
        description="one-place fixes asked for in an alternatives round, each tried on its own "
        "(0: no such rounds)",
    )
    spec_tests: bool = Field(
        default=True,
        description="in a task run (no failing test), first write tests from the task's own "
        "words and verify every candidate against them as well as the repository's tests",
    )
    spec_max_tokens: int = Field(default=700, ge=64, description="most tokens of those tests")
    spec_tries: int = Field(default=2, ge=1, description="replies asked for those tests, at most")
    spec_example_chars: int = Field(
        default=2500, ge=0, description="an existing test file up to this size is shown whole as "
        "the example to follow (fixtures and all); a longer one by its imports"
    )
    trace: bool = Field(
        default=True,
        description="show the model what the code did while the first failing test ran (its "
        "calls, the values each line assigned, its returns): the assertion says what came out, "
        "the trace how",
    )
    mutants: int = Field(
        default=60, ge=0,
        description="one-token variations of the lines the failing test ran (a comparison, an "
        "off-by-one, a constant), tried after the greedy reply fails, before any sampling "
        "(0: none)",
    )
    sample_temperature: float = Field(default=0.7, gt=0, le=2, description="for sampled candidates")
    max_candidates: int = Field(default=40, ge=1, description="candidates tried in the whole run")
    seed: int = Field(default=1, description="first seed of the sampled candidates")
    drafter: str | None = Field(
        default="suffix",
        description="the local runtime's speculative drafter for greedy replies: rewrites copy "
        "most of their text from the prompt, which a suffix drafter predicts",
    )


class Candidate(BaseModel):
    """One proposed change and what became of it."""

    id: int
    round: int
    temperature: float
    seed: int | None
    reply: str
    edits: list[Edit]
    base: int = -1  # the candidate this one was written on top of (a reflection), -1 = the repo
    route: str = ""  # the target that wrote it ("mutation": a variation tried without a model)
    status: Literal["pending", "passed", "failed", "duplicate", "unreadable"] = "pending"
    files: dict[str, str] = {}
    failures: int = 10_000
    summary: str = ""
    feedback: str = ""  # what the tests (or the edit server) said, for a reflection round
    seconds: float = 0.0
    # The repository's own tests pass; only the checks written from the task fail (or the
    # candidate passed). A task run that finds no full pass lands the best such candidate.
    green: bool = False
    # Of a green candidate: whether it passes the examples the task states in code, which the
    # task's author wrote (the rest of the task's checks the model wrote, and may have got wrong).
    stated_ok: bool = False


class RunState(TypedDict, total=False):
    mode: Mode
    messages: list[dict[str, Any]]  # system prompt and first prompt, shared by every round
    shown: dict[str, str]  # files shown to the model, with their text
    spec: dict[str, str]  # tests written from the task (task runs), laid on every candidate's copy
    test_files: list[str]  # the repository's tests about the code shown
    traced: str  # the failing test that was traced ("" when none was)
    trace: str  # what the code under test did while it ran
    forms: dict[str, str]  # file -> "whole" | "replace": how the model is asked to edit it
    round: int
    candidates: list[dict[str, Any]]
    winner: int  # id of the candidate that passed; -1 while none has
    originals: dict[str, str | None]  # the winner's files in the user's tree before landing
    exit_status: str  # empty while the run goes on
    tests_before: dict[str, Any]
    tests_after: dict[str, Any]
    step: int  # model calls so far
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int
    model_seconds: float
    tokens_by_target: dict[str, int]  # prompt + completion tokens, per target that answered
    first_edit_seconds: float  # run time when the winner landed; 0 = nothing landed
    summary: str
    error: str


Emit = Callable[..., None]

_ONLY_GREEN = re.compile(r"\b(tests?|suite|ci)\b.*\b(pass|passing|green|fail|failing|broken)\b"
                         r"|\b(fix|repair)\b.*\b(tests?|failures?|build)\b", re.IGNORECASE)
_ASKS_FOR_MORE = re.compile(
    r"\b(add|implement|create|write|support|accept|allow|change|rename|refactor|remove|delete|"
    r"extend|introduce|update|replace|convert|handle|return|raise|print|show)\b",
    re.IGNORECASE,
)


def asks_only_for_green_tests(task: str) -> bool:
    """"make the tests pass" asks for nothing a passing suite has not done already; "add a
    --verbose flag" does."""
    return bool(_ONLY_GREEN.search(task)) and not _ASKS_FOR_MORE.search(task)


def build_graph(
    model: ChatModel, host: ToolHost, scratch: Scratch, repo: Path, task: str,
    config: AgentConfig, emit: Emit, clock: Callable[[], float],
) -> StateGraph:
    """`host` reaches the user's tree (approvals in front of it); `scratch` is where candidates
    are tried. `clock` gives the run's elapsed seconds, resumed runs included."""

    def run_tests() -> TestOutcome:
        result = host.call_tool("run_tests", {})
        if result.is_error:
            return TestOutcome(exit_code=-1, summary="the test tool failed", output=result.content)
        return parse_test_result(result.content)

    def trace_failure(output: str) -> tuple[str, str]:
        """The first failing test and what the code under test did while it ran ("" when the
        test command is not pytest, or the trace shows nothing)."""
        failing = failing_test_ids(output)
        if not failing:
            return "", ""
        result = host.call_tool("trace_test", {"test": failing[0]})
        if result.is_error or not result.content.strip():
            emit("trace_failed", test=failing[0], reason=result.content[:300])
            return "", ""
        return failing[0], result.content

    def prepare(state: RunState) -> RunState:
        before = run_tests()
        emit("tests_before", exit_code=before.exit_code, summary=before.summary)
        update: RunState = {
            "tests_before": before.model_dump(), "tests_after": before.model_dump(),
            "step": 0, "round": 0, "candidates": [], "winner": -1, "originals": {},
            "prompt_tokens": 0, "completion_tokens": 0, "cached_prompt_tokens": 0,
            "model_seconds": 0.0, "tokens_by_target": {}, "first_edit_seconds": 0.0, "summary": "", "exit_status": "",
        }
        green = tests_ok(before)
        if green and asks_only_for_green_tests(task):
            update["exit_status"] = "already_passing"
            return update
        mode: Mode = "task" if green else "repair"
        found = localize(repo, "" if green else before.output, task)
        traced, trace = trace_failure(before.output) if mode == "repair" and config.trace else ("", "")
        if trace:
            emit("traced", test=traced, lines=trace.count("\n") + 1)
        shown, forms = choose_shown(repo, found.files, config, traced_lines(trace))
        emit("localized", mode=mode, files=list(shown), forms=forms,
             reasons={rel: found.reasons.get(rel, "") for rel in shown})
        context = prompts.context_prompt(
            task, before, mode, shown, repo_map(repo, exclude=list(shown), max_chars=config.map_chars),
            trace=(traced, trace),
        )
        system = prompts.SYSTEM_REPAIR if mode == "repair" else prompts.SYSTEM_TASK
        update.update(
            mode=mode, shown=shown, forms=forms, spec={}, test_files=found.test_files,
            traced=traced, trace=trace,
            messages=[Message(role="system", content=system).model_dump(),
                      Message(role="user", content=context).model_dump()],
        )
        return update

    def specify(state: RunState) -> RunState:
        """A task run has no failing test to tell a right change from a wrong one, so first
        the task's own words become tests: each example and rule it states, as a pytest file
        laid on every candidate's copy (never on the user's tree)."""
        path = spec_path(repo, state.get("test_files") or [])
        example = read_text_or_none(repo / state["test_files"][0]) if state.get("test_files") else None
        if example is not None and len(example) > config.spec_example_chars:
            example = prompts.import_lines(example)  # a long test file: its imports and set-up
        system, context = (Message.model_validate(m) for m in state["messages"])
        request = ChatRequest(
            messages=[Message(role="system", content=prompts.SYSTEM_SPEC),
                      Message(role="user", content=f"{context.content}\n\n"
                              f"{prompts.spec_form(path, (example or '').strip())}")],
            max_tokens=config.spec_max_tokens, temperature=0.0,
            drafter=config.drafter,
        )
        update: RunState = {"step": state["step"]}
        # The examples the task states in code are tests as they stand, no model needed.
        examples = stated_examples(state, path)
        if examples:
            problem = spec_verdict(scratch.run_with(examples))
            emit("spec_examples", path=next(iter(examples)), tests=next(iter(examples.values())).count("def test_"),
                 problem="" if problem.startswith("the tests pass") else problem)
            if problem and not problem.startswith("the tests pass"):
                examples = {}  # they cannot run here; the task's words are still the model's
        # Greedy first; tests that cannot judge a change (they already pass, or do not set up)
        # are worth one sampled try more, since a wrong verdict costs every later round.
        found: dict[str, str] = {}
        first, reply, problem = request, None, ""
        for attempt in range(config.spec_tries):
            if attempt and reply is not None:
                # Once more, sampled, with the tests that could not judge and why.
                retry = prompts.spec_retry(problem, new_names(task, state.get("shown") or {}))
                request = first.model_copy(update={
                    "temperature": config.sample_temperature, "seed": config.seed + attempt, "drafter": None,
                    "messages": [*first.messages, Message(role="assistant", content=reply.raw_text or reply.text),
                                 Message(role="user", content=retry)]})
            started = clock()
            replies, calls = sample(model, request)
            reply = replies[0]
            update["step"] += calls
            update.update(accumulate({**state, **update}, replies))  # type: ignore[typeddict-item]
            text = prompts.spec_code(reply.raw_text or reply.text)
            problem = spec_problem(path, text) or spec_verdict(scratch.run_with({path: text}))
            emit("spec", path=path, attempt=attempt, tests=text.count("def test_"), problem=problem,
                 seconds=round(clock() - started, 2), completion_tokens=reply.usage.completion_tokens)
            if not problem:
                found = {path: text}
                break
        spec = {**found, **examples}
        if spec:
            update["spec"] = spec
            sections = "\n\n".join(prompts.spec_section(rel, text) for rel, text in spec.items())
            update["messages"] = [system.model_dump(), Message(
                role="user", content=f"{context.content}\n\n{sections}").model_dump()]
        return update

    def stated_examples(state: RunState, spec_file: str) -> dict[str, str]:
        """The task's own examples as a test file beside the task's tests ({} when none)."""
        test_files = state.get("test_files") or []
        existing = read_text_or_none(repo / test_files[0]) if test_files else None
        roots = search_roots(test_files[0], repo) if test_files else [repo, repo / "src"]
        shown = list(state.get("shown") or {})
        target = dotted(repo / shown[0], roots) if shown else ""
        text = example_tests(task, prompts.import_lines(existing or ""), module_names(repo, shown, roots), target)
        return {spec_file.replace(SPEC_FILE, EXAMPLES_FILE): text} if text else {}

    def propose(state: RunState) -> RunState:
        candidates = [Candidate.model_validate(c) for c in state["candidates"]]
        rnd = state["round"]
        plan = round_plan(rnd, config, state["mode"])
        # Variations cost no model call and have their own bound (`mutants`).
        written = sum(1 for c in candidates if c.route != "mutation")
        room = min(config.max_steps - state["step"], config.max_candidates - written)
        if plan is not None and plan.kind == "mutants":
            room = config.mutants
        if plan is None or room <= 0:
            fallback = best_green(candidates)
            if fallback is not None:
                # No try passed the task's own checks, which the model wrote and may have got
                # wrong: the one closest to them that keeps the repository's tests green lands.
                return {"winner": fallback.id, "originals": originals_of(fallback)}
            return {"exit_status": give_up_status(candidates)}
        if plan.kind == "mutants":
            found = mutant_candidates(state, rnd, len(candidates), config.mutants)
            return {"round": rnd + 1, "candidates": [c.model_dump() for c in candidates + found]}
        n, temperature = min(plan.n, room), plan.temperature
        base = best(candidates) if plan.kind == "reflect" else None
        if plan.kind == "reflect" and base is None:
            return {"round": rnd + 1}  # nothing was tried that a reflection could build on
        messages = round_messages(state, plan, base, config)
        seed = config.seed + 100 * rnd
        budget = (config.alternatives * 120 + 200 if plan.kind == "alternatives"
                  else reply_budget(state["shown"], state["forms"], config))
        request = ChatRequest(
            messages=messages, max_tokens=budget,
            temperature=temperature, seed=seed if temperature > 0 else None, n=n,
            drafter=config.drafter if temperature == 0 else None,
        )
        started = clock()
        replies, calls = sample(model, request)
        seconds = clock() - started
        update: RunState = {"round": rnd + 1, "step": state["step"] + calls}
        totals = accumulate(state, replies)
        update.update(totals)  # type: ignore[typeddict-item]
        # A whole definition written for an excerpted file merges into the file as it is.
        real_files = {rel: read_text_or_none(repo / rel) or text for rel, text in state["shown"].items()}
        for offset, reply in enumerate(replies):
            text = reply.raw_text or reply.text
            parsed = parse_reply(text, real_files)
            # Never a test (the specification), never the answer form's own example.
            edits = [e for e in parsed.edits if not is_test_file(e.path)
                     and not (e.path == prompts.EXAMPLE_PATH and not (repo / e.path).exists())]
            # An alternatives reply holds independent fixes: each is a candidate of its own.
            groups = [[e] for e in edits] if plan.kind == "alternatives" else [edits]
            for group in groups:
                candidate = Candidate(
                    id=len(candidates), round=rnd, temperature=temperature,
                    seed=seed + offset if temperature > 0 else None, reply=text, edits=group,
                    base=base.id if base is not None else -1, route=reply.route or reply.model,
                    seconds=round(seconds / len(replies), 2),
                )
                if not group:
                    candidate.status = "unreadable"
                    candidate.feedback = "; ".join(parsed.problems) or "the reply held no edit"
                    candidate.summary = "no edit in the reply"
                candidates.append(candidate)
            emit("model_reply", step=state["step"] + offset + 1, round=rnd, kind=plan.kind,
                 route=reply.route, model=reply.model, edits=len(edits),
                 prompt_tokens=reply.usage.prompt_tokens,
                 completion_tokens=reply.usage.completion_tokens,
                 cached_prompt_tokens=reply.stats.cached_prompt_tokens,
                 disk_prompt_tokens=reply.stats.disk_prompt_tokens,
                 prefill_s=round(reply.stats.prefill_seconds, 2),
                 decode_tps=round(reply.stats.decode_tps, 2))
        update["candidates"] = [c.model_dump() for c in candidates]
        return update

    def mutant_candidates(state: RunState, rnd: int, first_id: int, limit: int) -> list[Candidate]:
        """Variations of the lines the traced test ran, in the files the run may change, that
        pass the traced test alone (screened in one batch): only those are run on the suite."""
        trace = state.get("trace") or ""
        strings = string_lines(trace)
        sources: dict[str, str] = {}
        lines: dict[str, list[int]] = {}

        def suspect(rel: str, more: list[int]) -> None:
            # The file as it is (what was shown may be an excerpt), if the run may change it.
            source = sources.get(rel) or read_text_or_none(repo / rel)
            if source is None or is_test_file(rel):
                return
            sources[rel] = source
            lines[rel] = list(dict.fromkeys([*lines.get(rel, []), *more]))

        roots = search_roots(state["traced"].split("::")[0], repo) if state["traced"] else [repo]
        for rel, ran in traced_lines(trace).items():
            suspect(rel, ran)
            if rel not in sources:
                continue
            suspect(rel, suspicious_lines(sources[rel], ran, trace))
            for module, level, name in imported_reads(sources[rel], ran):
                target = module_path(module, level, rel, repo, roots)
                if target is not None and target != rel and (text := read_text_or_none(repo / target)):
                    try:
                        suspect(target, assignment_lines(ast.parse(text), {name}, trace))
                    except SyntaxError:
                        continue
        found = interleaved(
            [mutants_of(rel, sources[rel], rel_lines, limit, strings.get(rel, set()))
             for rel, rel_lines in lines.items()],
            limit,
        )
        if not found:
            emit("mutants", round=rnd, count=0, passed_test=0)
            return []
        started = clock()
        passing = scratch.screen(state["traced"], [(m.path, m.text) for m in found])
        emit("mutants", round=rnd, count=len(found), passed_test=len(passing or []),
             screened=passing is not None, seconds=round(clock() - started, 2))
        return [
            Candidate(id=first_id + n, round=rnd, temperature=0.0, seed=None, reply=mutant.description,
                      route="mutation", edits=[Edit(path=mutant.path, kind="whole", content=mutant.text)])
            for n, mutant in enumerate(found[i] for i in (passing or []))
        ]

    def verify(state: RunState) -> RunState:
        candidates = [Candidate.model_validate(c) for c in state["candidates"]]
        candidate = next(c for c in candidates if c.status == "pending")
        base_files = candidates[candidate.base].files if candidate.base >= 0 else {}
        spec = state.get("spec") or {}
        started = clock()
        trial = scratch.try_edits(base_files, candidate.edits, extra=spec)
        green = spec_green(trial, spec, lambda: scratch.try_edits(base_files, candidate.edits))
        judge(candidate, trial, state["mode"], candidates, state["tests_before"], green=green)
        if candidate.green and trial.tests is not None:
            stated = [rel for rel in spec if rel.endswith(EXAMPLES_FILE)]
            candidate.stated_ok = not set(stated) & set(failing_files(trial.tests.output))
        emit("candidate", id=candidate.id, round=candidate.round, seed=candidate.seed,
             status=candidate.status, failures=candidate.failures, summary=candidate.summary,
             files=sorted(candidate.files), test_seconds=round(clock() - started, 2))
        update: RunState = {"candidates": [c.model_dump() for c in candidates]}
        if candidate.status == "passed":
            update["winner"] = candidate.id
            update["originals"] = originals_of(candidate)
        return update

    def originals_of(candidate: Candidate) -> dict[str, str | None]:
        # Checkpointed before anything is written: a crash while landing resumes knowing what
        # the files held, so the report's diff stays whole.
        return {rel: read_text_or_none(repo / rel) for rel in candidate.files}

    def land_winner(state: RunState) -> RunState:
        winner = Candidate.model_validate(state["candidates"][state["winner"]])
        problem = land(host, repo, winner.files, state["originals"])
        if problem:
            emit("land_failed", reason=problem)
            return {"exit_status": "error", "error": problem}
        emit("landed", candidate=winner.id, files=sorted(winner.files), seconds=round(clock(), 2))
        after = run_tests()
        emit("tests_after", exit_code=after.exit_code, summary=after.summary)
        ok = tests_ok(after)
        summary = parse_reply(winner.reply, state["shown"]).prose
        if winner.route == "mutation":
            summary = ("Found without the model, by trying one-token variations of the lines the "
                       f"failing test ran: {winner.reply}")
        if winner.status != "passed":
            summary = (f"{summary}\n\n" if summary else "") + (
                f"(Of the checks written from the task, {winner.summary}; the repository's own "
                "tests pass.)")
        status = ("tests_passed" if state["mode"] == "repair" else "done") if ok else "error"
        return {
            "tests_after": after.model_dump(), "first_edit_seconds": round(clock(), 2),
            "summary": summary, "exit_status": status,
            "error": "" if ok else "the change passed on the scratch copy but not in the working tree",
        }

    def after_propose(state: RunState) -> str:
        if state.get("exit_status"):
            return END
        if state.get("winner", -1) >= 0:
            return "land"
        pending = any(c["status"] == "pending" for c in state["candidates"])
        return "verify" if pending else "propose"

    def after_prepare(state: RunState) -> str:
        if state.get("exit_status"):
            return END
        return "specify" if state["mode"] == "task" and config.spec_tests else "propose"

    def after_verify(state: RunState) -> str:
        if state.get("winner", -1) >= 0:
            return "land"
        pending = any(c["status"] == "pending" for c in state["candidates"])
        return "verify" if pending else "propose"

    graph = StateGraph(RunState)
    graph.add_node("prepare", prepare)
    graph.add_node("specify", specify)
    graph.add_node("propose", propose)
    graph.add_node("verify", verify)
    graph.add_node("land", land_winner)
    graph.add_edge(START, "prepare")
    graph.add_conditional_edges("prepare", after_prepare)
    graph.add_edge("specify", "propose")
    graph.add_conditional_edges("propose", after_propose)
    graph.add_conditional_edges("verify", after_verify)
    graph.add_edge("land", END)
    return graph


class Round(BaseModel):
    # fresh: answer from the first prompt; alternatives: several one-place fixes, each tried on
    # its own; reflect: on top of the best try so far, shown what it still fails
    # mutants: one-token variations of the traced lines, tried without the model
    kind: Literal["fresh", "alternatives", "reflect", "mutants"]
    n: int
    temperature: float


def round_plan(rnd: int, config: AgentConfig, mode: str = "repair") -> Round | None:
    """The order of tries. Greedy before sampled (it is the model's best guess and the cheapest);
    every fresh and alternatives round starts from the same context, so its KV cache is read once;
    a reflection builds on the best failure. Alternatives need a failing test to choose between
    them, so a task run has none."""
    greedy = {"n": 1, "temperature": 0.0}
    sampled = {"n": config.samples, "temperature": config.sample_temperature}
    alternatives = config.alternatives > 0 and mode == "repair"
    rounds = [Round(kind="fresh", **greedy)]
    if config.mutants and mode == "repair":
        rounds.append(Round(kind="mutants", n=0, temperature=0.0))
    if alternatives:
        rounds.append(Round(kind="alternatives", **greedy))
    if config.samples:
        rounds.append(Round(kind="fresh", **sampled))
        if alternatives:
            rounds.append(Round(kind="alternatives", **sampled))
    for _ in range(config.reflections):
        rounds.append(Round(kind="reflect", **greedy))
        if config.samples:
            rounds.append(Round(kind="reflect", **sampled))
    return rounds[rnd] if rnd < len(rounds) else None


def round_messages(state: RunState, plan: Round, base: Candidate | None, config: AgentConfig) -> list[Message]:
    """The shared context, then this round's answer form (and, for a reflection, the try it
    builds on and what that try still fails)."""
    system, context = (Message.model_validate(m) for m in state["messages"])
    if plan.kind == "alternatives":
        form = prompts.alternatives_form(config.alternatives)
    else:
        form = prompts.answer_form(state["mode"], state["forms"])
    messages = [system, Message(role="user", content=f"{context.content}\n\n{form}")]
    if base is not None:
        messages += [
            Message(role="assistant", content=render_edits(base.edits)),
            Message(role="user", content=prompts.reflection(base.summary, base.feedback, state["forms"])),
        ]
    return messages


def sample(model: ChatModel, request: ChatRequest) -> tuple[list[ChatResponse], int]:
    """`request.n` replies: from one call where the runtime samples them together, else one
    call per seed. Returns the replies and the number of model calls made."""
    response = model.chat(request)
    replies = list(response.candidates) or [response]
    calls = 1
    while len(replies) < request.n and request.temperature > 0:
        seed = (request.seed or 0) + len(replies)
        replies.append(model.chat(request.model_copy(update={"n": 1, "seed": seed})))
        calls += 1
    if response.candidates:
        # Usage of a batched reply covers every candidate: keep it on the first one only.
        replies = [replies[0].model_copy(update={"usage": response.usage, "stats": response.stats})] + [
            r.model_copy(update={"usage": r.usage.model_copy(update={"prompt_tokens": 0})})
            for r in replies[1:]
        ]
    return replies[: request.n], calls


def accumulate(state: RunState, replies: list[ChatResponse]) -> dict[str, Any]:
    by_target = dict(state.get("tokens_by_target") or {})
    for reply in replies:
        target = reply.route or reply.model
        by_target[target] = by_target.get(target, 0) + reply.usage.prompt_tokens + reply.usage.completion_tokens
    return {
        "tokens_by_target": by_target,
        "prompt_tokens": state["prompt_tokens"] + sum(r.usage.prompt_tokens for r in replies),
        "completion_tokens": state["completion_tokens"] + sum(r.usage.completion_tokens for r in replies),
        "cached_prompt_tokens": state["cached_prompt_tokens"]
        + sum(r.stats.cached_prompt_tokens for r in replies),
        "model_seconds": state["model_seconds"]
        + sum(r.stats.prefill_seconds + r.stats.decode_seconds for r in replies),
    }


def judge(
    candidate: Candidate, trial: Trial, mode: str, earlier: list[Candidate], before: dict[str, Any],
    green: bool = False,
) -> None:
    """Fill in what the trial says about the candidate; a repeat of an earlier try is marked so
    and costs nothing more. `green`: the repository's own tests pass, though the task's do not."""
    candidate.files = trial.files
    same = next((c for c in earlier if c.id != candidate.id and c.files == trial.files
                 and c.status in {"passed", "failed"}), None)
    if trial.files and same is not None:
        candidate.status, candidate.failures = "duplicate", same.failures
        candidate.summary, candidate.feedback = f"same change as candidate {same.id}", same.feedback
        candidate.green = same.green
        return
    candidate.green = green and bool(trial.files)
    tests_before = TestOutcome.model_validate(before)
    ok = trial.tests is not None and not trial.syntax_errors and tests_ok(trial.tests, tests_before)
    candidate.failures = 0 if ok else trial.failures
    if ok and trial.files:
        candidate.status, candidate.summary = "passed", trial.tests.summary if trial.tests else ""
        candidate.green = True
        return
    candidate.status = "failed"
    if trial.syntax_errors:
        candidate.summary = "the changed code does not parse"
        candidate.feedback = "\n".join(trial.syntax_errors + trial.edit_errors)
    elif trial.tests is None:
        candidate.summary = "no edit applied"
        candidate.feedback = "\n".join(trial.edit_errors)
    else:
        candidate.summary = trial.tests.summary or f"exit code {trial.tests.exit_code}"
        notes = "\n".join(trial.edit_errors)
        candidate.feedback = (notes + "\n" if notes else "") + trial.tests.output


def tests_ok(outcome: TestOutcome, before: TestOutcome | None = None) -> bool:
    """Green, or (for a repository with no tests at all) still no tests: pytest's exit 5."""
    if outcome.passed:
        return True
    no_tests = outcome.exit_code == 5 and not outcome.timed_out
    return no_tests and (before is None or before.exit_code == 5)


def best(candidates: list[Candidate]) -> Candidate | None:
    """The try closest to passing: the repository's tests green first, then fewest failures,
    earliest first (greedy before sampled)."""
    tried = [c for c in candidates if c.status in {"failed", "duplicate"} and c.files]
    return min(tried, key=lambda c: (not c.green, c.failures, c.id)) if tried else None


def best_green(candidates: list[Candidate]) -> Candidate | None:
    """Of the tries that keep the repository's tests green, the one closest to the task's own:
    first those that pass the examples the task states, then by fewest failures."""
    green = [c for c in candidates if c.green and c.status == "failed"]
    return min(green, key=lambda c: (not c.stated_ok, c.failures, c.id)) if green else None


def spec_green(trial: Trial, spec: dict[str, str], without_spec: Callable[[], Trial]) -> bool:
    """Whether a trial that fails fails only the task's own tests, the repository's passing.
    When those tests stopped pytest at collection (their import of a name the candidate did
    not add, say), nothing else ran: the candidate is tried once more without them."""
    if not spec or trial.tests is None or trial.syntax_errors or trial.tests.passed:
        return False
    failing = failing_files(trial.tests.output)
    if not failing or not set(failing) <= set(spec):
        return False
    if re.search(r"\d+ passed", trial.tests.summary):
        return True
    plain = without_spec()
    return plain.tests is not None and plain.tests.passed and not plain.syntax_errors


def spec_verdict(before: TestOutcome) -> str:
    """Why tests written from the task, run on the code as it is, cannot judge a change ("" when
    they can): they already pass (they check nothing the task adds), or they fail to set up
    (a fixture that does not exist), which no change to the code can mend."""
    if before.passed:
        return "the tests pass before any change, so they check nothing the task adds"
    setup = re.search(r"fixture '[^']+' not found", before.output) or re.search(
        r"ERROR at setup of \S+", before.output)
    return f"the tests cannot run: {setup.group(0)}" if setup else ""


def new_names(task: str, shown: dict[str, str]) -> list[str]:
    """The names and flags the task writes as code (`stats()`, `--verbose`, `median(values)`)
    that the code shown does not hold yet: what the task's tests must exercise."""
    spans = (re.findall(r"`([^`]+)`", task) + re.findall(r"(?<![\w.-])([A-Za-z_]\w*)\(", task)
             + re.findall(r"(?<![\w-])(--[A-Za-z][\w-]*)", task))
    names = []
    for span in spans:
        match = re.match(r"\s*(--?[A-Za-z][\w-]*|[A-Za-z_][\w.]*)", span)
        name = match.group(1) if match else ""
        if name and name not in vars(builtins) and not any(name in text for text in shown.values()):
            names.append(name)
    return list(dict.fromkeys(names))


def spec_path(repo: Path, test_files: list[str]) -> str:
    """Where the task's tests go: beside the repository's tests about the same code (so their
    conftest.py and import paths apply), else in tests/, else at the top."""
    folder = test_files[0].rpartition("/")[0] if test_files else ("tests" if (repo / "tests").is_dir() else "")
    return f"{folder}/{SPEC_FILE}" if folder else SPEC_FILE


SPEC_FILE = "test_turnout_task.py"
EXAMPLES_FILE = "test_turnout_examples.py"


def spec_problem(path: str, text: str) -> str:
    """Why a reply cannot serve as the task's tests ("" when it can)."""
    if "def test" not in text:
        return "the reply held no test function"
    return syntax_error(path, text)


def give_up_status(candidates: list[Candidate]) -> str:
    return "no_candidate_passed" if candidates else "max_steps"


def choose_shown(
    repo: Path, files: list[str], config: AgentConfig, ran: dict[str, list[int]] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """The localized files that fit the budget, most relevant first, and how each is edited.
    A file too large to show whole is shown as an excerpt of what the failing test ran in it
    (edited by SEARCH/REPLACE), or else left to the map: better a clear view of the likely code
    than a truncated view of everything."""
    shown: dict[str, str] = {}
    forms: dict[str, str] = {}
    budget = config.context_chars
    for rel in files:
        text = read_text_or_none(repo / rel)
        if text is not None and len(text) > budget and (ran or {}).get(rel):
            part = excerpt(text, ran[rel])  # type: ignore[index]
            if len(part) <= budget:
                budget -= len(part)
                shown[rel], forms[rel] = part, "replace"
            continue
        if text is None or len(text) > budget:
            continue
        budget -= len(text)
        shown[rel] = text
        forms[rel] = "whole" if len(text) <= config.whole_file_chars else "replace"
    return shown, forms


def excerpt(source: str, lines: list[int], small: int = 8) -> str:
    """The file with every top-level function or class that holds none of `lines` (and is
    longer than `small` lines: short helpers show the module's own conventions) replaced by a
    line naming it. What is shown is exactly as it is in the file, so SEARCH blocks copy it."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    text = source.splitlines()
    wanted = set(lines)
    hidden: dict[int, str] = {}  # first line of a hidden definition -> its name
    hidden_lines: set[int] = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        last = node.end_lineno or node.lineno
        if wanted & set(range(first, last + 1)) or last - first + 1 <= small:
            continue
        hidden[first] = node.name
        hidden_lines.update(range(first, last + 1))
    # Blank lines between two hidden definitions go too: one marker names a run of them.
    for number, line in enumerate(text, 1):
        if not line.strip() and number not in hidden_lines:
            before = next((n for n in range(number - 1, 0, -1) if text[n - 1].strip()), 0)
            after = next((n for n in range(number + 1, len(text) + 1) if text[n - 1].strip()), 0)
            if before in hidden_lines and after in hidden_lines:
                hidden_lines.add(number)
    out: list[str] = []
    names: list[str] = []
    for number, line in enumerate(text, 1):
        if number in hidden:
            names.append(hidden[number])
        if number in hidden_lines:
            continue
        if names:
            out.append(f"# ... not shown: {', '.join(names)}")
            names = []
        out.append(line)
    if names:
        out.append(f"# ... not shown: {', '.join(names)}")
    return "\n".join(out) + "\n"


def reply_budget(shown: dict[str, str], forms: dict[str, str], config: AgentConfig) -> int:
    """Room for the reply: every whole-form file rewritten (about 3.5 characters a token for
    code), plus room for blocks and a paragraph."""
    whole = sum(len(shown[rel]) for rel, form in forms.items() if form == "whole")
    return max(256, min(config.max_tokens, int(whole / 3.2) + 400))


def elapsed_clock() -> Callable[[], float]:
    """Seconds since this process began the run (a resumed run counts from its resumption)."""
    start = time.perf_counter()
    return lambda: time.perf_counter() - start
