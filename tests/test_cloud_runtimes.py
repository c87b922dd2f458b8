"""The `openai` and `anthropic` runtimes at the wire level, faults injected at the transport.

A real HTTP server on a local port (`FakeUpstream`) stands in for each provider and serves their
real payloads: JSON replies, SSE streams, tool calls, 429 with Retry-After, 5xx, replies held
past the timeout, streams cut in the middle. The official SDKs talk to it over real sockets, so
what is tested is what the SDKs do on the wire, with their own retries switched off.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from turnout.runtimes.base import ChatRequest, ChatResponse, Message, ToolCall, ToolSpec
from turnout.runtimes.errors import RuntimeFailure, UpstreamFailure
from turnout.runtimes.remote.anthropic_rt import AnthropicChatModel, AnthropicConfig
from turnout.runtimes.remote.openai_rt import OpenAIChatModel, OpenAIConfig
from turnout.runtimes.remote.retry import RetryPolicy
from turnout.runtimes.testing.fake_upstream import (
    FakeUpstream,
    Scripted,
    anthropic_error,
    anthropic_message,
    anthropic_stream,
    anthropic_stream_error,
    openai_completion,
    openai_error,
    openai_stream,
)

READ_FILE = ToolSpec(
    name="read_file",
    description="Read a file.",
    input_schema={
        "type": "object",
        "properties": {"path": {"type": "string"}, "start_line": {"type": "integer"}},
        "required": ["path"],
    },
)
SENTINEL = "PAYLOAD-SENTINEL-7f3a"  # must never appear in a log line
ARGS = '{"path": "calc.py", "start_line": 3}'


def request(**overrides: Any) -> ChatRequest:
    fields: dict[str, Any] = {
        "messages": [
            Message(role="system", content="You fix code."),
            Message(role="user", content=f"Read calc.py. {SENTINEL}"),
        ],
        "tools": [READ_FILE],
        "max_tokens": 200,
    }
    fields.update(overrides)
    return ChatRequest(**fields)


class Sleeps(list[float]):
    """Records the waits instead of sleeping them: the tests stay fast and see every wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def policy(**overrides: Any) -> RetryPolicy:
    fields: dict[str, Any] = {"max_attempts": 3, "timeout_s": 2.0, "jitter_s": 0.05}
    fields.update(overrides)
    return RetryPolicy(**fields)


def openai_model(
    up: FakeUpstream, sleeps: Sleeps, stream: bool = True, **retry: Any
) -> OpenAIChatModel:
    config = OpenAIConfig(
        model="gpt-4.1-mini", base_url=up.url + "/v1", stream=stream, retry=policy(**retry)
    )
    return OpenAIChatModel(config, api_key="sk-test-not-a-key", sleep=sleeps)


def anthropic_model(
    up: FakeUpstream, sleeps: Sleeps, stream: bool = True, **retry: Any
) -> AnthropicChatModel:
    config = AnthropicConfig(
        model="claude-sonnet-5-5", base_url=up.url, stream=stream, retry=policy(**retry)
    )
    return AnthropicChatModel(config, api_key="sk-ant-test-not-a-key", sleep=sleeps)


Factory = Callable[..., Any]
def text_stream(provider: str, text: str, pieces: int = 4) -> list[str]:
    """The SSE frames of a reply of `text` alone, in `pieces` text deltas, in the provider's format."""
    return openai_stream(text, pieces=pieces) if provider == "openai" else anthropic_stream(text, pieces=pieces)


PROVIDERS = {
    "openai": (
        openai_model,
        lambda: Scripted.sse(openai_stream("Reading it.", [("call_1", "read_file", ARGS)])),
    ),
    "anthropic": (
        anthropic_model,
        lambda: Scripted.sse(anthropic_stream("Reading it.", [("toolu_01", "read_file", ARGS)])),
    ),
}


def attempt_logs(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "upstream_attempt"]


# ---------------------------------------------------------------------------------------------
# Replies, tools, streaming, usage


