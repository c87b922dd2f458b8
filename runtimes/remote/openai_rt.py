"""The `openai` runtime: OpenAI's chat-completions API through the official SDK.

Provides `OpenAIConfig`, `OpenAIChatModel` (a `ChatModel`, a `WireModel`), and the wire
conversions that the `openai_compat` runtime shares: `to_openai_messages`, `to_openai_tools`,
`openai_tool_choice`.

Tools go out natively as function tools built from each `ToolSpec`'s JSON Schema; calls come
back from the structured `tool_calls` field and are checked with `validate_call`, so a call with
bad arguments becomes a problem for the loop to re-ask, never a call. Replies are streamed with
`include_usage` and assembled here: a stream that breaks before its finish reason is a failed
attempt (retried, then `UpstreamFailure`), never a short answer. The SDK's own retries are off
(`max_retries=0`); `RetryLayer` is the only one. The API key and base URL are given by the
caller (`runtimes/remote/registry.py` reads them from the environment, at the edge).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal

import openai
from pydantic import BaseModel, Field
from turnout.runtimes.base import ChatRequest, ChatResponse, Message, ToolSpec, Usage
from turnout.runtimes.remote.retry import (
    PermanentError,
    Pricing,
    RetryPolicy,
    TransientError,
)
from turnout.runtimes.remote.wire import (
    AssembledReply,
    NativeCall,
    WireModel,
    classify_sdk_error,
)

OPENAI_BASE_URL = "https://api.openai.com/v1"


class OpenAIConfig(BaseModel):
    """Settings of one OpenAI (or OpenAI-compatible) target."""

    model: str = Field(description="the model name the server knows, e.g. gpt-4.1-mini")
    base_url: str = Field(default=OPENAI_BASE_URL, description="the API root, ending in /v1")
    stream: bool = Field(default=True, description="stream replies (with usage) and assemble them")
    max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = Field(
        default="max_completion_tokens",
        description="OpenAI wants max_completion_tokens; most local servers read max_tokens",
    )
    send_sampling: bool = Field(
        default=True,
        description="send temperature and seed; off for reasoning models, which reject them",
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    pricing: Pricing = Field(default_factory=Pricing)


class OpenAIChatModel(WireModel):
    """A `ChatModel` over the OpenAI SDK; one instance per target, reused across requests."""

    config: OpenAIConfig

    runtime = "openai"

    def make_client(self, api_key: str) -> openai.OpenAI:
        return openai.OpenAI(**self.client_options(self.config, api_key))

    @property
    def client(self) -> openai.OpenAI:
        """The SDK client, for a request sent without turnout's guards (`turnout eval
        toolcalls --target plain`); it does not retry, like every request of this runtime."""
        return self._client

    def chat(self, request: ChatRequest) -> ChatResponse:
        return self.send(request, self.request_params(request, native_tools=True))

    def request_params(self, request: ChatRequest, *, native_tools: bool) -> dict[str, Any]:
        """The chat-completions body for `request` (the model and messages included)."""
        params: dict[str, Any] = {
            "model": self.config.model,
            "messages": to_openai_messages(request.messages),
            self.config.max_tokens_field: request.max_tokens,
        }
        if self.config.send_sampling:
            params["temperature"] = request.temperature
            if request.seed is not None:
                params["seed"] = request.seed
        if native_tools and request.tools:
            params["tools"] = to_openai_tools(request.tools)
            choice = openai_tool_choice(request.tool_choice)
            if choice is not None:
                params["tool_choice"] = choice
        return params

    # one attempt -----------------------------------------------------------------------------

    def complete_once(self, params: dict[str, Any]) -> AssembledReply:
        try:
            completion = self._client.chat.completions.create(**params)
        except Exception as exc:
            raise classify_openai_error(exc, mid_stream=False) from exc
        if not completion.choices:
            raise TransientError("empty_reply", "the server answered with no choices")
        choice = completion.choices[0]
        message = choice.message
        reply = AssembledReply(text=message.content or "", finish_reason=choice.finish_reason)
        for call in message.tool_calls or []:
            function = getattr(call, "function", None)
            if function is not None:
                reply.tool_calls.append(NativeCall(call.id, function.name, function.arguments))
        if completion.usage is not None:
            reply.usage = Usage(
                prompt_tokens=completion.usage.prompt_tokens,
                completion_tokens=completion.usage.completion_tokens,
            )
        return reply

    def stream_once(self, params: dict[str, Any], on_text: Callable[[str], None] | None = None) -> AssembledReply:
        reply = AssembledReply()
        text: list[str] = []
        calls: dict[int, NativeCall] = {}
        try:
            stream = self._client.chat.completions.create(
                **params, stream=True, stream_options={"include_usage": True}
            )
        except Exception as exc:
            raise classify_openai_error(exc, mid_stream=False) from exc
        try:
            with stream:
                for chunk in stream:
                    if chunk.usage is not None:
                        reply.usage = Usage(
                            prompt_tokens=chunk.usage.prompt_tokens,
                            completion_tokens=chunk.usage.completion_tokens,
                        )
                    for choice in chunk.choices[:1]:
                        if reply.first_token_at is None:
                            reply.first_token_at = time.perf_counter()
                        delta = choice.delta
                        if delta.content:
                            text.append(delta.content)
                            if on_text is not None:
                                on_text(delta.content)
                        for part in delta.tool_calls or []:
                            call = calls.setdefault(part.index, NativeCall("", "", ""))
                            call.id = part.id or call.id
                            if part.function is not None:
                                call.name += part.function.name or ""
                                call.arguments += part.function.arguments or ""
                        if choice.finish_reason is not None:
                            reply.finish_reason = choice.finish_reason
        except Exception as exc:
            raise classify_openai_error(exc, mid_stream=True) from exc
        if reply.finish_reason is None:
            # The server closed the stream cleanly but early: the reply is incomplete.
            raise TransientError("stream_cut", "the stream ended before a finish reason")
        reply.text = "".join(text)
        reply.tool_calls = [calls[index] for index in sorted(calls)]
        return reply


def to_openai_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """turnout messages as chat-completions messages (tool calls and results natively)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "assistant" and message.tool_calls:
            out.append(
                {
                    "role": "assistant",
                    "content": message.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {
                                "name": call.name,
                                "arguments": json.dumps(call.arguments),
                            },
                        }
                        for call in message.tool_calls
                    ],
                }
            )
        elif message.role == "tool" and message.tool_call_id:
            out.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
            )
        elif message.role == "tool":
            # A result without a call id cannot be a tool message: the API would reject it.
            out.append(
                {
                    "role": "user",
                    "content": f"Result of {message.name or 'the tool'}:\n{message.content}",
                }
            )
        else:
            out.append({"role": message.role, "content": message.content})
    return out


def to_openai_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.input_schema or {"type": "object"},
            },
        }
        for tool in tools
    ]


def openai_tool_choice(choice: str | None) -> str | dict[str, Any] | None:
    if choice is None or choice in ("auto", "required", "none"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def classify_openai_error(exc: Exception, *, mid_stream: bool) -> TransientError | PermanentError:
    """An exception from the OpenAI SDK (or its transport) as a transient or permanent failure."""
    return classify_sdk_error(exc, openai, mid_stream=mid_stream)
