"""The `openai_compat` runtime against a real OpenAI-compatible server, and its tool fallbacks.

The real server is llama-cpp-python's own (`python -m llama_cpp.server`, its `[server]` extras
are turnout dependencies) serving the tiny SmolLM2-135M on a free local port, with the
`chatml-function-calling` chat format so that it implements native tools. A 135M model's words
cannot be scripted, so these tests assert on the protocol: the request shape is accepted, usage
comes back, a tool call the server returns (forced with `tool_choice`, which the server enforces
with a grammar) is parsed and validated. What a real server cannot be made to do on demand
(reject tools, answer with a fenced call) is tested against `FakeUpstream`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from turnout.router.policy import TargetConfig
from turnout.runtimes.base import ChatModel, ChatRequest, Message, ToolCall, ToolSpec
from turnout.runtimes.errors import UpstreamFailure, UsageError
from turnout.runtimes.local import models
from turnout.runtimes.remote.openai_compat import OpenAICompatConfig, OpenAICompatModel
from turnout.runtimes.remote.registry import make_runtime
from turnout.runtimes.remote.retry import RetryPolicy
from turnout.runtimes.testing.fake_upstream import (
    FakeUpstream,
    Scripted,
    openai_completion,
    openai_error,
    openai_stream,
)

READ_FILE = ToolSpec(
    name="read_file",
    description="Read a file of the repository.",
    input_schema={
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
    },
)
HELLO = ChatRequest(messages=[Message(role="user", content="Say hello.")], max_tokens=12)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` on the tiny model; yields its base URL (…/v1)."""
    if not models.is_installed(models.TEST_MODEL):
        pytest.fail(f"run `turnout models install {models.TEST_MODEL}` (make test does it)")
    gguf: Path = models.verify(models.TEST_MODEL)
    port = free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(gguf),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
                "--n_threads",
                "1",
                "--chat_format",
                "chatml-function-calling",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer in 90 s:\n{log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def compat_target(base_url: str, **overrides: object) -> TargetConfig:
    fields: dict[str, object] = {
        "runtime": "openai_compat",
        "location": "onprem",
        "model": "smollm2-135m",
        "base_url": base_url,
        "timeout_s": 60.0,
        "max_attempts": 2,
    }
    fields.update(overrides)
    return TargetConfig(**fields)


# ---------------------------------------------------------------------------------------------
# The real server


@pytest.mark.model
def test_the_real_server_answers_a_plain_request_with_usage(server: str) -> None:
    model = make_runtime("onprem-smol", compat_target(server))
    assert isinstance(model, ChatModel) and model.name == "onprem-smol"
    model.config.stream = False  # the non-streamed reply carries the server's own usage
    response = model.chat(HELLO)

    assert response.raw_text.strip()
    assert response.usage.prompt_tokens > 5 and 0 < response.usage.completion_tokens <= 12
    assert response.finish_reason in ("stop", "length") and response.attempts == 1


@pytest.mark.model
def test_the_real_server_streams_a_reply_that_ends_with_its_finish_reason(server: str) -> None:
    model = make_runtime("onprem-smol", compat_target(server))
    response = model.chat(HELLO)  # streaming is the default

    # Assembled only because the stream reached its finish reason (a cut would have raised).
    # Not compared with a non-streamed reply: the server's prompt cache makes the second
    # request's numerics differ, and a near-tie may flip a greedy token.
    assert response.text.strip() and response.finish_reason in ("stop", "length")
    assert response.usage.completion_tokens > 0  # estimated: this server streams no usage
    assert response.attempts == 1


@pytest.mark.model
def test_a_request_with_tools_gets_through_and_a_forced_call_comes_back_parsed(server: str) -> None:
    model = make_runtime("onprem-smol", compat_target(server))
    model.config.stream = (
        False  # llama_cpp.server streams tool calls only when forced; keep one path
    )
    request = ChatRequest(
        messages=[Message(role="user", content="Show me the file calc.py.")],
        tools=[READ_FILE],
        tool_choice="read_file",
        max_tokens=48,
    )
    response = model.chat(request)

    assert response.finish_reason == "tool_calls"
    assert [call.name for call in response.tool_calls] == ["read_file"]
    assert isinstance(response.tool_calls[0].arguments["path"], str)
    assert response.tool_calls[0].id  # the server's id, kept for the tool result
    assert response.problems == [] and model.tool_protocol_in_use == "native"


@pytest.mark.model
def test_a_request_with_tools_left_to_the_model_is_accepted(server: str) -> None:
    model = make_runtime("onprem-smol", compat_target(server))
    model.config.stream = False
    request = ChatRequest(
        messages=[Message(role="user", content="Read calc.py.")], tools=[READ_FILE], max_tokens=24
    )
    response = model.chat(request)

    # The 135M model decides; whatever it chose, the reply came back whole and valid.
    assert response.attempts == 1 and response.usage.prompt_tokens > 5
    assert all(call.name == "read_file" for call in response.tool_calls)
    assert model.tool_protocol_in_use == "native"  # the server took the tools natively


# ---------------------------------------------------------------------------------------------
# Tool fallbacks, on a server that can be made to misbehave


def fake_compat(up: FakeUpstream, **config: object) -> OpenAICompatModel:
    settings = OpenAICompatConfig(
        model="qwen2.5-coder:1.5b",
        base_url=up.url + "/v1",
        location="local",
        retry=RetryPolicy(max_attempts=2, jitter_s=0.0, backoff_initial_s=0.0),
        **config,
    )
    return OpenAICompatModel(settings, sleep=lambda _s: None)


def test_native_tool_calls_from_a_compatible_server_are_parsed_and_validated() -> None:
    calls = [("call_x1", "read_file", '{"path": "calc.py"}'), ("call_x2", "read_file", "{}")]
    with FakeUpstream([Scripted.sse(openai_stream("", calls, usage=None))]) as up:
        response = fake_compat(up).chat(
            ChatRequest(messages=[Message(role="user", content="read")], tools=[READ_FILE])
        )
    sent = up.requests[0].body
    assert sent["tools"][0]["function"]["name"] == "read_file" and "max_tokens" in sent
    assert [call.arguments for call in response.tool_calls] == [{"path": "calc.py"}]
    assert len(response.problems) == 1 and "'path' is required" in response.problems[0]


def test_a_fenced_call_in_the_text_is_parsed_when_the_server_returns_no_tool_calls() -> None:
    reply = 'I will read it.\n```json\n{"name": "read_file", "arguments": {"path": "calc.py"}}\n```'
    with FakeUpstream([Scripted.json(openai_completion(reply))]) as up:
        model = fake_compat(up, stream=False)
        response = model.chat(
            ChatRequest(messages=[Message(role="user", content="read")], tools=[READ_FILE])
        )
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("read_file", {"path": "calc.py"})
    ]
    assert response.text == "I will read it." and response.finish_reason == "tool_calls"