def test_an_openai_stream_is_assembled_into_text_a_validated_tool_call_and_usage() -> None:
    script = [
        Scripted.sse(openai_stream("Reading it.", [("call_1", "read_file", ARGS)], usage=(91, 23)))
    ]
    with FakeUpstream(script) as up:
        response = openai_model(up, Sleeps()).chat(request())

    assert response.text == "Reading it."
    assert response.tool_calls == [
        ToolCall(id="call_1", name="read_file", arguments={"path": "calc.py", "start_line": 3})
    ]
    assert response.finish_reason == "tool_calls"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (91, 23)
    assert response.attempts == 1
    sent = up.requests[0].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "description": "Read a file.",
                "parameters": READ_FILE.input_schema,
            },
        }
    ]
    assert sent["messages"][0] == {"role": "system", "content": "You fix code."}
    assert up.requests[0].headers["authorization"] == "Bearer sk-test-not-a-key"


def test_an_openai_json_reply_with_two_tool_calls_is_parsed_from_the_structured_field() -> None:
    calls = [
        ("call_a", "read_file", '{"path": "a.py"}'),
        ("call_b", "read_file", '{"path": "b.py"}'),
    ]
    with FakeUpstream([Scripted.json(openai_completion(None, calls, usage=(50, 9)))]) as up:
        response = openai_model(up, Sleeps(), stream=False).chat(request())

    assert [(c.id, c.arguments["path"]) for c in response.tool_calls] == [
        ("call_a", "a.py"),
        ("call_b", "b.py"),
    ]
    assert response.text == "" and response.usage.completion_tokens == 9
    assert "stream" not in up.requests[0].body


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_tool_call_with_invalid_arguments_becomes_a_problem_not_a_call(provider: str) -> None:
    bad = '{"start_line": "three"}'  # path missing, start_line not an integer
    if provider == "openai":
        reply = Scripted.sse(openai_stream("", [("call_1", "read_file", bad)]))
    else:
        reply = Scripted.sse(anthropic_stream("", [("toolu_01", "read_file", bad)]))
    factory = PROVIDERS[provider][0]
    with FakeUpstream([reply]) as up:
        response = factory(up, Sleeps()).chat(request())

    assert response.tool_calls == []
    assert len(response.problems) == 1
    assert "argument 'path' is required" in response.problems[0]


def test_the_history_goes_to_openai_with_native_tool_calls_and_tool_results() -> None:
    history = [
        Message(role="user", content="Fix it."),
        Message(
            role="assistant",
            content="",
            tool_calls=[ToolCall(id="call_9", name="read_file", arguments={"path": "a.py"})],
        ),
        Message(role="tool", name="read_file", tool_call_id="call_9", content="def f(): pass"),
    ]
    with FakeUpstream([Scripted.sse(openai_stream("Done."))]) as up:
        openai_model(up, Sleeps()).chat(request(messages=history, tool_choice="read_file"))

    sent = up.requests[0].body
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_9",
                "type": "function",
                "function": {"name": "read_file", "arguments": '{"path": "a.py"}'},
            }
        ],
    }
    assert sent["messages"][2] == {
        "role": "tool",
        "tool_call_id": "call_9",
        "content": "def f(): pass",
    }
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "read_file"}}


def test_an_anthropic_stream_is_assembled_from_text_and_tool_use_blocks() -> None:
    script = [
        Scripted.sse(
            anthropic_stream("Reading it.", [("toolu_01", "read_file", ARGS)], usage=(130, 44))
        )
    ]
    with FakeUpstream(script) as up:
        response = anthropic_model(up, Sleeps()).chat(request())

    assert response.text == "Reading it."
    assert response.tool_calls == [
        ToolCall(id="toolu_01", name="read_file", arguments={"path": "calc.py", "start_line": 3})
    ]
    assert response.finish_reason == "tool_calls"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (130, 44)
    sent = up.requests[0]
    assert sent.path == "/v1/messages" and "sk-ant-test-not-a-key" in (
        sent.headers.get("x-api-key", "") + sent.headers.get("authorization", "")
    )
    assert sent.body["system"] == "You fix code."
    assert sent.body["tools"] == [
        {"name": "read_file", "description": "Read a file.", "input_schema": READ_FILE.input_schema}
    ]


