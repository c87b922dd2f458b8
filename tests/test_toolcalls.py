"""Tool-call parsing, repair and validation on the shapes small models really emit."""

from __future__ import annotations

import json

from turnout.runtimes.base import ToolSpec
from turnout.runtimes.textprotocol.parse import ParsedReply, parse_tool_calls, validate_call

READ_FILE = ToolSpec(
    name="read_file",
    description="Read a text file, optionally a range of lines.",
    input_schema={
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "start_line": {"type": "integer"},
            # what pydantic (and so FastMCP) writes for `end_line: int | None = None`
            "end_line": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
        },
        "required": ["path"],
    },
)
REPLACE_IN_FILE = ToolSpec(
    name="replace_in_file",
    description="Replace an exact snippet of a file with new text.",
    input_schema={
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "old": {"type": "string"},
            "new": {"type": "string"},
        },
        "required": ["path", "old", "new"],
        "additionalProperties": False,
    },
)
RUN_TESTS = ToolSpec(
    name="run_tests",
    description="Run pytest.",
    input_schema={
        "type": "object",
        "properties": {
            "paths": {"type": "array", "items": {"type": "string"}},
            "verbose": {"type": "boolean"},
            "timeout": {"type": "number"},
        },
    },
)
FINISH = ToolSpec(
    name="finish",
    description="Stop and report.",
    input_schema={
        "type": "object",
        "properties": {"summary": {"type": "string"}},
        "required": ["summary"],
    },
)
TOOLS = [RUN_TESTS, REPLACE_IN_FILE, READ_FILE, FINISH]


def parse(reply: str) -> ParsedReply:
    return parse_tool_calls(reply, TOOLS)


def only_call(parsed: ParsedReply) -> tuple[str, dict]:
    assert parsed.problems == []
    assert len(parsed.calls) == 1
    return parsed.calls[0].name, parsed.calls[0].arguments


# --- forms ------------------------------------------------------------------------------------


def test_the_fenced_json_call_qwen_emits_is_parsed() -> None:
    reply = (
        "I'll start by reading the file.\n"
        "```json\n"
        '{"name": "read_file", "arguments": {"path": "calc.py"}}\n'
        "```"
    )
    parsed = parse(reply)
    assert only_call(parsed) == ("read_file", {"path": "calc.py"})
    assert parsed.calls[0].id == "call_1"
    assert parsed.text == "I'll start by reading the file."
    assert parsed.repairs == []


def test_a_fence_without_a_language_holding_a_call_is_parsed() -> None:
    parsed = parse('```\n{"name": "run_tests", "arguments": {}}\n```')
    assert only_call(parsed) == ("run_tests", {})
    assert parsed.text == ""


def test_a_fenced_list_of_calls_gives_every_call_in_order() -> None:
    reply = (
        "```json\n"
        '[{"name": "read_file", "arguments": {"path": "calc.py"}},\n'
        ' {"name": "read_file", "arguments": {"path": "tests/test_calc.py"}}]\n'
        "```"
    )
    parsed = parse(reply)
    assert [c.arguments["path"] for c in parsed.calls] == ["calc.py", "tests/test_calc.py"]
    assert [c.id for c in parsed.calls] == ["call_1", "call_2"]


def test_two_objects_one_per_line_in_one_fence_are_both_calls() -> None:
    reply = (
        "```json\n"
        '{"name": "read_file", "arguments": {"path": "calc.py"}}\n'
        '{"name": "run_tests", "arguments": {}}\n'
        "```"
    )
    assert [c.name for c in parse(reply).calls] == ["read_file", "run_tests"]


def test_a_hermes_tool_call_tag_is_parsed() -> None:
    reply = '<tool_call>\n{"name": "read_file", "arguments": {"path": "calc.py"}}\n</tool_call>'
    parsed = parse(reply)
    assert only_call(parsed) == ("read_file", {"path": "calc.py"})
    assert parsed.text == ""


