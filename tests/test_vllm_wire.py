"""The on-prem runtime against vLLM's own wire behaviour, replayed on a loopback port.

vLLM's OpenAI-compatible server differs from OpenAI's API and from llama.cpp's server in ways
a runtime must take: its stream's tool-call deltas (the hermes parser's: the name first, with no
`arguments` key, then the arguments in pieces, a `stop_reason` beside `finish_reason`), its
error bodies (`{"object": "error", "message": ..., "type": "BadRequestError", "code": 400}` at
the top level, not under `error`), a 400 for tool use when the server was started without
`--enable-auto-tool-choice`, and a 400 for a prompt over `--max-model-len`, which is no reason
to give up on tools. The payloads below follow the shapes of vLLM's server (its protocol
models and the hermes tool parser), written by hand: no vLLM runs on this machine.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from turnout.runtimes.base import ChatRequest, Message, ToolSpec
from turnout.runtimes.errors import UpstreamFailure
from turnout.runtimes.remote.openai_compat import OpenAICompatConfig, OpenAICompatModel
from turnout.runtimes.remote.retry import RetryPolicy
from turnout.runtimes.testing.fake_upstream import FakeUpstream, Scripted

READ_FILE = ToolSpec(name="read_file", description="Read a file.",
                     input_schema={"type": "object", "properties": {"path": {"type": "string"}},
                                   "required": ["path"]})
ASK = ChatRequest(messages=[Message(role="user", content="read calc.py")], tools=[READ_FILE])
MODEL = "Qwen/Qwen2.5-Coder-32B-Instruct"


def vllm_chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> str:
    choices = [] if usage else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish,
                                 "stop_reason": None}]
    body: dict[str, Any] = {"id": "chatcmpl-9f1c2e5b6a7d4c3b8e2f1a0d9c8b7a6e", "object": "chat.completion.chunk",
                            "created": 1764720000, "model": MODEL, "choices": choices}
    if usage:
        body["usage"] = {**usage, "total_tokens": sum(usage.values()), "prompt_tokens_details": None}
    return f"data: {json.dumps(body)}\n\n"


def vllm_tool_stream(name: str, arguments: str) -> list[str]:
    """The hermes parser's stream: role, the call's id and name (no arguments key), the
    arguments in pieces, an empty content delta with the finish reason, the usage chunk."""
    pieces = [arguments[: len(arguments) // 2], arguments[len(arguments) // 2:]]
    return [
        vllm_chunk({"role": "assistant", "content": ""}),
        vllm_chunk({"tool_calls": [{"id": "chatcmpl-tool-5d2c1b0a9f8e4d7c", "type": "function", "index": 0,
                                    "function": {"name": name}}]}),
        *[vllm_chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces],
        vllm_chunk({"content": ""}, finish="tool_calls"),
        vllm_chunk({}, usage={"prompt_tokens": 311, "completion_tokens": 24}),
        "data: [DONE]\n\n",
    ]


def vllm_error(message: str, status: int = 400) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": status}


def model_for(up: FakeUpstream) -> OpenAICompatModel:
    return OpenAICompatModel(
        OpenAICompatConfig(model=MODEL, base_url=up.url + "/v1", location="onprem",
                           retry=RetryPolicy(max_attempts=2, jitter_s=0.0, backoff_initial_s=0.0)),
        sleep=lambda _s: None,
    )


def test_a_hermes_tool_call_streamed_by_vllm_is_assembled_and_validated() -> None:
    with FakeUpstream([Scripted.sse(vllm_tool_stream("read_file", '{"path": "calc.py"}'))]) as up:
        response = model_for(up).chat(ASK)
    [call] = response.tool_calls
    assert (call.name, call.arguments) == ("read_file", {"path": "calc.py"}) and not response.problems
    assert response.finish_reason == "tool_calls" and response.usage.prompt_tokens == 311


def test_a_vllm_started_without_auto_tool_choice_is_asked_again_in_the_text_protocol() -> None:
    refused = Scripted.error(400, vllm_error(
        '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'))
    fenced = '```json\n{"name": "read_file", "arguments": {"path": "calc.py"}}\n```'
    text = [vllm_chunk({"role": "assistant", "content": ""}), vllm_chunk({"content": fenced}),
            vllm_chunk({}, finish="stop"), "data: [DONE]\n\n"]
    with FakeUpstream([refused, Scripted.sse(text)]) as up:
        model = model_for(up)
        response = model.chat(ASK)
    assert [c.arguments for c in response.tool_calls] == [{"path": "calc.py"}]
    assert model.tool_protocol_in_use == "text" and "tools" not in up.requests[1].body


def test_a_prompt_over_the_servers_max_model_len_is_refused_once_and_keeps_tools() -> None:
    too_long = Scripted.error(400, vllm_error(
        "This model's maximum context length is 32768 tokens. However, you requested 40960 tokens "
        "(39936 in the messages, 1024 in the completion). Please reduce the length of the messages or completion."))
    with FakeUpstream([too_long, too_long]) as up:
        model = model_for(up)
        with pytest.raises(UpstreamFailure) as failure:
            model.chat(ASK)
    # The server's message stays out of the error (it can quote the request); the status and
    # what to do are in it.
    assert failure.value.status == "400" and "the request is invalid for this target" in str(failure.value)
    assert model.tool_protocol_in_use == "native"  # a long prompt says nothing about tools
    assert len(up.requests) == 1  # and it is not sent again without them


def test_a_non_streamed_vllm_completion_with_a_tool_call_and_stop_reason_is_read() -> None:
    body = {
        "id": "chatcmpl-3c1d9e7f2a6b4e8d9c0b1a2f3e4d5c6b", "object": "chat.completion", "created": 1764720000,
        "model": MODEL, "prompt_logprobs": None,
        "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls", "stop_reason": None,
                     "message": {"role": "assistant", "reasoning_content": None, "content": None,
                                 "tool_calls": [{"id": "chatcmpl-tool-0a1b2c3d4e5f", "type": "function",
                                                 "function": {"name": "read_file",
                                                              "arguments": '{"path": "calc.py"}'}}]}}],
        "usage": {"prompt_tokens": 311, "total_tokens": 335, "completion_tokens": 24, "prompt_tokens_details": None},
    }
    with FakeUpstream([Scripted.json(body)]) as up:
        model = OpenAICompatModel(
            OpenAICompatConfig(model=MODEL, base_url=up.url + "/v1", location="onprem", stream=False),
            sleep=lambda _s: None,
        )
        response = model.chat(ASK)
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("read_file", {"path": "calc.py"})]
    assert response.text == "" and response.usage.completion_tokens == 24
