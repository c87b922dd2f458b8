"""What the networked runtimes share on the wire, written once.

Provides `WireModel`, the common part of their constructors (name, config, the one
`RetryLayer`, the SDK client's options: its own retries off) and of their send path (each
attempt timed, streamed or not, through the retry layer); `AssembledReply` and `NativeCall`,
one attempt's reply before it becomes a `ChatResponse`; `calls_from_native`, structured tool
calls validated against the tools' schemas; and `classify_sdk_error`, an exception of the
OpenAI or Anthropic SDK (or of their transport) mapped to a transient or permanent failure,
which the `RetryLayer` retries or turns into `UpstreamFailure` of `runtimes/errors.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar, Protocol

import httpx2
from turnout.runtimes.base import (
    ChatRequest,
    ChatResponse,
    GenerationStats,
    ToolCall,
    ToolSpec,
    Usage,
)
from turnout.runtimes.remote.retry import (
    CircuitBreaker,
    PermanentError,
    Pricing,
    RetryLayer,
    RetryPolicy,
    RunBudget,
    TransientError,
    estimate_prompt_tokens,
    status_error,
)
from turnout.runtimes.textprotocol.parse import validate_call

__all__ = [
    "AssembledReply",
    "NativeCall",
    "WireConfig",
    "WireModel",
    "calls_from_native",
    "classify_sdk_error",
    "error_code",
]


class WireConfig(Protocol):
    """What `WireModel` reads from a runtime's config (`OpenAIConfig`, `AnthropicConfig` fit)."""

    model: str
    base_url: str
    stream: bool
    retry: RetryPolicy
    pricing: Pricing


class AttemptsShown:
    """The text sink of one request across its attempts: when a stream broke after some text was
    shown and the retry layer tries again, the reader is told the reply starts over."""

    def __init__(self, sink: Callable[[str], None] | None) -> None:
        self.sink = sink
        self.shown = False

    def next(self) -> Callable[[str], None] | None:
        if self.sink is None:
            return None
        if self.shown:
            self.sink("\n(the stream broke; the reply starts again)\n")
            self.shown = False
        return self._show

    def _show(self, text: str) -> None:
        self.shown = True
        assert self.sink is not None
        self.sink(text)