def test_a_tool_call_tag_left_open_at_the_end_of_the_reply_is_parsed() -> None:
    reply = (
        'Reading it now.\n<tool_call>\n{"name": "read_file", "arguments": {"path": "calc.py"}}\n'
    )
    parsed = parse(reply)
    assert only_call(parsed) == ("read_file", {"path": "calc.py"})
    assert parsed.text == "Reading it now."


def test_tool_call_tags_without_closing_tags_are_split_at_the_next_tag() -> None:
    reply = (
        '<tool_call>{"name": "read_file", "arguments": {"path": "calc.py"}}\n'
        '<tool_call>{"name": "run_tests", "arguments": {}}'
    )
    assert [c.name for c in parse(reply).calls] == ["read_file", "run_tests"]


def test_a_fence_inside_a_tool_call_tag_is_unwrapped() -> None:
    reply = '<tool_call>\n```json\n{"name": "run_tests", "arguments": {}}\n```\n</tool_call>'
    assert only_call(parse(reply)) == ("run_tests", {})


def test_a_bare_json_call_in_prose_is_parsed_and_the_prose_kept() -> None:
    reply = (
        'The test fails, so I will look at the source: {"name": "read_file", '
        '"arguments": {"path": "calc.py"}}'
    )
    parsed = parse(reply)
    assert only_call(parsed) == ("read_file", {"path": "calc.py"})
    assert parsed.text == "The test fails, so I will look at the source:"


def test_a_bare_call_followed_by_a_stray_closing_tag_leaves_no_tag_in_the_text() -> None:
    parsed = parse('{"name": "run_tests", "arguments": {}}\n</tool_call>')
    assert only_call(parsed) == ("run_tests", {})
    assert parsed.text == ""


def test_name_with_parameters_is_read_as_a_call() -> None:
    parsed = parse('```json\n{"name": "read_file", "parameters": {"path": "calc.py"}}\n```')
    assert only_call(parsed) == ("read_file", {"path": "calc.py"})


def test_tool_with_args_is_read_as_a_call() -> None:
    parsed = parse('```json\n{"tool": "read_file", "args": {"path": "calc.py"}}\n```')
    assert only_call(parsed) == ("read_file", {"path": "calc.py"})


def test_function_with_arguments_is_read_as_a_call() -> None:
    parsed = parse('{"function": "read_file", "arguments": {"path": "calc.py"}}')
    assert only_call(parsed) == ("read_file", {"path": "calc.py"})


def test_an_openai_structured_call_with_string_arguments_is_decoded_and_keeps_its_id() -> None:
    call = {
        "id": "call_abc123",
        "type": "function",
        "function": {"name": "read_file", "arguments": '{"path": "calc.py", "start_line": 1}'},
    }
    parsed = parse(json.dumps(call))
    assert only_call(parsed) == ("read_file", {"path": "calc.py", "start_line": 1})
    assert parsed.calls[0].id == "call_abc123"
    assert "read_file: decoded 'arguments' from a JSON string" in parsed.repairs


def test_an_echoed_openai_assistant_message_yields_its_tool_calls() -> None:
    message = {
        "role": "assistant",
        "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "run_tests", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "finish", "arguments": "{}"}},
        ],
    }
    parsed = parse(json.dumps(message))
    assert [c.id for c in parsed.calls] == ["a"]
    assert [p.tool for p in parsed.problems] == ["finish"]  # summary is required


def test_an_anthropic_tool_use_block_is_read_as_a_call() -> None:
    block = {
        "type": "tool_use",
        "id": "toolu_01A09q90qw90lq917835lq9",
        "name": "read_file",
        "input": {"path": "calc.py"},
    }
    parsed = parse(json.dumps(block))
    assert only_call(parsed) == ("read_file", {"path": "calc.py"})
    assert parsed.calls[0].id == "toolu_01A09q90qw90lq917835lq9"


def test_double_encoded_arguments_are_decoded() -> None:
    # What the 1.5B model did with OpenAI-style tool messages in the history
    # (docs/measurements.md#what-the-15b-model-does-with-tools).
    reply = (
        '```json\n{"name": "replace_in_file", "arguments": "{\\"path\\": \\"calc.py\\", '
        '\\"old\\": \\"return a - b\\", \\"new\\": \\"return a + b\\"}"}\n```'
    )
    parsed = parse(reply)
    assert only_call(parsed) == (
        "replace_in_file",
        {"path": "calc.py", "old": "return a - b", "new": "return a + b"},
    )
    assert "replace_in_file: decoded 'arguments' from a JSON string" in parsed.repairs