def test_the_history_goes_to_anthropic_with_tool_results_in_a_user_turn() -> None:
    history = [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Fix it."),
        Message(
            role="assistant",
            content="Looking.",
            tool_calls=[ToolCall(id="toolu_7", name="read_file", arguments={"path": "a.py"})],
        ),
        Message(role="tool", name="read_file", tool_call_id="toolu_7", content="def f(): pass"),
        Message(role="user", content="Now fix it."),
    ]
    reply = Scripted.json(anthropic_message("Fixed."))
    with FakeUpstream([reply]) as up:
        response = anthropic_model(up, Sleeps(), stream=False).chat(
            request(messages=history, tool_choice="required")
        )

    assert response.text == "Fixed." and response.finish_reason == "stop"
    sent = up.requests[0].body
    assert sent["system"] == "Be brief."
    assert sent["tool_choice"] == {"type": "any"}
    assert [turn["role"] for turn in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"] == [
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "toolu_7", "name": "read_file", "input": {"path": "a.py"}},
    ]
    # The tool result and the next user message share one user turn, result first.
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_7", "content": "def f(): pass"},
        {"type": "text", "text": "Now fix it."},
    ]


# ---------------------------------------------------------------------------------------------
# Faults: every provider, every fault, attempts bounded and each one logged


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_429_with_retry_after_is_waited_out_and_then_answered(provider: str) -> None:
    factory, good = PROVIDERS[provider]
    body = openai_error(429) if provider == "openai" else anthropic_error(429)
    sleeps = Sleeps()
    with (
        FakeUpstream([Scripted.error(429, body, retry_after="2"), good()]) as up,
        structlog.testing.capture_logs() as logs,
    ):
        response = factory(up, sleeps).chat(request())

    assert response.tool_calls[0].arguments["path"] == "calc.py"
    assert response.attempts == 2 and len(up.requests) == 2
    assert len(sleeps) == 1 and 2.0 <= sleeps[0] <= 2.05  # Retry-After, plus at most the jitter
    logged = attempt_logs(logs)
    assert [(e["attempt"], e["status"], e["outcome"]) for e in logged] == [
        (1, "429", "retry"),
        (2, "ok", "ok"),
    ]
    assert logged[0]["wait_s"] == round(sleeps[0], 3)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("max_attempts", [1, 3])
