"""Constrained decoding: grammars from tool schemas, and the real tiny model decoding under them."""

from __future__ import annotations

import pytest
from turnout.runtimes.base import ChatRequest, Message, ToolSpec
from turnout.runtimes.errors import UsageError
from turnout.runtimes.local import models
from turnout.runtimes.local.llama_cpp import LlamaCppConfig, LlamaCppModel
from turnout.runtimes.local.repetition import RepetitionConfig
from turnout.runtimes.textprotocol.grammar import (
    compiled_grammar,
    strict_arguments_schema,
    tool_call_grammar,
)
from turnout.runtimes.textprotocol.parse import parse_tool_calls

READ_FILE = ToolSpec(
    name="read_file",
    description="Read a file, optionally a range of lines.",
    input_schema={
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "start_line": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
        },
        "required": ["path"],
    },
)
SET_MODE = ToolSpec(
    name="set_mode",
    description="Switch the editor mode.",
    input_schema={
        "type": "object",
        "properties": {"mode": {"enum": ["insert", "normal"]}, "count": {"type": "integer"}},
        "required": ["mode", "count"],
    },
)
EDIT = ToolSpec(
    name="apply_edits",
    description="Apply search/replace edits.",
    input_schema={
        "$defs": {
            "Edit": {
                "type": "object",
                "properties": {"old": {"type": "string"}, "new": {"type": "string"}},
                "required": ["old", "new"],
            }
        },
        "type": "object",
        "properties": {"path": {"type": "string"}, "edits": {"type": "array", "items": {"$ref": "#/$defs/Edit"}}},
        "required": ["path", "edits"],
    },
)
TOOLS = [READ_FILE, SET_MODE, EDIT]


def test_a_required_choice_grammar_starts_with_the_fence_and_offers_every_tool() -> None:
    text = tool_call_grammar(TOOLS, "required")

    assert text is not None and text.startswith("root ::= call-block\n")
    for tool in TOOLS:
        assert f'\\"{tool.name}\\"' in text
    assert "prose" not in text


def test_a_named_choice_grammar_offers_only_that_tool() -> None:
    text = tool_call_grammar(TOOLS, "set_mode")

    assert text is not None and '\\"set_mode\\"' in text and '\\"read_file\\"' not in text


def test_an_auto_choice_grammar_allows_prose_that_never_opens_a_fence() -> None:
    text = tool_call_grammar(TOOLS, "auto")

    assert text is not None and "root ::= call-block | prose | prose call-block" in text


def test_no_grammar_without_tools_or_with_tool_choice_none() -> None:
    assert tool_call_grammar([], "required") is None
    assert tool_call_grammar(TOOLS, "none") is None


def test_a_tool_choice_naming_no_offered_tool_is_refused_with_the_real_names() -> None:
    with pytest.raises(UsageError, match="apply_edits, read_file, set_mode"):
        tool_call_grammar(TOOLS, "write_file")


def test_refs_are_inlined_and_objects_closed_to_invented_arguments() -> None:
    strict = strict_arguments_schema(EDIT.input_schema)

    assert "$defs" not in strict
    assert strict["additionalProperties"] is False
    assert strict["properties"]["edits"]["items"]["properties"]["old"] == {"type": "string"}
    assert strict["properties"]["edits"]["items"]["additionalProperties"] is False


def test_every_grammar_compiles_in_llama_cpp() -> None:
    for choice in ("auto", "required", "read_file", "set_mode", "apply_edits"):
        assert compiled_grammar(TOOLS, choice) is not None


# -- the real tiny model under the grammar ---------------------------------------------------

@pytest.fixture(scope="module")
def tiny() -> LlamaCppModel:
    if not models.is_installed(models.TEST_MODEL):
        pytest.fail(f"run `turnout models install {models.TEST_MODEL}` (make test does it)")
    return LlamaCppModel(LlamaCppConfig(model=models.TEST_MODEL, n_ctx=2048, n_threads=2))


@pytest.mark.model
def test_with_a_required_choice_the_tiny_model_emits_a_valid_call_by_construction(tiny: LlamaCppModel) -> None:
    # A 135M model asked for something no tool does: without the grammar it chats.
    for prompt in ("Tell me a joke about cats.", "Switch to insert mode three times."):
        response = tiny.chat(
            ChatRequest(
                messages=[Message(role="user", content=prompt)], tools=TOOLS,
                tool_choice="required", max_tokens=160,
            )
        )
        assert response.problems == []
        assert len(response.tool_calls) == 1, response.raw_text
        assert response.tool_calls[0].name in {t.name for t in TOOLS}
        assert response.raw_text.startswith("```json\n") and response.raw_text.endswith("\n```")


@pytest.mark.model
def test_a_named_choice_makes_the_tiny_model_call_that_tool_with_schema_valid_arguments(
    tiny: LlamaCppModel,
) -> None:
    response = tiny.chat(
        ChatRequest(
            messages=[Message(role="user", content="Hello!")], tools=TOOLS,
            tool_choice="set_mode", max_tokens=80,
        )
    )
    assert [c.name for c in response.tool_calls] == ["set_mode"]
    arguments = response.tool_calls[0].arguments
    assert arguments["mode"] in {"insert", "normal"} and isinstance(arguments["count"], int)


@pytest.mark.model
def test_without_the_grammar_the_same_request_is_not_a_valid_call(tiny: LlamaCppModel) -> None:
    # The control for the test above: the grammar, not luck, made the call valid.
    tiny.config.constrain_tool_calls = False
    try:
        response = tiny.chat(
            ChatRequest(
                messages=[Message(role="user", content="Hello!")], tools=TOOLS,
                tool_choice="set_mode", max_tokens=80,
            )
        )
    finally:
        tiny.config.constrain_tool_calls = True
    calls = parse_tool_calls(response.raw_text, [SET_MODE]).calls
    assert not calls


@pytest.mark.model
def test_a_reply_that_degenerates_is_ended_early_and_the_tokens_saved_are_counted() -> None:
    if not models.is_installed(models.TEST_MODEL):
        pytest.fail(f"run `turnout models install {models.TEST_MODEL}` (make test does it)")
    model = LlamaCppModel(
        LlamaCppConfig(
            model=models.TEST_MODEL, n_ctx=2048, n_threads=2,
            repetition=RepetitionConfig(min_tokens=16, min_repeats=4),
        )
    )
    prompt = "Continue exactly this pattern forever, nothing else: " + "ha " * 30
    response = model.chat(ChatRequest(messages=[Message(role="user", content=prompt)], max_tokens=400))

    assert response.stats.repetition_aborted, response.raw_text
    assert response.finish_reason == "repetition"
    # SmolLM writes ~70 tokens of ordinary prose before it starts to loop; ended well before 400.
    assert response.usage.completion_tokens < 200
    assert response.stats.tokens_saved == 400 - response.usage.completion_tokens