def test_a_call_without_arguments_gets_empty_arguments() -> None:
    assert only_call(parse('```json\n{"name": "run_tests"}\n```')) == ("run_tests", {})


def test_arguments_flattened_beside_a_known_tool_name_are_read() -> None:
    parsed = parse('```json\n{"name": "read_file", "path": "calc.py"}\n```')
    assert only_call(parsed) == ("read_file", {"path": "calc.py"})
    assert any("given beside the tool name" in note for note in parsed.repairs)


def test_a_code_fence_inside_a_string_argument_does_not_end_the_json_fence() -> None:
    content = "# Calc\\n\\n```python\\nadd(1, 2)\\n```\\n"
    reply = (
        "```json\n"
        '{"name": "replace_in_file", "arguments": {"path": "README.md", "old": "# Calc\\n", '
        f'"new": "{content}"}}}}\n'
        "```\nDone."
    )
    parsed = parse(reply)
    _, arguments = only_call(parsed)
    assert arguments["new"] == "# Calc\n\n```python\nadd(1, 2)\n```\n"
    assert parsed.text == "Done."


def test_a_code_fence_inside_a_string_with_raw_newlines_does_not_end_the_json_fence() -> None:
    reply = (
        "```json\n"
        '{"name": "replace_in_file", "arguments": {"path": "README.md", "old": "# Calc",\n'
        '"new": "# Calc\n\nUsage:\n```python\nadd(1, 2)\n```\n"}}\n'
        "```\nDone."
    )
    parsed = parse(reply)
    _, arguments = only_call(parsed)
    assert arguments["new"] == "# Calc\n\nUsage:\n```python\nadd(1, 2)\n```\n"
    assert parsed.text == "Done."


# --- several calls, text around them ----------------------------------------------------------


def test_several_forms_in_one_message_come_out_in_order() -> None:
    reply = (
        "First the tests.\n"
        '<tool_call>{"name": "run_tests", "arguments": {}}</tool_call>\n'
        "Then the source.\n"
        "```json\n"
        '{"name": "read_file", "arguments": {"path": "calc.py"}}\n'
        "```\n"
        'And the test file: {"name": "read_file", "arguments": {"path": "tests/test_calc.py"}}'
    )
    parsed = parse(reply)
    assert [(c.id, c.name) for c in parsed.calls] == [
        ("call_1", "run_tests"),
        ("call_2", "read_file"),
        ("call_3", "read_file"),
    ]
    assert parsed.calls[2].arguments == {"path": "tests/test_calc.py"}


def test_text_before_between_and_after_calls_is_preserved() -> None:
    reply = (
        "Let me check.\n\n"
        "```json\n"
        '{"name": "run_tests", "arguments": {}}\n'
        "```\n\n"
        "Meanwhile, note that `add` looks wrong.\n\n"
        '<tool_call>{"name": "read_file", "arguments": {"path": "calc.py"}}</tool_call>\n\n'
        "I'll report back."
    )
    parsed = parse(reply)
    assert len(parsed.calls) == 2
    assert parsed.text == (
        "Let me check.\n\nMeanwhile, note that `add` looks wrong.\n\nI'll report back."
    )


def test_given_ids_are_kept_and_missing_ones_are_numbered() -> None:
    reply = (
        '{"id": "x1", "type": "tool_use", "name": "run_tests", "input": {}} '
        '{"name": "read_file", "arguments": {"path": "calc.py"}}'
    )
    assert [c.id for c in parse(reply).calls] == ["x1", "call_2"]


# --- what stays text --------------------------------------------------------------------------


def test_a_reply_without_calls_is_all_text() -> None:
    reply = "The fix is to return `a + b` instead of `a - b`."
    parsed = parse(reply)
    assert parsed == ParsedReply(text=reply, calls=[], problems=[], repairs=[])


