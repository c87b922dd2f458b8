"""Chat models for tests: part of the product, so users can test agents and policies offline.

`ScriptedModel`: each call to `chat` returns the next scripted reply. A reply given as a string
goes through the same tool-call parser as a real model's text, so a script can contain
malformed calls exactly as a small model would emit them.

`FunctionModel`: each reply is what a Python function of the request returns, already
structured (a `ChatResponse`, tool calls as `ToolCall`s): for a test that decides a reply from
the request, or wants a reply no text would parse into.

`FailingModel`: a target that is down.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from turnout.runtimes.base import ChatRequest, ChatResponse, Usage
from turnout.runtimes.errors import RuntimeFailure
from turnout.runtimes.textprotocol.parse import parse_tool_calls

ScriptStep = str | Callable[[ChatRequest], str]


class ScriptedModel:
    """Answers from a script of raw replies (strings, or functions of the request)."""

    def __init__(self, script: Sequence[ScriptStep], name: str = "scripted") -> None:
        self.name = name
        self._script = list(script)
        self.requests: list[ChatRequest] = []

    def chat(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        if len(self.requests) > len(self._script):
            raise RuntimeFailure(
                f"{self.name}: the script has {len(self._script)} replies and call "
                f"{len(self.requests)} asked for another; add replies to the script"
            )
        step = self._script[len(self.requests) - 1]
        raw = step(request) if callable(step) else step
        parsed = parse_tool_calls(raw, request.tools)
        prompt_tokens = sum(len(m.content) for m in request.messages) // 4
        return ChatResponse(
            text=parsed.text,
            tool_calls=parsed.calls,
            problems=[p.message for p in parsed.problems],
            raw_text=raw,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=max(1, len(raw) // 4)),
            model=self.name,
        )


class FunctionModel:
    """Answers with what `fn(request)` returns: a structured `ChatResponse`, used as it is (no
    parsing, no validation); its `model` is this model's name where the function left it empty.
    Every request is recorded in `requests`."""

    def __init__(self, fn: Callable[[ChatRequest], ChatResponse], name: str = "function") -> None:
        self.name = name
        self.fn = fn
        self.requests: list[ChatRequest] = []

    def chat(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        reply = self.fn(request)
        if not isinstance(reply, ChatResponse):
            raise TypeError(
                f"{self.name}: the function returned {type(reply).__name__}; return a "
                "ChatResponse (text, tool_calls=[ToolCall(...)], ...), or use ScriptedModel "
                "for raw text"
            )
        return reply if reply.model else reply.model_copy(update={"model": self.name})


class FailingModel:
    """A target that is down: every call is recorded and fails with `RuntimeFailure`, as a runtime
    does once its bounded retries are spent. For testing fallbacks and fail-closed policies."""

    def __init__(self, name: str = "failing", message: str = "the target is down") -> None:
        self.name = name
        self.message = message
        self.requests: list[ChatRequest] = []

    def chat(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        failure = RuntimeFailure(f"{self.name}: {self.message}; check that it is running and reachable")
        failure.attempts = 1
        raise failure