def test_a_server_that_rejects_tools_is_asked_again_in_the_text_protocol_and_remembered() -> None:
    rejected = Scripted.error(400, openai_error(400, "model does not support tools"))
    fenced = '```json\n{"name": "read_file", "arguments": {"path": "a.py"}}\n```'
    script = [rejected, Scripted.sse(openai_stream(fenced)), Scripted.sse(openai_stream(fenced))]
    request = ChatRequest(
        messages=[
            Message(role="system", content="You fix code."),
            Message(role="user", content="read a.py"),
        ],
        tools=[READ_FILE],
    )
    with FakeUpstream(script) as up, structlog.testing.capture_logs() as logs:
        model = fake_compat(up)
        first = model.chat(request)
        second = model.chat(request)

    assert first.tool_calls[0].arguments == {"path": "a.py"} and first.attempts == 2
    assert second.attempts == 1 and model.tool_protocol_in_use == "text"
    assert "tools" in up.requests[0].body
    for retried in up.requests[1:]:
        assert "tools" not in retried.body
        system = retried.body["messages"][0]
        assert system["role"] == "system" and "read_file(path: string)" in system["content"]
    assert [e["status"] for e in logs if e["event"] == "upstream_attempt"] == ["400", "ok", "ok"]


def test_a_server_that_is_down_fails_over_within_the_bound() -> None:
    port = free_port()  # nothing listens there
    model = make_runtime(
        "onprem-down",
        compat_target(f"http://127.0.0.1:{port}/v1", max_attempts=2),
        retry=RetryPolicy(max_attempts=2, backoff_initial_s=0.0, jitter_s=0.0),
    )
    with pytest.raises(UpstreamFailure) as failure:
        model.chat(HELLO)
    assert failure.value.status == "connection" and failure.value.attempts == 2