def test_a_json_object_that_is_not_a_call_stays_text() -> None:
    reply = (
        'The config is {"timeout": 30, "retries": 2}. Its package.json:\n'
        "```json\n"
        '{"name": "calc", "version": "1.0.0"}\n'
        "```"
    )
    parsed = parse(reply)
    assert parsed.calls == [] and parsed.problems == []
    assert parsed.text == reply


def test_a_python_fence_is_text_even_when_its_code_holds_a_dict_with_a_name() -> None:
    reply = (
        "Here is the fix:\n"
        "```python\n"
        "def describe(tool):\n"
        '    return {"name": tool.name, "arguments": {}}\n'
        "```"
    )
    parsed = parse(reply)
    assert parsed.calls == [] and parsed.problems == []
    assert parsed.text == reply


def test_a_diff_fence_is_text() -> None:
    reply = (
        "```diff\n"
        "--- a/calc.py\n"
        "+++ b/calc.py\n"
        "@@ -1,2 +1,2 @@\n"
        " def add(a, b):\n"
        "-    return a - b\n"
        "+    return a + b\n"
        "```"
    )
    parsed = parse(reply)
    assert parsed.calls == [] and parsed.problems == []
    assert parsed.text == reply


def test_an_echoed_tool_definition_is_not_a_call() -> None:
    definition = {
        "name": "read_file",
        "description": "Read a text file.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
    }
    parsed = parse(f"I can use:\n```json\n{json.dumps(definition)}\n```")
    assert parsed.calls == [] and parsed.problems == []


def test_an_unclosed_brace_in_prose_does_not_hide_a_later_call() -> None:
    reply = (
        "The dict literal starts with { and never closes here.\n"
        "```json\n"
        '{"name": "read_file", "arguments": {"path": "calc.py"}}\n'
        "```"
    )
    parsed = parse(reply)
    assert only_call(parsed) == ("read_file", {"path": "calc.py"})
    assert parsed.text == "The dict literal starts with { and never closes here."


# --- repairs ----------------------------------------------------------------------------------


def test_a_python_literal_dict_is_read() -> None:
    parsed = parse("{'name': 'run_tests', 'arguments': {'verbose': True, 'paths': ['tests']}}")
    assert only_call(parsed) == ("run_tests", {"verbose": True, "paths": ["tests"]})
    assert any("Python-style literal" in note for note in parsed.repairs)


def test_a_python_literal_with_json_constants_mixed_in_is_read() -> None:
    parsed = parse("```json\n{'name': 'run_tests', 'arguments': {'verbose': true}}\n```")
    assert only_call(parsed) == ("run_tests", {"verbose": True})


def test_trailing_commas_are_removed() -> None:
    reply = '```json\n{"name": "read_file", "arguments": {"path": "calc.py",},}\n```'
    parsed = parse(reply)
    assert only_call(parsed) == ("read_file", {"path": "calc.py"})
    assert "read_file: removed trailing comma(s)" in parsed.repairs


def test_missing_closing_braces_at_the_end_of_the_reply_are_added() -> None:
    parsed = parse('I will read it. {"name": "read_file", "arguments": {"path": "calc.py"')
    assert only_call(parsed) == ("read_file", {"path": "calc.py"})
    assert any("closed unbalanced bracket(s)" in note and "'}}'" in note for note in parsed.repairs)
    assert parsed.text == "I will read it."


def test_raw_newlines_inside_a_string_argument_are_accepted() -> None:
    reply = (
        "```json\n"
        '{"name": "replace_in_file", "arguments": {"path": "calc.py", '
        '"old": "def add(a, b):\n    return a - b", "new": "def add(a, b):\n    return a + b"}}\n'
        "```"
    )
    parsed = parse(reply)
    _, arguments = only_call(parsed)
    assert arguments["new"] == "def add(a, b):\n    return a + b"
    assert "replace_in_file: accepted raw newlines/tabs inside JSON strings" in parsed.repairs


def test_a_numeric_string_is_coerced_to_an_integer() -> None:
    parsed = parse('{"name": "read_file", "arguments": {"path": "calc.py", "start_line": "3"}}')
    assert only_call(parsed) == ("read_file", {"path": "calc.py", "start_line": 3})
    assert "read_file: coerced 'start_line' from '3' to 3" in parsed.repairs