class WireModel:
    """The common part of a networked `ChatModel`: its name, its config, its SDK client and its
    `RetryLayer`, the only retry layer (the client is made with `client_options`: its retries
    off). A runtime says only what differs: `runtime`, the prefix of its default name,
    `make_client`, and how one attempt is sent (`complete_once`, `stream_once`)."""

    runtime: ClassVar[str]

    def __init__(
        self,
        config: WireConfig,
        *,
        api_key: str,
        name: str | None = None,
        breaker: CircuitBreaker | None = None,
        budget: RunBudget | None = None,
        logger: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.name = name or f"{self.runtime}:{config.model}"
        self.retry_layer = RetryLayer(
            self.name,
            config.retry,
            breaker=breaker,
            budget=budget,
            pricing=config.pricing,
            logger=logger,
            sleep=sleep,
        )
        self._client = self.make_client(api_key)

    def make_client(self, api_key: str) -> Any:
        """The SDK client this runtime sends through."""
        raise NotImplementedError

    def complete_once(self, params: dict[str, Any]) -> AssembledReply:
        """One attempt, the reply in one piece; failures raised as TransientError or
        PermanentError."""
        raise NotImplementedError

    def stream_once(self, params: dict[str, Any], on_text: Callable[[str], None] | None = None) -> AssembledReply:
        """One attempt, the reply streamed and assembled, each piece of text also given to
        `on_text` as it arrives; failures as `complete_once`."""
        raise NotImplementedError

    def send(self, request: ChatRequest, params: dict[str, Any]) -> ChatResponse:
        """The request body `params` sent through the retry layer, one `send_once` an attempt."""
        attempts = AttemptsShown(request.on_text)
        return self.retry_layer.chat(request, lambda: self.send_once(request, params, attempts.next()))

    def send_once(
        self, request: ChatRequest, params: dict[str, Any], on_text: Callable[[str], None] | None = None
    ) -> ChatResponse:
        """One upstream attempt, streamed or not as the config says, timed."""
        started = time.perf_counter()
        reply = self.stream_once(params, on_text) if self.config.stream else self.complete_once(params)
        reply.seconds = time.perf_counter() - started
        return self.response(request, reply)

    @staticmethod
    def client_options(config: WireConfig, api_key: str) -> dict[str, Any]:
        """The keyword arguments every SDK client of turnout is made with."""
        return {
            "api_key": api_key,
            "base_url": config.base_url,
            "max_retries": 0,  # RetryLayer is the only retry layer
            "timeout": config.retry.timeout_s,
        }

    def response(self, request: ChatRequest, reply: AssembledReply) -> ChatResponse:
        """One attempt's reply as a `ChatResponse`, its native calls validated."""
        calls, problems = calls_from_native(reply.tool_calls, request.tools)
        return ChatResponse(
            text=reply.text,
            tool_calls=calls,
            problems=problems,
            raw_text=reply.text,
            finish_reason=reply.finish_reason or "stop",
            usage=reply.usage_or_estimate(request),
            stats=reply.stats(request),
            model=self.name,
        )


class NativeCall:
    """A tool call as the API returned it: arguments still a JSON string."""

    def __init__(self, call_id: str, name: str, arguments: str) -> None:
        self.id = call_id
        self.name = name
        self.arguments = arguments


class AssembledReply:
    """What one attempt produced, before it becomes a ChatResponse."""

    def __init__(self, text: str = "", finish_reason: str | None = None) -> None:
        self.text = text
        self.finish_reason: str | None = finish_reason
        self.tool_calls: list[NativeCall] = []
        self.usage: Usage | None = None
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.seconds = 0.0

    def usage_or_estimate(self, request: ChatRequest) -> Usage:
        if self.usage is not None:
            return self.usage
        # Some servers (llama_cpp.server when streaming) send no usage; an estimate keeps the
        # run's token budget honest rather than counting nothing.
        arguments = sum(len(call.arguments) for call in self.tool_calls)
        return Usage(
            prompt_tokens=estimate_prompt_tokens(request),
            completion_tokens=(len(self.text) + arguments) // 4 + 1,
        )

    def stats(self, request: ChatRequest) -> GenerationStats:
        usage = self.usage_or_estimate(request)
        prefill = (self.first_token_at - self.started) if self.first_token_at else 0.0
        return GenerationStats(
            prompt_tokens=usage.prompt_tokens,
            prefill_seconds=prefill,
            decode_seconds=max(self.seconds - prefill, 0.0),
            completion_tokens=usage.completion_tokens,
        )


def calls_from_native(
    native: list[NativeCall], tools: list[ToolSpec]
) -> tuple[list[ToolCall], list[str]]:
    """Validate structured tool calls against the tools' schemas: (valid calls, problems)."""
    calls: list[ToolCall] = []
    problems: list[str] = []
    for index, call in enumerate(native):
        arguments, problem, _repairs = validate_call(call.name, call.arguments or None, tools)
        if arguments is None:
            problems.append(problem.message if problem is not None else f"{call.name}: invalid")
            continue
        calls.append(
            ToolCall(id=call.id or f"call_{index + 1}", name=call.name, arguments=arguments)
        )
    return calls, problems


def classify_sdk_error(
    exc: Exception, sdk: ModuleType, *, mid_stream: bool
) -> TransientError | PermanentError:
    """An exception from a provider SDK (`openai` or `anthropic`, whose exception classes have
    the same names and shapes) or its transport, as a transient or permanent failure.

    An error inside a 200 stream is a transient `stream_error`: the server gave up part-way
    through an answer. The OpenAI SDK raises it as a bare `APIError`; the Anthropic SDK as an
    `APIStatusError` carrying the stream's status below 400 (`overloaded_error`, `api_error`).
    Anything else is not an upstream failure but a bug here: it is raised as it is, never
    retried or hidden.
    """
    if isinstance(exc, TransientError | PermanentError):
        return exc
    if isinstance(exc, sdk.APITimeoutError | httpx2.TimeoutException):
        return TransientError("timeout", "no answer within timeout_s")
    if isinstance(exc, sdk.APIConnectionError | httpx2.TransportError):
        if mid_stream:
            return TransientError("stream_cut", "the connection broke in the middle of the stream")
        return TransientError("connection", "could not connect or the connection broke")
    if isinstance(exc, sdk.APIStatusError):
        if exc.status_code < 400:
            return TransientError("stream_error", error_code(exc.body))
        return status_error(exc.status_code, exc.response.headers, error_code(exc.body))
    if isinstance(exc, sdk.APIResponseValidationError) or (
        mid_stream and isinstance(exc, ValueError)
    ):
        return TransientError("bad_reply", "the server's reply did not parse")
    if isinstance(exc, sdk.APIError):
        return TransientError("stream_error", error_code(exc.body))
    raise exc


def error_code(body: object) -> str:
    """The error's type and code from an API error body: never its message, which can quote
    the request."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            parts = [str(error[key]) for key in ("type", "code") if error.get(key)]
            return "/".join(parts)
    return ""