# ---------------------------------------------------------------------------------------------
# The registry reads keys at the edge


def test_a_cloud_target_without_its_key_is_a_usage_error_naming_the_variable() -> None:
    target = TargetConfig(runtime="openai", location="cloud", model="gpt-4.1-mini")
    with pytest.raises(UsageError, match="OPENAI_API_KEY"):
        make_runtime("gpt", target, environ={})
    named = TargetConfig(
        runtime="anthropic", location="cloud", model="claude-sonnet-5-5", api_key_env="TEAM_KEY"
    )
    with pytest.raises(UsageError, match="TEAM_KEY"):
        make_runtime(
            "claude", named, environ={"ANTHROPIC_API_KEY": "ignored-when-a-variable-is-named"}
        )


def test_keys_and_base_urls_come_from_turnout_or_provider_variables() -> None:
    with FakeUpstream([Scripted.sse(openai_stream("hi"))]) as up:
        target = TargetConfig(
            runtime="openai",
            location="cloud",
            model="gpt-4.1-mini",
            cost_per_mtok_input=2.0,
            cost_per_mtok_output=8.0,
        )
        environ = {
            "TURNOUT_OPENAI_API_KEY": "sk-turnout",
            "OPENAI_API_KEY": "sk-plain",
            "OPENAI_BASE_URL": up.url + "/v1",
        }
        model = make_runtime("gpt", target, environ=environ)
        assert model.chat(HELLO).text == "hi"
    assert up.requests[0].headers["authorization"] == "Bearer sk-turnout"
    assert (
        model.retry_layer.pricing.output_per_mtok == 8.0
        and model.retry_layer.policy.max_attempts == 3
    )


@pytest.mark.model
def test_a_history_with_a_tool_call_and_its_result_is_accepted_by_the_real_server(
    server: str,
) -> None:
    model = make_runtime("onprem-smol", compat_target(server))
    model.config.stream = False
    history = [
        Message(role="user", content="Read calc.py."),
        Message(
            role="assistant",
            tool_calls=[ToolCall(id="call_1", name="read_file", arguments={"path": "calc.py"})],
        ),
        Message(role="tool", name="read_file", tool_call_id="call_1", content="def add(a, b): ..."),
    ]
    response = model.chat(ChatRequest(messages=history, tools=[READ_FILE], max_tokens=12))

    # llama_cpp.server answers 500 to an assistant turn whose content is null; "" it takes.
    assert response.attempts == 1 and response.usage.prompt_tokens > 10


def test_eval_toolcalls_runs_bfcl_through_a_server_with_and_without_the_guards(
    server: str, tmp_path: Path
) -> None:
    from turnout.agent.evals.toolcalls import eval_toolcalls

    spec = f"{server}#smollm2-135m"
    record = tmp_path / "server.jsonl"
    report = eval_toolcalls(
        ["simple_python"], 1, ["turnout", "plain"], spec, tool_choice="auto", max_tokens=48, record=record
    )

    by_target = {s.target: s for s in report.summaries}
    assert set(by_target) == {"turnout", "plain", "plain+parser"}
    assert all(s.cases == 1 and s.median_seconds > 0 for s in report.summaries)
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert {line["model"] for line in lines} == {spec}
    assert all(line["why"] or line["match"] for line in lines)  # every outcome says why it missed

    # A record belongs to one model: resuming it with another is refused, naming both.
    with pytest.raises(UsageError, match=r"holds outcomes of .*#smollm2-135m, not .*#other"):
        eval_toolcalls(["simple_python"], 1, ["turnout"], f"{server}#other", record=record)
    # The grammar is the in-process model's; a server cannot be run without it.
    with pytest.raises(UsageError, match="needs the in-process model"):
        eval_toolcalls(["simple_python"], 1, ["turnout-nogrammar"], spec)
    # This server answers tool_choice "required" with a 500: the error says what to run instead.
    with pytest.raises(UsageError, match="--tool-choice auto"):
        eval_toolcalls(["simple_python"], 1, ["turnout"], spec, max_tokens=8)