def test_a_numeric_string_is_coerced_to_an_integer_through_an_optional_anyof() -> None:
    arguments, problem, repairs = validate_call(
        "read_file", {"path": "calc.py", "end_line": "12"}, TOOLS
    )
    assert problem is None
    assert arguments == {"path": "calc.py", "end_line": 12}
    assert repairs == ["coerced 'end_line' from '12' to 12"]


def test_a_numeric_string_is_coerced_to_a_number() -> None:
    arguments, problem, repairs = validate_call("run_tests", {"timeout": "2.5"}, TOOLS)
    assert problem is None and arguments == {"timeout": 2.5}
    assert repairs == ["coerced 'timeout' from '2.5' to 2.5"]


def test_true_and_false_strings_are_coerced_to_booleans() -> None:
    arguments, problem, repairs = validate_call("run_tests", {"verbose": "false"}, TOOLS)
    assert problem is None and arguments == {"verbose": False}
    assert repairs == ["coerced 'verbose' from 'false' to False"]


def test_a_scalar_is_wrapped_when_the_schema_wants_an_array() -> None:
    arguments, problem, repairs = validate_call("run_tests", {"paths": "tests/test_calc.py"}, TOOLS)
    assert problem is None and arguments == {"paths": ["tests/test_calc.py"]}
    assert repairs == ["wrapped 'paths' in a list"]


def test_a_json_array_written_as_a_string_is_decoded_for_an_array_argument() -> None:
    arguments, problem, _ = validate_call("run_tests", {"paths": '["a.py", "b.py"]'}, TOOLS)
    assert problem is None and arguments == {"paths": ["a.py", "b.py"]}


def test_a_null_for_an_optional_argument_is_dropped() -> None:
    arguments, problem, repairs = validate_call(
        "read_file", {"path": "calc.py", "start_line": None}, TOOLS
    )
    assert problem is None and arguments == {"path": "calc.py"}
    assert repairs == ["dropped null for optional argument 'start_line'"]


def test_a_null_is_kept_where_the_schema_allows_null() -> None:
    arguments, problem, repairs = validate_call(
        "read_file", {"path": "calc.py", "end_line": None}, TOOLS
    )
    assert problem is None and arguments == {"path": "calc.py", "end_line": None}
    assert repairs == []


def test_an_invented_extra_argument_is_dropped_when_the_schema_allows_extras() -> None:
    parsed = parse(
        '```json\n{"name": "read_file", "arguments": {"path": "calc.py", "encoding": "utf-8"}}\n```'
    )
    assert only_call(parsed) == ("read_file", {"path": "calc.py"})
    assert parsed.repairs == ["read_file: dropped unknown argument 'encoding'"]


def test_coercions_follow_refs_into_nested_objects() -> None:
    # The shape pydantic generates for a parameter typed with a model: $defs and $ref.
    edit_many = ToolSpec(
        name="edit_lines",
        input_schema={
            "$defs": {
                "Edit": {
                    "type": "object",
                    "properties": {"line": {"type": "integer"}, "text": {"type": "string"}},
                    "required": ["line", "text"],
                }
            },
            "type": "object",
            "properties": {"edits": {"type": "array", "items": {"$ref": "#/$defs/Edit"}}},
            "required": ["edits"],
        },
    )
    arguments, problem, repairs = validate_call(
        "edit_lines", {"edits": {"line": "2", "text": "    return a + b"}}, [edit_many]
    )
    assert problem is None
    assert arguments == {"edits": [{"line": 2, "text": "    return a + b"}]}
    assert repairs == ["wrapped 'edits' in a list", "coerced 'edits[0].line' from '2' to 2"]


# --- rejections -------------------------------------------------------------------------------


