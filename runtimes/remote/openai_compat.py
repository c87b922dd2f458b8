"""The `openai_compat` runtime: any OpenAI-compatible server (Ollama `/v1`, vLLM, llama.cpp
server, LM Studio, or a hosted URL), labelled `local`, `onprem` or `cloud` by the policy.

Provides `OpenAICompatConfig` and `OpenAICompatModel` (a `ChatModel`), built on the `openai`
runtime's wire code and the same single retry layer.

Servers differ in how far they implement tools. With `tool_protocol = "auto"` (the default) the
tools go out natively; a server that rejects them (a 400 or 422: Ollama for a model without
tool support, vLLM without `--enable-auto-tool-choice`) is asked again at once in the text
tool protocol (`runtimes/textprotocol`, the one the in-process runtime speaks), and that choice
is kept for the target. Whatever the protocol, when a reply carries no structured `tool_calls` its text is read
with `parse_tool_calls`, because small local models often answer a native tool request with
the call as JSON in a fence.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import Field
from turnout.runtimes.base import ChatRequest, ChatResponse
from turnout.runtimes.errors import UpstreamFailure
from turnout.runtimes.remote.openai_rt import OpenAIChatModel, OpenAIConfig
from turnout.runtimes.remote.wire import AssembledReply
from turnout.runtimes.textprotocol.parse import parse_tool_calls
from turnout.runtimes.textprotocol.render import to_text_protocol

Location = Literal["local", "onprem", "cloud"]


class OpenAICompatConfig(OpenAIConfig):
    """Settings of one OpenAI-compatible server."""

    base_url: str = Field(description="the server's API root, e.g. http://localhost:11434/v1")
    location: Location = Field(default="local", description="where the server runs, for the policy")
    max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = "max_tokens"
    tool_protocol: Literal["auto", "native", "text"] = Field(
        default="auto",
        description="native tools, the text protocol, or native falling back to text on a 400",
    )


_TOOL_WORDS = re.compile(r"tool|function", re.IGNORECASE)


def refusal_is_about_tools(exc: BaseException) -> bool:
    """Whether a server's 400/422 refuses the tools (vLLM started without
    --enable-auto-tool-choice, a server whose schema has no `tools` field) rather than the
    request itself (a prompt over the context length). Read from the error body on this
    machine and never kept: a server's message can quote the request. With no body to read,
    the refusal is taken to be about the tools, which costs one retry without them."""
    seen: BaseException | None = exc
    while seen is not None:
        body = getattr(seen, "body", None)
        if body is not None:
            return bool(_TOOL_WORDS.search(json.dumps(body, default=str)))
        seen = seen.__cause__ or seen.__context__
    return True


class OpenAICompatModel(OpenAIChatModel):
    """A `ChatModel` over an OpenAI-compatible server."""

    config: OpenAICompatConfig

    runtime = "openai_compat"

    def __init__(self, config: OpenAICompatConfig, *, api_key: str | None = None, **options: Any) -> None:
        # Local servers ignore the key, but the SDK insists on one; this is not a secret.
        super().__init__(config, api_key=api_key or "no-key", **options)
        self._native_tools = config.tool_protocol != "text"

    @property
    def tool_protocol_in_use(self) -> Literal["native", "text"]:
        return "native" if self._native_tools else "text"

    def chat(self, request: ChatRequest) -> ChatResponse:
        native = self._native_tools and bool(request.tools)
        try:
            return self._chat(request, native=native)
        except UpstreamFailure as exc:
            rejected_tools = exc.status in ("400", "422") and refusal_is_about_tools(exc)
            if not (native and rejected_tools and self.config.tool_protocol == "auto"):
                raise
            self._native_tools = False  # remembered: this server does not take tools
            response = self._chat(request, native=False)
            response.attempts += exc.attempts
            return response

    def _chat(self, request: ChatRequest, *, native: bool) -> ChatResponse:
        params = self.request_params(request, native_tools=native)
        if not native and request.tools:
            params["messages"] = to_text_protocol(request.messages, request.tools, request.tool_choice)
        for message in params["messages"]:
            if message.get("content", "") is None:
                # OpenAI's shape for a turn that is only tool calls is `"content": null`, which
                # llama_cpp.server answers with a 500; an empty string every server takes.
                message["content"] = ""
        return self.send(request, params)

    def response(self, request: ChatRequest, reply: AssembledReply) -> ChatResponse:
        response = super().response(request, reply)
        if reply.tool_calls or not request.tools:
            return response
        parsed = parse_tool_calls(reply.text, request.tools)
        response.text = parsed.text
        response.tool_calls = parsed.calls
        response.problems = [problem.message for problem in parsed.problems]
        if parsed.calls and response.finish_reason == "stop":
            response.finish_reason = "tool_calls"
        return response
