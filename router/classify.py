"""Work classes: what kind of work a request is, so the policy can order its targets.

- `repetitive`: continuing after a tool result (tool-call JSON, summarising output, patching or
  rewriting code already in front of the model), or more sampled tries at a prompt (a request
  for several completions, or one at a temperature with a seed: the agent's cheap extra
  candidates, each checked by the tests). A small local model does this well and fast.
- `hard`: planning a fix (the first turn of a task) or the same tests failing again after edits.
- `escalation`: the agent's guards flagged invalid output or a loop (`ChatRequest.escalate`), or
  the model's last reply was rejected as an invalid call.

The classifier reads only the request's shape and the agent's own markers, locally and in
microseconds; it never asks a model.
"""

from __future__ import annotations

import json

from pydantic import BaseModel
from turnout.router.policy import WorkClass
from turnout.runtimes.base import ChatRequest

# Phrases the agent loop (agent/loop.py) writes into the conversation.
INVALID_CALL_MARKER = "tool call was not valid"
STILL_FAILING_MARKERS = ("still fail",)
REPEATED_FAILURES_FOR_HARD = 2


class WorkAssessment(BaseModel):
    work_class: WorkClass
    reason: str
    estimated_tokens: int  # prompt, estimated at 4 characters a token, plus the reply's max_tokens


def estimate_tokens(request: ChatRequest) -> int:
    """A deliberately generous estimate (4 characters a token) of what the request occupies in a
    context window: the messages, the tool calls, the tool schemas and the reply's allowance."""
    chars = 0
    for m in request.messages:
        chars += len(m.content) + 16
        for call in m.tool_calls:
            chars += len(call.name) + len(json.dumps(call.arguments))
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.input_schema))
    return chars // 4 + request.max_tokens


def classify(request: ChatRequest) -> WorkAssessment:
    tokens = estimate_tokens(request)
    if request.escalate:
        why = request.escalation_reason or "the agent's guards asked for escalation"
        return WorkAssessment(work_class="escalation", reason=why, estimated_tokens=tokens)
    messages = request.messages
    last = messages[-1] if messages else None
    if last is not None and last.role == "user" and INVALID_CALL_MARKER in last.content:
        return WorkAssessment(
            work_class="escalation", reason="the last reply was an invalid tool call",
            estimated_tokens=tokens,
        )
    failures = sum(
        1 for m in messages if m.role == "user" and any(k in m.content for k in STILL_FAILING_MARKERS)
    )
    if failures >= REPEATED_FAILURES_FOR_HARD:
        return WorkAssessment(
            work_class="hard", reason=f"the tests still fail after {failures} attempts",
            estimated_tokens=tokens,
        )
    if request.n > 1 or (request.temperature > 0 and request.seed is not None):
        return WorkAssessment(
            work_class="repetitive", reason=f"sampled tries ({request.n} at temperature "
            f"{request.temperature:g}), each checked by the tests", estimated_tokens=tokens,
        )
    if not any(m.role == "assistant" for m in messages):
        return WorkAssessment(
            work_class="hard", reason="first turn of a task: planning the work", estimated_tokens=tokens
        )
    if last is not None and last.role == "tool":
        return WorkAssessment(
            work_class="repetitive", reason="continuing after a tool result", estimated_tokens=tokens
        )
    return WorkAssessment(
        work_class="repetitive", reason="a follow-up turn with the context already given",
        estimated_tokens=tokens,
    )