def test_an_unknown_tool_is_rejected_naming_the_real_tools_sorted() -> None:
    reply = (
        '```json\n{"name": "edit_file", "arguments": {"path": "calc.py", '
        '"content": "def add(a, b):\\n    return a + b\\n"}}\n```'
    )
    parsed = parse(reply)
    assert parsed.calls == []
    [problem] = parsed.problems
    assert problem.tool == "edit_file"
    assert problem.message == (
        "unknown tool 'edit_file'; available tools: finish, read_file, replace_in_file, run_tests"
    )
    assert problem.raw.startswith('{"name": "edit_file"')
    assert parsed.text == ""


def test_a_tool_named_without_its_server_prefix_gets_a_suggestion() -> None:
    namespaced = [ToolSpec(name="files__read_file"), ToolSpec(name="tests__run")]
    _, problem, _ = validate_call("read_file", {"path": "calc.py"}, namespaced)
    assert problem is not None
    assert problem.message.endswith("(did you mean 'files__read_file'?)")


def test_a_missing_required_argument_is_rejected_naming_it() -> None:
    parsed = parse('```json\n{"name": "replace_in_file", "arguments": {"path": "calc.py"}}\n```')
    [problem] = parsed.problems
    assert problem.tool == "replace_in_file"
    first_line, second_line = problem.message.split("\n")
    assert first_line == ("replace_in_file: argument 'old' is required; argument 'new' is required")
    assert second_line == 'expected arguments: {"path": string, "old": string, "new": string}'


def test_a_wrong_type_that_cannot_be_coerced_is_rejected_with_expected_and_given() -> None:
    parsed = parse('{"name": "read_file", "arguments": {"path": "calc.py", "start_line": "top"}}')
    assert parsed.calls == []
    [problem] = parsed.problems
    assert problem.message.splitlines()[0] == (
        "read_file: argument 'start_line' must be integer, got string \"top\""
    )


def test_a_wrong_type_under_an_optional_anyof_names_both_choices() -> None:
    _, problem, _ = validate_call("read_file", {"path": "calc.py", "end_line": "end"}, TOOLS)
    assert problem is not None
    assert problem.message.startswith(
        "read_file: argument 'end_line' must be integer or null, got string \"end\""
    )


def test_an_extra_argument_is_rejected_when_additional_properties_is_false() -> None:
    _, problem, _ = validate_call(
        "replace_in_file",
        {"path": "calc.py", "old": "a - b", "new": "a + b", "count": 1},
        TOOLS,
    )
    assert problem is not None
    assert problem.message.splitlines()[0] == (
        "replace_in_file: unknown argument 'count'; allowed: path, old, new"
    )


def test_arguments_that_are_not_an_object_are_rejected() -> None:
    parsed = parse('```json\n{"name": "read_file", "arguments": ["calc.py"]}\n```')
    [problem] = parsed.problems
    assert problem.message == "read_file: 'arguments' must be a JSON object, got array"


def test_malformed_json_beyond_repair_in_a_tag_gives_a_problem_not_an_exception() -> None:
    reply = '<tool_call>{"name": "read_file", "arguments": {"path": calc.py}}</tool_call>'
    parsed = parse(reply)
    assert parsed.calls == []
    [problem] = parsed.problems
    assert problem.tool == "read_file"
    assert problem.message.startswith("read_file: the tool call is not valid JSON (")
    assert '{"name": "read_file", "arguments": {...}}' in problem.message
    assert parsed.text == ""


def test_a_call_cut_off_inside_a_string_is_a_problem_not_a_guess() -> None:
    reply = '```json\n{"name": "replace_in_file", "arguments": {"path": "calc.py", "old": "ret'
    parsed = parse(reply)
    assert parsed.calls == []
    [problem] = parsed.problems
    assert problem.tool == "replace_in_file"
    assert "not valid JSON" in problem.message


def test_a_malformed_bare_call_in_prose_is_a_problem() -> None:
    parsed = parse('Calling {"name": "read_file", "arguments": {"path": calc.py}} now.')
    [problem] = parsed.problems
    assert problem.tool == "read_file"
    assert parsed.text == "Calling  now."


def test_a_tool_call_tag_with_no_tool_name_is_a_problem() -> None:
    parsed = parse('<tool_call>{"arguments": {"path": "calc.py"}}</tool_call>')
    [problem] = parsed.problems
    assert problem.tool is None
    assert problem.message.startswith("the <tool_call> block has no tool name")


