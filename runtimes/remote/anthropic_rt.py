"""The `anthropic` runtime: Anthropic's messages API through the official SDK.

Provides `AnthropicConfig`, `AnthropicChatModel` (a `ChatModel`, a `WireModel`) and the wire
conversions `to_anthropic_messages`, `to_anthropic_tools`, `anthropic_tool_choice`.

The messages API differs from chat completions where it matters here: the system prompt is a
parameter, tool calls are `tool_use` content blocks, tool results go back as `tool_result`
blocks inside a *user* turn, and same-role turns must be merged. Streamed replies arrive as
typed events (`message_start`, `content_block_delta` with `text_delta` or `input_json_delta`,
`message_delta` with the stop reason and output tokens, `message_stop`); a stream that ends
before `message_stop`, or carries an `error` event (the API's `overloaded_error` mid-stream), is
a failed attempt, never a short answer. The SDK's retries are off (`max_retries=0`) and its
OpenTelemetry spans too (they can carry content); `RetryLayer` is the only retry layer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anthropic
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

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
# Anthropic's stop reasons in the vocabulary the rest of turnout uses (OpenAI's).
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
}


class AnthropicConfig(BaseModel):
    """Settings of one Anthropic target."""

    model: str = Field(description="the model id, e.g. claude-sonnet-4-5")
    base_url: str = Field(default=ANTHROPIC_BASE_URL, description="the API root (no /v1)")
    stream: bool = Field(default=True, description="stream replies and assemble them")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    pricing: Pricing = Field(default_factory=Pricing)


class AnthropicChatModel(WireModel):
    """A `ChatModel` over the Anthropic SDK; one instance per target, reused across requests."""

    config: AnthropicConfig

    runtime = "anthropic"

    def make_client(self, api_key: str) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            **self.client_options(self.config, api_key),
            open_telemetry=False,  # spans may carry content; the audit log is the record
        )

    def chat(self, request: ChatRequest) -> ChatResponse:
        return self.send(request, self.request_params(request))

    def request_params(self, request: ChatRequest) -> dict[str, Any]:
        system, messages = to_anthropic_messages(request.messages)
        params: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
        }
        # The messages API of SDK 2.x takes no temperature (nor seed): sampling is the model's.
        if system:
            params["system"] = system
        if request.tools:
            params["tools"] = to_anthropic_tools(request.tools)
            choice = anthropic_tool_choice(request.tool_choice)
            if choice is not None:
                params["tool_choice"] = choice
        return params

    def complete_once(self, params: dict[str, Any]) -> AssembledReply:
        try:
            message = self._client.messages.create(**params)
        except Exception as exc:
            raise classify_anthropic_error(exc, mid_stream=False) from exc
        reply = AssembledReply(finish_reason=_finish(message.stop_reason))
        texts: list[str] = []
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                reply.tool_calls.append(NativeCall(block.id, block.name, json.dumps(block.input)))
        reply.text = "".join(texts)
        reply.usage = Usage(
            prompt_tokens=_input_tokens(message.usage),
            completion_tokens=message.usage.output_tokens,
        )
        return reply

    def stream_once(self, params: dict[str, Any], on_text: Callable[[str], None] | None = None) -> AssembledReply:
        reply = AssembledReply()
        texts: list[str] = []
        blocks: dict[int, NativeCall] = {}
        prompt_tokens = 0
        output_tokens: int | None = None
        stopped = False
        try:
            stream = self._client.messages.create(**params, stream=True)
        except Exception as exc:
            raise classify_anthropic_error(exc, mid_stream=False) from exc
        try:
            with stream:
                for event in stream:
                    kind = event.type
                    if kind == "message_start":
                        prompt_tokens = _input_tokens(event.message.usage)
                    elif kind == "content_block_start":
                        block = event.content_block
                        if block.type == "tool_use":
                            blocks[event.index] = NativeCall(block.id, block.name, "")
                    elif kind == "content_block_delta":
                        if reply.first_token_at is None:
                            reply.first_token_at = time.perf_counter()
                        delta = event.delta
                        if delta.type == "text_delta":
                            texts.append(delta.text)
                            if on_text is not None:
                                on_text(delta.text)
                        elif delta.type == "input_json_delta" and event.index in blocks:
                            blocks[event.index].arguments += delta.partial_json
                    elif kind == "message_delta":
                        reply.finish_reason = _finish(event.delta.stop_reason)
                        output_tokens = event.usage.output_tokens
                    elif kind == "message_stop":
                        stopped = True
        except Exception as exc:
            raise classify_anthropic_error(exc, mid_stream=True) from exc
        if not stopped:
            # The server closed the stream cleanly but early: the reply is incomplete.
            raise TransientError("stream_cut", "the stream ended before message_stop")
        reply.text = "".join(texts)
        reply.tool_calls = [blocks[index] for index in sorted(blocks)]
        if output_tokens is not None:
            reply.usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=output_tokens)
        return reply


def to_anthropic_messages(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """turnout messages as (system prompt, messages API turns), same-role turns merged."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def push(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return  # the API rejects empty turns and empty text blocks
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for message in messages:
        text = [{"type": "text", "text": message.content}] if message.content else []
        if message.role == "system":
            system.append(message.content)
        elif message.role == "assistant":
            uses = [
                {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                for call in message.tool_calls
            ]
            push("assistant", text + uses)
        elif message.role == "tool" and message.tool_call_id:
            result = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
            }
            push("user", [result])
        elif message.role == "tool":
            label = f"Result of {message.name or 'the tool'}:\n{message.content}"
            push("user", [{"type": "text", "text": label}])
        else:
            push("user", text)
    return "\n\n".join(part for part in system if part), turns


def to_anthropic_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "name": tool.name,
            "description": tool.description,
            "input_schema": tool.input_schema or {"type": "object"},
        }
        for tool in tools
    ]


def anthropic_tool_choice(choice: str | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}


def classify_anthropic_error(
    exc: Exception, *, mid_stream: bool
) -> TransientError | PermanentError:
    """An Anthropic SDK (or transport) exception as a transient or permanent failure."""
    return classify_sdk_error(exc, anthropic, mid_stream=mid_stream)


def _input_tokens(usage: Any) -> int:
    # Cached prompt tokens are billed and counted separately from input_tokens.
    return (
        (usage.input_tokens or 0)
        + (getattr(usage, "cache_creation_input_tokens", None) or 0)
        + (getattr(usage, "cache_read_input_tokens", None) or 0)
    )


def _finish(stop_reason: str | None) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(stop_reason, stop_reason)
