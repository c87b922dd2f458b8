"""The test doubles of `runtimes/testing/`: `FunctionModel`, and `FakeUpstream` as its docstring
shows it."""

from __future__ import annotations

import pytest
from turnout.runtimes.base import ChatModel, ChatRequest, ChatResponse, Message, ToolCall, ToolSpec
from turnout.runtimes.remote.openai_rt import OpenAIChatModel, OpenAIConfig
from turnout.runtimes.testing import fake_upstream
from turnout.runtimes.testing.fake import FunctionModel
from turnout.runtimes.testing.fake_upstream import FakeUpstream, Scripted, openai_completion

READ = ToolSpec(
    name="read_file",
    input_schema={"type": "object", "properties": {"path": {"type": "string"}}},
)


def ask(text: str, tools: list[ToolSpec] | None = None) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], tools=tools or [])


def test_a_function_model_answers_with_the_structured_reply_its_function_returns() -> None:
    def reply(request: ChatRequest) -> ChatResponse:
        path = request.messages[-1].content.split()[-1]
        call = ToolCall(id="call_1", name="read_file", arguments={"path": path})
        return ChatResponse(text="reading it", tool_calls=[call], finish_reason="tool_calls")

    model = FunctionModel(reply)
    assert isinstance(model, ChatModel)
    response = model.chat(ask("Read calc.py", [READ]))
    assert response.text == "reading it" and response.finish_reason == "tool_calls"
    assert response.tool_calls == [
        ToolCall(id="call_1", name="read_file", arguments={"path": "calc.py"})
    ]
    assert response.model == "function"  # the function left it empty
    assert [r.messages[-1].content for r in model.requests] == ["Read calc.py"]


def test_a_function_model_parses_nothing_and_keeps_a_model_name_it_is_given() -> None:
    fenced = '```json\n{"name": "read_file", "arguments": {"path": "a.py"}}\n```'
    model = FunctionModel(lambda request: ChatResponse(text=fenced, model="mine"), name="fn")
    response = model.chat(ask("hi", [READ]))
    assert response.text == fenced and response.tool_calls == []  # structured means as given
    assert response.model == "mine" and model.name == "fn"


def test_a_function_that_returns_text_is_told_to_return_a_chat_response() -> None:
    model = FunctionModel(lambda request: "just text")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="return a ChatResponse"):
        model.chat(ask("hi"))


def test_the_fake_upstream_docstring_example_runs() -> None:
    assert "OpenAIChatModel(config" in (fake_upstream.__doc__ or "")
    script = [Scripted.error(429, retry_after="0"), Scripted.json(openai_completion("hi"))]
    with FakeUpstream(script) as up:
        config = OpenAIConfig(model="gpt-4.1-mini", base_url=up.url + "/v1", stream=False)
        model = OpenAIChatModel(config, api_key="sk-test")
        assert model.chat(ChatRequest(messages=[Message(role="user", content="hi")])).text == "hi"
        assert len(up.requests) == 2
