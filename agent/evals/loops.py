"""`turnout eval loops`: the loop guards on data, not anecdotes.

`eval_loops` feeds every trace of the scripted corpus (`agent/traces.py`) to a fresh
`LoopDetector`, step by step the way the agent loop feeds it, and every reply to a
`RepetitionGuard`, token by token: how many looping traces are caught and how soon, how many
healthy ones are nudged or stopped, how many degenerate replies are cut short and how early.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from turnout.agent.guards import LoopDetector
from turnout.agent.traces import REPLIES, TRACES
from turnout.runtimes.local import models
from turnout.runtimes.local.repetition import RepetitionGuard


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
    for name in (models.DEFAULT_MODEL, models.TEST_MODEL):
        if models.is_installed(name):
            # Imported only when a model is installed: loading llama-cpp-python takes a while.
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