def test_persistent_500s_stop_at_the_attempt_bound_with_every_attempt_logged(
    provider: str, max_attempts: int
) -> None:
    factory = PROVIDERS[provider][0]
    script = lambda _request: Scripted.error(500)
    with FakeUpstream(script) as up, structlog.testing.capture_logs() as logs:
        model = factory(up, Sleeps(), max_attempts=max_attempts)
        with pytest.raises(UpstreamFailure) as failure:
            model.chat(request())

    # The SDKs would retry twice more on their own; with theirs off, ours is the only bound.
    assert len(up.requests) == max_attempts
    assert failure.value.attempts == max_attempts and failure.value.status == "500"
    assert isinstance(failure.value, RuntimeFailure) and failure.value.retryable
    logged = attempt_logs(logs)
    assert [e["attempt"] for e in logged] == list(range(1, max_attempts + 1))
    assert [e["outcome"] for e in logged] == ["retry"] * (max_attempts - 1) + ["gave_up"]
    assert all(e["status"] == "500" and e["target"] == model.name for e in logged)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_reply_held_past_the_timeout_is_a_timeout_and_is_retried_within_the_bound(
    provider: str,
) -> None:
    factory = PROVIDERS[provider][0]
    script = lambda _request: Scripted(delay_s=1.5, body={})
    with (
        FakeUpstream(script) as up,
        structlog.testing.capture_logs() as logs,
        pytest.raises(UpstreamFailure) as failure,
    ):
        factory(up, Sleeps(), max_attempts=2, timeout_s=0.3).chat(request())

    assert failure.value.status == "timeout" and failure.value.attempts == 2
    assert len(up.requests) == 2
    assert [e["status"] for e in attempt_logs(logs)] == ["timeout", "timeout"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_stream_cut_in_the_middle_never_returns_the_partial_text(provider: str) -> None:
    factory = PROVIDERS[provider][0]
    long_text = "The bug is in add: it subtracts. " * 4
    frames = text_stream(provider, long_text, pieces=8)
    script = lambda _request: Scripted.sse(frames, cut_after_events=5)
    with (
        FakeUpstream(script) as up,
        structlog.testing.capture_logs() as logs,
        pytest.raises(UpstreamFailure) as failure,
    ):
        factory(up, Sleeps(), max_attempts=3).chat(request(tools=[]))

    assert failure.value.status == "stream_cut" and failure.value.attempts == 3
    assert len(up.requests) == 3
    assert [e["status"] for e in attempt_logs(logs)] == ["stream_cut"] * 3
    assert "subtracts" not in str(failure.value)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_stream_that_stalls_in_the_middle_times_out_without_partial_output(
    provider: str,
) -> None:
    factory = PROVIDERS[provider][0]
    text = "Everything before the stall."
    frames = text_stream(provider, text)
    stalled = Scripted.sse(frames, stall_after_events=3, stall_s=1.5)
    with (
        FakeUpstream([stalled, stalled.model_copy()]) as up,
        pytest.raises(UpstreamFailure) as failure,
    ):
        factory(up, Sleeps(), max_attempts=2, timeout_s=0.3).chat(request(tools=[]))

    assert failure.value.status == "timeout" and failure.value.attempts == 2
    assert len(up.requests) == 2 and "Everything" not in str(failure.value)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_after_a_stream_cut_the_retry_returns_the_whole_reply_not_a_mix(provider: str) -> None:
    factory = PROVIDERS[provider][0]
    text = "First half. Second half."
    frames = text_stream(provider, text)
    script = [Scripted.sse(frames, cut_after_events=3), Scripted.sse(frames)]
    with FakeUpstream(script) as up:
        response = factory(up, Sleeps()).chat(request(tools=[]))

    assert response.text == text and response.attempts == 2 and len(up.requests) == 2


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_text_of_a_stream_reaches_the_display_as_it_arrives_and_a_retry_says_it_restarts(
    provider: str,
) -> None:
    factory = PROVIDERS[provider][0]
    text = "First half. Second half."
    frames = text_stream(provider, text)
    shown: list[str] = []
    cut = 3 if provider == "openai" else 4  # after two pieces of text (anthropic: a start event more)
    script = [Scripted.sse(frames, cut_after_events=cut), Scripted.sse(frames)]
    with FakeUpstream(script) as up:
        response = factory(up, Sleeps()).chat(request(tools=[]).model_copy(update={"on_text": shown.append}))

    assert response.text == text and response.attempts == 2
    restart = shown.index("\n(the stream broke; the reply starts again)\n")
    assert 0 < restart  # some text of the cut attempt was shown before the cut
    assert "".join(shown[restart + 1 :]) == text  # then the whole reply, piece by piece
    assert len(shown[restart + 1 :]) > 1
    assert "on_text" not in json.dumps(up.requests[1].body)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_stream_that_ends_cleanly_before_its_finish_is_still_a_cut(provider: str) -> None:
    factory = PROVIDERS[provider][0]
    # The server closes the body properly, but without a finish reason or message_stop.
    frames = (
        openai_stream("Half an ans", pieces=2)[:3]
        if provider == "openai"
        else anthropic_stream("Half an ans")[:4]
    )
    script = lambda _request: Scripted.sse(frames)
    with FakeUpstream(script) as up, pytest.raises(UpstreamFailure) as failure:
        factory(up, Sleeps(), max_attempts=2).chat(request(tools=[]))

    assert failure.value.status == "stream_cut" and len(up.requests) == 2


def test_an_anthropic_overloaded_error_inside_a_200_stream_is_retried() -> None:
    frames = anthropic_stream("Partial", pieces=3)
    script = [
        Scripted.sse(frames[:4] + [anthropic_stream_error("overloaded_error")]),
        Scripted.sse(frames),
    ]
    with FakeUpstream(script) as up, structlog.testing.capture_logs() as logs:
        response = anthropic_model(up, Sleeps()).chat(request(tools=[]))

    assert response.text == "Partial" and response.attempts == 2
    assert [e["status"] for e in attempt_logs(logs)] == ["stream_error", "ok"]


def test_an_anthropic_529_overloaded_is_retried_like_a_5xx() -> None:
    script = [Scripted.error(529, anthropic_error(529)), PROVIDERS["anthropic"][1]()]
    with FakeUpstream(script) as up:
        response = anthropic_model(up, Sleeps()).chat(request())
    assert response.attempts == 2 and len(up.requests) == 2


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("status", "hint"),
    [(400, "invalid for this target"), (401, "api_key_env"), (404, "model name")],
)
def test_a_4xx_is_not_retried_and_says_what_to_fix(provider: str, status: int, hint: str) -> None:
    factory = PROVIDERS[provider][0]
    body = openai_error(status) if provider == "openai" else anthropic_error(status)
    script = lambda _request: Scripted.error(status, body)
    with (
        FakeUpstream(script) as up,
        structlog.testing.capture_logs() as logs,
        pytest.raises(UpstreamFailure) as failure,
    ):
        factory(up, Sleeps()).chat(request())

    assert len(up.requests) == 1 and failure.value.attempts == 1
    assert failure.value.status == str(status) and not failure.value.retryable
    assert hint in str(failure.value)
    assert [(e["status"], e["outcome"]) for e in attempt_logs(logs)] == [(str(status), "failed")]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_endpoint_that_is_down_fails_with_connection_after_the_bound(provider: str) -> None:
    factory = PROVIDERS[provider][0]
    with FakeUpstream([]) as up:
        pass  # started and stopped: its port now refuses connections
    sleeps = Sleeps()
    with structlog.testing.capture_logs() as logs, pytest.raises(UpstreamFailure) as failure:
        factory(up, sleeps, max_attempts=3, backoff_initial_s=0.5, jitter_s=0.0).chat(request())

    assert failure.value.status == "connection" and failure.value.attempts == 3
    assert sleeps == [0.5, 1.0]  # exponential backoff between the three attempts
    assert len(attempt_logs(logs)) == 3


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_no_log_line_carries_the_payload_or_the_key(provider: str) -> None:
    factory, good = PROVIDERS[provider]
    with (
        FakeUpstream([Scripted.error(503), good()]) as up,
        structlog.testing.capture_logs() as logs,
    ):
        response: ChatResponse = factory(up, Sleeps()).chat(request())

    assert response.attempts == 2
    assert SENTINEL in json.dumps(up.requests[0].body)  # it was sent...
    logged = json.dumps(logs)
    assert SENTINEL not in logged and "not-a-key" not in logged  # ...and never logged
    assert "calc.py" not in logged  # nor the reply's tool arguments


def test_a_reasoning_model_target_is_sent_no_sampling_parameters() -> None:
    with FakeUpstream([Scripted.sse(openai_stream("ok"))]) as up:
        model = openai_model(up, Sleeps())
        model.config.send_sampling = False
        model.chat(request(seed=3))
    sent = up.requests[0].body
    assert "temperature" not in sent and "seed" not in sent
    assert sent["max_completion_tokens"] == 200