def test_an_empty_tool_call_tag_is_a_problem() -> None:
    [problem] = parse("<tool_call>\n</tool_call>").problems
    assert "empty" in problem.message


def test_a_valid_call_and_an_invalid_one_in_one_message_are_both_reported() -> None:
    reply = (
        '<tool_call>{"name": "read_file", "arguments": {"path": "calc.py"}}</tool_call>\n'
        '<tool_call>{"name": "delete_file", "arguments": {"path": "calc.py"}}</tool_call>'
    )
    parsed = parse(reply)
    assert [c.name for c in parsed.calls] == ["read_file"]
    assert [p.tool for p in parsed.problems] == ["delete_file"]


def test_the_raw_snippet_of_a_problem_is_truncated() -> None:
    long_text = "x" * 2000
    reply = f'{{"name": "write_file", "arguments": {{"path": "a.txt", "content": "{long_text}"}}}}'
    [problem] = parse(reply).problems
    assert len(problem.raw) <= 300
    assert problem.raw.endswith("…")


# --- validate_call directly -------------------------------------------------------------------


def test_validate_call_accepts_arguments_as_a_json_string() -> None:
    arguments, problem, repairs = validate_call("read_file", '{"path": "calc.py"}', TOOLS)
    assert problem is None and arguments == {"path": "calc.py"}
    assert repairs == ["decoded 'arguments' from a JSON string"]


def test_validate_call_uses_the_draft_7_validator_when_the_schema_declares_it() -> None:
    # `dependencies` is a draft-7 keyword; Draft 2020-12 ignores it.
    schema = {
        "type": "object",
        "properties": {"start_line": {"type": "integer"}, "end_line": {"type": "integer"}},
        "dependencies": {"end_line": ["start_line"]},
    }
    draft_7 = ToolSpec(
        name="span", input_schema={"$schema": "http://json-schema.org/draft-07/schema#", **schema}
    )
    default = ToolSpec(name="span", input_schema=schema)
    assert validate_call("span", {"end_line": 4}, [draft_7])[1] is not None
    assert validate_call("span", {"end_line": 4}, [default])[1] is None


def test_validate_call_uses_draft_2020_12_by_default() -> None:
    tool = ToolSpec(
        name="span",
        input_schema={
            "type": "object",
            "properties": {"start_line": {"type": "integer"}, "end_line": {"type": "integer"}},
            "dependentRequired": {"end_line": ["start_line"]},
        },
    )
    _, problem, _ = validate_call("span", {"end_line": 4}, [tool])
    assert problem is not None and "start_line" in problem.message


def test_a_broken_tool_schema_does_not_raise_and_passes_the_call_on() -> None:
    broken = ToolSpec(name="odd", input_schema={"type": "object", "properties": {"a": {"type": 5}}})
    arguments, problem, repairs = validate_call("odd", {"a": 1}, [broken])
    assert problem is None and arguments == {"a": 1}
    assert repairs and repairs[0].startswith("arguments not checked")


def test_problem_messages_stay_within_two_lines() -> None:
    reply = '{"name": "replace_in_file", "arguments": {"path": 3, "old": [], "extra": true}}'
    [problem] = parse(reply).problems
    assert len(problem.message.splitlines()) <= 2
    assert all(len(line) < 300 for line in problem.message.splitlines())


def test_the_model_is_told_it_may_answer_in_words_only_where_it_may() -> None:
    from turnout.runtimes.base import Message
    from turnout.runtimes.textprotocol.render import MAY_DECLINE, to_text_protocol

    ask = [Message(role="user", content="What is the capital of France?")]
    for choice in (None, "auto"):
        assert MAY_DECLINE in to_text_protocol(ask, [READ_FILE], choice)[0]["content"]
    for choice in ("required", "read_file"):  # the grammar forces a call: no mixed message
        assert MAY_DECLINE not in to_text_protocol(ask, [READ_FILE], choice)[0]["content"]
    assert to_text_protocol(ask, [], None) == [{"role": "user", "content": ask[0].content}]
